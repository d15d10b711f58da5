"""The packages import downwards only: the command line wires the adapters, never the reverse.

dossier_stream (command line)  ->  producers, stream_apps, dashboard, gateway  ->  common
                                                                                 ->  schemas, domain
The dashboard reads only Redis: it imports the contract (schemas) and common, never the
worker, the producers or the domain's internals. The gateway publishes as the producers
do (it uses their partitioner), and knows nothing of the worker or the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level packages of the project it must not import
FORBIDDEN = {
    "stream_apps": {"dossier_stream"},
    "producers": {"dossier_stream", "stream_apps"},
    "schemas": {"dossier_stream", "stream_apps", "producers", "common"},
    "domain": {"dossier_stream", "stream_apps", "producers", "common"},
    "common": {"dossier_stream", "stream_apps", "producers"},
    "dashboard": {"dossier_stream", "stream_apps", "producers", "domain"},
    "gateway": {"dossier_stream", "stream_apps", "domain", "dashboard"},
}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, by statement or by `importlib.import_module("...")`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def violations(package: str) -> list[str]:
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            if module.split(".")[0] in FORBIDDEN[package]:
                out.append(f"{path.relative_to(ROOT)} imports {module}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_from_the_layers_above_it(package: str) -> None:
    assert (ROOT / package / "__init__.py").exists()
    assert violations(package) == []


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    source = tmp_path / "example.py"
    source.write_text(
        "import dossier_stream.cli\n"
        "from dossier_stream import settings\n"
        "from . import sibling\n"
        "import importlib\n"
        "importlib.import_module('dossier_stream.watch')\n",
        encoding="utf-8",
    )
    assert imported_modules(source) == {
        "dossier_stream.cli",
        "dossier_stream",
        "importlib",
        "dossier_stream.watch",
    }
