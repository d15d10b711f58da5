"""The compiled core is used only for exactly the sources it was built from."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from common import native

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the compiled modules' sources (all `digest` reads)."""
    for module in native.MODULES:
        dest = native.source_path(module, tmp_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(native.source_path(module, ROOT), dest)
    for source in native.rust_sources(ROOT):
        dest = tmp_path / source.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, dest)
    return tmp_path


def test_the_digest_follows_every_compiled_source_and_nothing_else(tree: Path) -> None:
    first = native.digest(tree, compiler="1.0")
    assert native.digest(tree, compiler="1.0") == first
    (tree / "domain" / "errors.py").write_text("# not compiled\n")
    assert native.digest(tree, compiler="1.0") == first
    assert native.digest(tree, compiler="1.1") != first  # another mypyc, another build
    for module in native.MODULES:
        source = native.source_path(module, tree)
        text = source.read_text()
        source.write_text(text + "\n")  # one blank line more
        assert native.digest(tree, compiler="1.0") != first, module
        source.write_text(text)
    rust = native.rust_sources(tree)
    assert {p.name for p in rust} >= {"Cargo.toml", "Cargo.lock", "lib.rs"}
    for source in rust:
        text = source.read_text()
        source.write_text(text + "\n")
        assert native.digest(tree, compiler="1.0") != first, source
        source.write_text(text)
    assert native.digest(tree, compiler="1.0") == first


def test_a_build_without_the_rust_book_is_complete_only_while_cargo_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / f"figures{suffix}").write_bytes(b"")
    monkeypatch.setattr(native, "cargo", lambda: None)
    assert native.complete(tmp_path)
    monkeypatch.setattr(native, "cargo", lambda: "/usr/bin/cargo")
    assert not native.complete(tmp_path)  # cargo is there now: build again, with the book
    (tmp_path / "domain" / f"figure_core{suffix}").write_bytes(b"")
    assert native.complete(tmp_path)


def test_a_build_is_found_only_for_its_own_sources(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSSIER_NATIVE_DIR", str(tmp_path / "cache"))
    assert native.built(tree) is None
    out = native.build_dir(tree)
    out.mkdir(parents=True)
    assert native.built(tree) is None  # unfinished: no marker
    (out / native.DONE).write_text("")
    assert native.built(tree) == out
    figures = native.source_path("domain.figures", tree)
    figures.write_text(figures.read_text() + "# edited\n")
    assert native.built(tree) is None


def test_compiled_files_are_named_as_modules(tmp_path: Path) -> None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / f"figures{suffix}").write_bytes(b"")
    (tmp_path / f"abc123__mypyc{suffix}").write_bytes(b"")
    (tmp_path / "domain" / "figures.c").write_text("")
    assert native.compiled_files(tmp_path) == {
        "domain.figures": tmp_path / "domain" / f"figures{suffix}",
        "abc123__mypyc": tmp_path / f"abc123__mypyc{suffix}",
    }


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **env},
    )


def test_off_and_require_without_a_build(tmp_path: Path) -> None:
    """Each mode in a fresh interpreter, with an empty cache."""
    probe = (
        "from common import native\n"
        "used = native.activate()\n"
        "import domain.figures\n"
        "print(used, domain.figures.__file__.endswith('.py'), native.status)\n"
    )
    cache = str(tmp_path / "empty")
    off = run_python(probe, DOSSIER_NATIVE="off", DOSSIER_NATIVE_DIR=cache)
    assert off.stdout.startswith("False True off: DOSSIER_NATIVE=off"), off.stderr
    auto = run_python(probe, DOSSIER_NATIVE_DIR=cache)
    assert auto.stdout.startswith("False True off: no build of these sources"), auto.stderr
    required = run_python(probe, DOSSIER_NATIVE="require", DOSSIER_NATIVE_DIR=cache)
    assert required.returncode != 0
    assert "DOSSIER_NATIVE=require, but the compiled core is off: no build" in required.stderr
    wrong = run_python(probe, DOSSIER_NATIVE="fast", DOSSIER_NATIVE_DIR=cache)
    assert "DOSSIER_NATIVE='fast': expected one of auto, off, require" in wrong.stderr


def test_too_late_once_a_compiled_module_is_imported() -> None:
    """domain.figures imports domain.calendar, the first of the modules."""
    done = run_python(
        "import domain.figures\n"
        "from common import native\n"
        "print(native.activate('auto'), native.status)\n"
    )
    assert done.stdout.startswith("False off: domain.calendar was imported before"), done.stderr
