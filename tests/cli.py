"""Run `dossier-stream` as a user does, in a subprocess, and check how a failure ends."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m dossier_stream.cli ARGS` from the repository root.

    DOSSIER_* variables of the test run are dropped, so only `env` configures it.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    return subprocess.run(
        [sys.executable, "-m", "dossier_stream.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=clean | {"COLUMNS": "100"} | (env or {}),
        stdin=subprocess.DEVNULL,
    )


def error_line(result: subprocess.CompletedProcess[str], *, lines: int = 1) -> str:
    """The line that ends a failed command's stderr, checking that stderr has `lines` lines
    and that no traceback was printed anywhere."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    got = result.stderr.strip().splitlines()
    assert len(got) == lines, result.stderr
    return got[-1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 where nothing listens (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def listening_port() -> Iterator[int]:
    """A port on 127.0.0.1 held by a listener that is not one of the project's services."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])
