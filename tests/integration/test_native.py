"""The compiled core, really built with mypyc and the C compiler, really loaded.

`make test` builds it (`dossier-stream native build`); run alone, this test builds it
when the sources changed since the last build (about a minute).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from common import native

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "from common import native\n"
    "native.activate()\n"
    "import stream_apps.store, domain.figures, domain.calendar\n"
    "print(native.status)\n"
    "for m in (stream_apps.store, domain.figures, domain.calendar):\n"
    "    print(m.__file__)\n"
    "print(domain.calendar.DEFAULT_OVERRIDES_PATH.is_file(), domain.calendar.default_overrides())\n"
    "import importlib.util\n"
    "spec = importlib.util.find_spec('domain.figure_core')\n"
    "print(spec.origin if spec else None)\n"
)


def probe(cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": str(cwd)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_built_core_is_loaded_and_an_edited_source_is_not_shadowed(tmp_path: Path) -> None:
    out = native.build()
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    status, *files, holidays, rust_book = probe(ROOT)
    assert status.startswith(f"on: {len(native.MODULES)} modules compiled by mypyc"), status
    assert all(f.startswith(str(out)) and f.endswith(suffix) for f in files), files
    assert holidays.startswith("True CalendarOverrides(")  # its data found from the .so
    # The Rust figure book, built by cargo (`make test` needs it), from the same build.
    assert "the figure book in Rust" in status, status
    assert rust_book == str(out / "domain" / f"figure_core{suffix}"), rust_book

    # A copy with one compiled module edited runs its sources, whatever the cache holds.
    copy = tmp_path / "tree"
    for package in ("common", "domain", "schemas", "stream_apps"):
        shutil.copytree(ROOT / package, copy / package)
    figures = copy / "domain" / "figures.py"
    figures.write_text(figures.read_text() + "\nEDITED = True\n")
    status, *files, _, rust_book = probe(copy)
    assert status.startswith("off: no build of these sources"), status
    assert rust_book == "None"  # the Rust book is only there with the compiled core
    assert files[1] == str(figures)
