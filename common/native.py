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

The build also compiles the figure book written in Rust (`native/`, the module
`domain.figure_core`, used by `domain.native_figures`) when cargo is installed; the
digest covers its sources and the Rust compiler's version too. Without cargo the build
holds the mypyc modules only and the worker keeps its figures in the Python book.

`DOSSIER_NATIVE` chooses: `auto` (the default: compiled when built, else Python),
`off` (always Python), `require` (refuse to start without the compiled core, the Rust
figure book included).
"""

from __future__ import annotations

import fcntl
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
RUST_MODULE = "domain.figure_core"  # the figure book in Rust, built from RUST_CRATE
RUST_CRATE = "native"
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


def cargo() -> str | None:
    """The cargo command, from PATH or rustup's default place; None without Rust."""
    found = shutil.which("cargo")
    if found:
        return found
    home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo")
    candidate = home / "bin" / "cargo"
    return str(candidate) if candidate.is_file() else None


def rust_sources(root: Path = PROJECT_ROOT) -> list[Path]:
    crate = root / RUST_CRATE
    files = [crate / "Cargo.toml", crate / "Cargo.lock", *sorted((crate / "src").rglob("*.rs"))]
    return [f for f in files if f.is_file()]


def digest(root: Path = PROJECT_ROOT, compiler: str | None = None) -> str:
    """Names one build: the compiled sources (the Rust crate's too), this Python and
    mypyc's version. Not rustc's: the worker must find its build wherever cargo is."""
    h = hashlib.sha256()
    h.update(f"{sys.version}|{sysconfig.get_config_var('EXT_SUFFIX')}|".encode())
    h.update(f"mypyc {compiler or mypyc_version()}|".encode())
    for module in MODULES:
        h.update(module.encode() + b"\0")
        h.update(source_path(module, root).read_bytes())
        h.update(b"\0")
    for file in rust_sources(root):
        h.update(str(file.relative_to(root)).encode() + b"\0")
        h.update(file.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:20]


def build_dir(root: Path = PROJECT_ROOT) -> Path:
    return cache_root() / digest(root)


def built(root: Path = PROJECT_ROOT) -> Path | None:
    """The finished build for these sources, or None."""
    out = build_dir(root)
    return out if (out / DONE).is_file() else None


def complete(out: Path) -> bool:
    """Whether a build holds all it can: the Rust figure book too, unless cargo is
    missing (a build made without cargo is made again once cargo is there)."""
    return RUST_MODULE in compiled_files(out) or cargo() is None


def build(root: Path = PROJECT_ROOT, *, quiet: bool = False) -> Path:
    """Compile `MODULES` (a minute or two) unless a build of these sources exists."""
    done = built(root)
    if done is not None and complete(done):
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
        built_rust = _build_rust(root, lib)
        if not quiet:
            print(f"compiled {len(MODULES)} modules into {out}", file=sys.stderr)
        (lib / DONE).write_text("\n".join((*MODULES, *built_rust)) + "\n")
        again = built(root)
        if again is not None and done is None:
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


def _build_rust(root: Path, lib: Path) -> tuple[str, ...]:
    """Compile the Rust figure book into the build (`lib`); () when cargo is missing.

    cargo keeps its own output in the cache (`cargo-target`), so a rebuild after a
    Python edit reuses the compiled crates; it fetches them from crates.io at the
    versions `Cargo.lock` pins.
    """
    command = cargo()
    if command is None:
        return ()
    target = cache_root() / "cargo-target"
    manifest = root / RUST_CRATE / "Cargo.toml"
    target.mkdir(parents=True, exist_ok=True)
    # One build at a time in the shared target directory, from cargo to the copy: two
    # builds of different sources would otherwise copy each other's library.
    with (target / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _cargo_build(command, manifest, target, lib)


def _cargo_build(command: str, manifest: Path, target: Path, lib: Path) -> tuple[str, ...]:
    result = subprocess.run(
        [
            command,
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
            str(manifest),
            "--target-dir",
            str(target),
        ],
        capture_output=True,
        text=True,
        # cargo found outside PATH (rustup's ~/.cargo/bin) finds rustc beside it.
        env={
            **os.environ,
            "PATH": os.pathsep.join((str(Path(command).parent), os.environ.get("PATH", ""))),
        },
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise NativeError(f"cargo failed to build the figure book ({manifest}):\n{tail}")
    name = RUST_MODULE.rsplit(".", 1)[1]
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    dest = lib.joinpath(*RUST_MODULE.split(".")[:-1], name + suffix)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(target / "release" / f"lib{name}.so", dest)
    return (RUST_MODULE,)


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
        needed = (*MODULES, RUST_MODULE) if mode == "require" else MODULES
        missing = [m for m in needed if m not in files]
        if missing:
            status = f"off: the build in {out} lacks {missing[0]}"
            if missing[0] == RUST_MODULE:
                status += " (cargo was not found when it was built: install Rust, rebuild)"
        else:
            sys.meta_path.insert(0, _Finder(files))
            active = True
            book = (
                "the figure book in Rust"
                if RUST_MODULE in files
                else "the figure book in Python (built without cargo)"
            )
            status = (
                f"on: {len(MODULES)} modules compiled by mypyc {mypyc_version()}, {book} ({out})"
            )
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
