"""The worker's hot core compiled to C with mypyc, used only when it matches the sources.

The modules in `MODULES` (the working-day calendar, the dossier lifecycle, the figures,
the partition store and what it calls per message) are plain typed Python. `build()`
compiles them with mypyc into a cache directory named by a digest of their sources,
the Python version and mypyc's version; `activate()` makes the imports of those modules
load the compiled ones, and does so only when a build for exactly the present sources
exists. Edit one line of `domain/figures.py` and the digest changes: the worker runs the
Python sources (and says so in its log) until `dossier-stream native build` runs again.
Nothing is ever compiled into the source tree, so a compiled module can never hide an
edited one.

`DOSSIER_NATIVE` chooses: `auto` (the default: compiled when built, else Python),
`off` (always Python), `require` (refuse to start without the compiled core).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from schemas.errors import DossierStreamError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# In import order: every module the dossier stage runs per message and per round.
MODULES: tuple[str, ...] = (
    "domain.calendar",
    "domain.lifecycle",
    "domain.figures",
    "domain.alerts",
    "stream_apps.alert_history",
    "stream_apps.alerting",
    "stream_apps.codec",
    "stream_apps.retirement",
    "stream_apps.book",
    "stream_apps.partials",
    "stream_apps.store",
    "schemas.rules",
)
MODES = ("auto", "off", "require")
DONE = "complete"  # the marker of a finished build, written last

# What the last `activate()` in this process decided, for the worker's log and /health.
status: str = "off: not asked for"
active: bool = False


class NativeError(DossierStreamError):
    """The compiled core was required and is not there, or could not be built."""


def cache_root() -> Path:
    """Where builds are kept: `DOSSIER_NATIVE_DIR`, else ~/.cache/dossier-stream/native."""
    configured = os.environ.get("DOSSIER_NATIVE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dossier-stream" / "native"


def source_path(module: str, root: Path = PROJECT_ROOT) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def mypyc_version() -> str | None:
    try:
        return importlib.metadata.version("mypy")
    except importlib.metadata.PackageNotFoundError:
        return None


def digest(root: Path = PROJECT_ROOT, compiler: str | None = None) -> str:
    """Names one build: the compiled sources, this Python and the compiler's version."""
    h = hashlib.sha256()
    h.update(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}|".encode())
    h.update(f"mypyc {compiler or mypyc_version()}|".encode())
    for module in MODULES:
        h.update(module.encode() + b"\0")
        h.update(source_path(module, root).read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:20]


def build_dir(root: Path = PROJECT_ROOT) -> Path:
    return cache_root() / digest(root)


def built(root: Path = PROJECT_ROOT) -> Path | None:
    """The finished build for these sources, or None."""
    out = build_dir(root)
    return out if (out / DONE).is_file() else None


def build(root: Path = PROJECT_ROOT, *, quiet: bool = False) -> Path:
    """Compile `MODULES` (a minute or two) unless a build of these sources exists."""
    done = built(root)
    if done is not None:
        return done
    if mypyc_version() is None:
        raise NativeError("mypyc is not installed (it comes with mypy: `make setup`)")
    out = build_dir(root)
    cache_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=cache_root()))
    try:
        lib = work / "lib"
        command = [sys.executable, "-m", "common.native", "_compile", str(root), str(lib)]
        # The child imports this module from the tree it compiles (its MODULES), not
        # from wherever the package is installed.
        env = {**os.environ, "PYTHONPATH": str(root)}
        result = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise NativeError(f"mypyc failed:\n{tail}")
        if not quiet:
            print(f"compiled {len(MODULES)} modules into {out}", file=sys.stderr)
        (lib / DONE).write_text("\n".join(MODULES) + "\n")
        if built(root) is not None:
            return out  # another process built the same sources meanwhile: keep its build
        shutil.rmtree(out, ignore_errors=True)  # an unfinished one
        try:
            lib.rename(out)
        except OSError:
            if built(root) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def _compile(root: Path, lib: Path) -> None:
    """In a child process, in a scratch directory: mypyc, then the C compiler."""
    from mypyc.build import mypycify
    from setuptools import setup

    paths = [str(source_path(m, root)) for m in MODULES]
    sys.path.insert(0, str(root))
    os.environ["MYPYPATH"] = str(root)
    extensions = mypycify(
        ["--ignore-missing-imports", "--follow-imports=silent", *paths],
        opt_level="3",
        target_dir=str(Path.cwd() / "c"),
    )
    setup(
        name="dossier-stream-native",
        ext_modules=extensions,
        script_args=["--quiet", "build_ext", "--build-lib", str(lib), "--build-temp", "tmp"],
    )


class _Finder(importlib.abc.MetaPathFinder):
    """Loads the compiled file of each module a build holds; anything else as usual."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def compiled_files(out: Path) -> dict[str, Path]:
    """Module name -> compiled file of a build (the modules and mypyc's shared library)."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    files: dict[str, Path] = {}
    for file in out.rglob(f"*{suffix}"):
        parts = file.relative_to(out).parts
        files[".".join((*parts[:-1], parts[-1].removesuffix(suffix)))] = file
    return files


def activate(mode: str | None = None, root: Path = PROJECT_ROOT) -> bool:
    """Use the compiled core for the imports to come, when a build of these sources
    exists and mode allows it; return whether it is in use. Call before any of `MODULES`
    is imported. `mode` defaults to `DOSSIER_NATIVE` (auto)."""
    global status, active
    mode = (mode or os.environ.get("DOSSIER_NATIVE") or "auto").strip().lower()
    if mode not in MODES:
        raise NativeError(f"DOSSIER_NATIVE={mode!r}: expected one of {', '.join(MODES)}")
    if active:
        return True
    if mode == "off":
        status = "off: DOSSIER_NATIVE=off"
        return False
    early = [m for m in MODULES if m in sys.modules]
    out = built(root)
    if early:
        status = f"off: {early[0]} was imported before the compiled core could be used"
    elif out is None:
        status = "off: no build of these sources (`dossier-stream native build` makes one)"
    else:
        files = compiled_files(out)
        missing = [m for m in MODULES if m not in files]
        if missing:
            status = f"off: the build in {out} lacks {missing[0]}"
        else:
            sys.meta_path.insert(0, _Finder(files))
            active = True
            status = f"on: {len(MODULES)} modules compiled by mypyc {mypyc_version()} ({out})"
            return True
    if mode == "require":
        raise NativeError(f"DOSSIER_NATIVE=require, but the compiled core is {status}")
    return False


USAGE = """\
usage: python -m common.native run MODULE [ARG ...]

Runs `python -m MODULE ARG ...` with the compiled core when it is built for these
sources (DOSSIER_NATIVE=require: or fails), e.g.
  DOSSIER_NATIVE=require python -m common.native run pytest tests/unit/domain
  python -m common.native run bench.profile_stage --events 200000
`dossier-stream native build|status` builds the core or says whether it is built."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["_compile"] and len(args) == 3:
        _compile(Path(args[1]), Path(args[2]))
        return 0
    if args[:1] == ["run"] and len(args) >= 2:
        from common import native  # as the others import it (this file runs as __main__)

        native.activate()  # before MODULE imports anything of the core
        print(f"compiled core {native.status}", file=sys.stderr, flush=True)
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
