"""The gateway's core modules do no I/O: no web framework, Kafka, files, sockets or clocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layers import imported_modules

GATEWAY = Path(__file__).resolve().parents[3] / "gateway"
CORE = ["tokens.py", "ratelimit.py", "body.py", "batch.py", "models.py", "errors.py"]
IO_MODULES = {
    "fastapi", "starlette", "uvicorn", "kafka", "redis", "httpx", "os", "io", "socket",
    "pathlib", "tempfile", "shutil", "subprocess", "time", "logging", "asyncio", "threading",
}  # fmt: skip


@pytest.mark.parametrize("module", CORE)
def test_a_core_module_imports_nothing_that_does_io(module: str) -> None:
    imported = {name.split(".")[0] for name in imported_modules(GATEWAY / module)}
    assert imported & IO_MODULES == set()
