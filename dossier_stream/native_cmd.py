"""Compile the worker's hot core with mypyc, or say whether a build matches the sources.

The worker runs the same typed Python either way; compiled, its own code costs a
quarter to a third less CPU per event (BENCHMARKS.md). A build is kept in a cache
directory named by a digest of the sources, so it is used only while they are
unchanged; `make native` builds it (`make demo` and `make test` run it first).
DOSSIER_NATIVE=auto|off|require chooses what the worker does.
"""

from __future__ import annotations

import argparse
import time

from common import native
from common.errors import EXIT_FAILURE, EXIT_OK, CommandError

EXAMPLES = """\
examples:
  dossier-stream native build           # compile (a minute or two; nothing if already built)
  dossier-stream native status          # is there a build of the present sources?
  DOSSIER_NATIVE=off dossier-stream worker      # run the Python sources anyway
  DOSSIER_NATIVE=require dossier-stream worker  # refuse to start without the compiled core
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["build", "status"], help="build or status")


def run(args: argparse.Namespace) -> int:
    if args.action == "status":
        out = native.built()
        if out is None:
            digest, cache = native.digest(), native.cache_root()
            print(f"not built for these sources (digest {digest}); cache {cache}")
            return EXIT_FAILURE
        print(f"built: {out}")
        return EXIT_OK
    started = time.monotonic()
    already = native.built()
    try:
        out = native.build(quiet=True)
    except native.NativeError as exc:
        raise CommandError(str(exc)) from None
    took = time.monotonic() - started
    if already is not None:
        print(f"already built for these sources: {out}")
    else:
        print(f"compiled {len(native.MODULES)} modules in {took:.0f} s: {out}")
    return EXIT_OK
