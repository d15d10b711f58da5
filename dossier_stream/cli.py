"""The `dossier-stream` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help). Each module defines
# `configure(parser: argparse.ArgumentParser) -> None` and `run(args) -> int`,
# and is imported only when its subcommand is used, so `--help` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "services": ("dossier_stream.services_cmd", "start, stop or inspect the local Kafka and Redis"),
    "publish": ("producers.publish_cmd", "publish an agency export (JSON Lines or CSV) to Kafka"),
    "simulate": ("producers.simulate_cmd", "generate a realistic Hải Phòng workload"),
    "worker": ("stream_apps.worker_cmd", "run the stream worker (Faust) that feeds Redis"),
    "watch": ("dossier_stream.watch", "watch the live figures in Redis from a terminal"),
    "demo": ("dossier_stream.demo", "start everything and run a simulated workload to watch"),
    "schema": ("schemas.schema_cmd", "export or check the event contract's JSON Schema"),
}

EPILOG = """\
examples:
  dossier-stream demo                      # services, worker, simulated workload, live view
  dossier-stream services up               # start the local Kafka broker and Redis
  dossier-stream simulate --days 7 --speed max --seed 1
  dossier-stream publish export.jsonl --rejects rejects.jsonl
  dossier-stream watch                     # live figures from Redis

Run `dossier-stream COMMAND --help` for the options of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dossier-stream",
        description="Live overdue, online-rate and on-time figures for administrative-procedure "
        "dossiers (hồ sơ thủ tục hành chính).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level", default="INFO", help="log level (DEBUG, INFO, WARNING; default INFO)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _wanted_command(sys.argv[1:])
    for name, (module_name, help_text) in COMMANDS.items():
        if wanted != name:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or help_text).strip()
        sp = sub.add_parser(
            name,
            help=help_text,
            description=doc,
            epilog=getattr(module, "EXAMPLES", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sp)
        sp.set_defaults(_run=module.run)
    return parser


def _wanted_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is not None:
        sys.argv = [sys.argv[0], *args_list]
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if logging.getLogger().level > logging.DEBUG:
        # The Kafka clients narrate every connection at INFO: keep their warnings only.
        for noisy in ("kafka", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
