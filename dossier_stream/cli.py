"""The `dossier-stream` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import select
import sys
from collections.abc import Sequence

from common.console import print_error
from common.errors import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NOT_RUNNING,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
)

log = logging.getLogger(__name__)

# subcommand -> (module, one-line help). Each module defines
# `configure(parser: argparse.ArgumentParser) -> None` and `run(args) -> int`,
# and is imported only when its subcommand is used, so `--help` stays fast. A module
# may set LOG_LEVEL, its default log level (the demo keeps the screen to itself).
COMMANDS: dict[str, tuple[str, str]] = {
    "services": ("dossier_stream.services_cmd", "start, stop or inspect the local Kafka and Redis"),
    "publish": ("producers.publish_cmd", "publish an agency export (JSON Lines or CSV) to Kafka"),
    "simulate": ("producers.simulate_cmd", "generate a realistic Hải Phòng workload"),
    "worker": ("stream_apps.worker_cmd", "run the stream worker (Faust) that feeds Redis"),
    "watch": ("dossier_stream.watch", "watch the live figures in Redis from a terminal"),
    "alerts": ("dossier_stream.alerts_cmd", "list the alerts open now and recent, or follow them"),
    "top": ("dossier_stream.top", "the city overview and the worst agencies, live in a terminal"),
    "dashboard": ("dossier_stream.dashboard_cmd", "serve the web dashboard and its JSON API"),
    "gateway": ("dossier_stream.gateway_cmd", "serve the HTTP ingestion gateway; agency tokens"),
    "demo": ("dossier_stream.demo", "start everything and run a simulated workload to watch"),
    "schema": ("schemas.schema_cmd", "export or check the event contract's JSON Schema"),
    "native": ("dossier_stream.native_cmd", "compile the worker's hot core (mypyc), or check it"),
}
# Commands that run the dossier stage in this process: they load the compiled core when
# a build of the present sources exists (common.native, DOSSIER_NATIVE).
NATIVE_COMMANDS = frozenset({"worker"})

SERVICES_HINT = "is it running? `dossier-stream services up` starts the local one"

EXIT_CODES = f"""\
exit codes (every command):
  {EXIT_OK:<4} success
  {EXIT_FAILURE:<4} the command failed and says why on its last line: events rejected or not
       delivered, Kafka or Redis unreachable, a service that did not start, the schema
       file out of date (also when the reader of standard output closes it, as `| head`)
  {EXIT_USAGE:<4} usage: a bad option or DOSSIER_* setting, or a file named on the command
       line that cannot be read or written
  {EXIT_NOT_RUNNING:<4} `services status` only: a service is not running
  {EXIT_INTERRUPTED:<4} interrupted (Ctrl-C)
"""

EPILOG = f"""\
examples:
  dossier-stream demo                      # services, worker, simulated workload, live view
  dossier-stream services up               # start the local Kafka broker and Redis
  dossier-stream simulate --days 7 --speed max --seed 1
  dossier-stream publish export.jsonl --rejects rejects.jsonl
  dossier-stream watch                     # live figures from Redis
  dossier-stream alerts list               # alerts open now and the most recent ones
  dossier-stream dashboard                 # the web dashboard on http://127.0.0.1:8066/
  dossier-stream gateway serve             # HTTP ingestion for agency systems (:8077)

Run `dossier-stream COMMAND --help` for the options of each command.

{EXIT_CODES}"""

COMMAND_EPILOG = "exit codes: 0 success, 1 failed, 2 usage, 130 interrupted (`dossier-stream -h`)"


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dossier-stream",
        description="Live overdue, online-rate and on-time figures for administrative-procedure "
        "dossiers (hồ sơ thủ tục hành chính).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="log level (DEBUG, INFO, WARNING; default INFO, WARNING for demo); "
        "DEBUG also shows the Kafka client's messages and the traceback of an unexpected error",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = _wanted_command(sys.argv[1:] if argv is None else argv)
    for name, (module_name, help_text) in COMMANDS.items():
        if wanted != name:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or help_text).strip()
        examples = getattr(module, "EXAMPLES", None)
        sp = sub.add_parser(
            name,
            help=help_text,
            description=doc,
            epilog=f"{examples}\n{COMMAND_EPILOG}" if examples else COMMAND_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.configure(sp)
        sp.set_defaults(_run=module.run, _log_level=getattr(module, "LOG_LEVEL", "INFO"))
    return parser


def _wanted_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if arg in COMMANDS:
            return arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure ends in one line on stderr and an exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if argv is not None:
        sys.argv = [sys.argv[0], *args_list]
    command = _wanted_command(args_list)
    try:
        if command in NATIVE_COMMANDS:
            from common import native

            native.activate()  # before the command's module imports the core
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)  # usage errors: argparse prints them, exit 2
        _configure_logging(args)
        run = getattr(args, "_run", None)
        if run is None:
            parser.print_help()
            return EXIT_USAGE
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print(f"dossier-stream{f' {command}' if command else ''}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError as exc:
        if _stdout_closed():
            # The reader of our output went away (`| head`): say no more, as rich does.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILURE
        code, message = describe_failure(exc)  # a socket's, not ours
        print_error(message, command)
        return code
    except Exception as exc:
        code, message = describe_failure(exc)
        if code == EXIT_FAILURE and message.startswith("unexpected "):
            log.debug("the traceback of the unexpected error", exc_info=exc)
        print_error(message, command)
        return code


def describe_failure(exc: Exception) -> tuple[int, str]:
    """The exit code of a failure and the message that names it (for the user, not a
    developer: a traceback only with --log-level DEBUG)."""
    # Imported here: most commands never load the Kafka or Redis clients.
    import kafka.errors
    import pydantic
    import redis.exceptions

    from common.kafka_admin import KafkaUnavailableError
    from dossier_stream.localstack import LocalStackError
    from producers.errors import BrokerUnavailableError
    from schemas.errors import DossierStreamError
    from schemas.registry import RegistryError

    if isinstance(exc, CommandError):
        return exc.exit_code, str(exc)
    if isinstance(exc, RegistryError):  # the file of --registry
        return EXIT_USAGE, f"invalid agency registry: {exc}"
    if isinstance(exc, OSError) and exc.filename is not None:
        return EXIT_USAGE, f"cannot open {exc.filename}: {exc.strerror or _text(exc)}"
    if isinstance(exc, pydantic.ValidationError) and exc.title.endswith("Settings"):
        return EXIT_USAGE, _setting_errors(exc)
    if isinstance(exc, BrokerUnavailableError | KafkaUnavailableError):
        return EXIT_FAILURE, f"{exc}; {SERVICES_HINT}"
    if isinstance(exc, kafka.errors.KafkaError):
        return EXIT_FAILURE, f"Kafka: {_text(exc)}"
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return EXIT_FAILURE, f"Redis did not answer ({_text(exc)}); {SERVICES_HINT}"
    if isinstance(exc, redis.exceptions.RedisError):
        return EXIT_FAILURE, f"Redis: {_text(exc)}"
    if isinstance(exc, DossierStreamError):  # the project's own errors name their cause
        return EXIT_FAILURE, _text(exc)
    if isinstance(exc, LocalStackError):  # may quote the service's log after its first line
        return EXIT_FAILURE, str(exc)
    hint = "--log-level DEBUG shows where" if log.getEffectiveLevel() > logging.DEBUG else ""
    return EXIT_FAILURE, f"unexpected {type(exc).__name__}: {_text(exc)}" + (
        f" ({hint})" if hint else ""
    )


def _text(exc: BaseException) -> str:
    """An exception's message on one line (its class name when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _setting_errors(exc: Exception) -> str:
    import pydantic

    assert isinstance(exc, pydantic.ValidationError)
    parts = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if not field:  # a check across fields names its variable in the message
            parts.append(message)
        elif "input" in err and not isinstance(err.get("input"), dict) and not _secret(field):
            parts.append(f"DOSSIER_{field.upper()}={err.get('input')!r}: {message}")
        else:
            parts.append(f"DOSSIER_{field.upper()}: {message}")
    return "invalid setting " + "; ".join(parts)


def _secret(field: str) -> bool:
    """A setting whose value is never echoed: passwords, keys, tokens."""
    return any(word in field for word in ("password", "key", "token", "secret"))


def _configure_logging(args: argparse.Namespace) -> None:
    args.log_level = str(args.log_level or getattr(args, "_log_level", "INFO")).upper()
    level = getattr(logging, args.log_level, logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level > logging.DEBUG:
        # kafka-python logs every refused connection, at ERROR, while it retries: the
        # commands report what failed on their own line. aiokafka (the worker) keeps
        # its warnings.
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
        logging.getLogger("aiokafka").setLevel(logging.WARNING)


def _stdout_closed() -> bool:
    """True when standard output is a pipe whose reader has gone away."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


if __name__ == "__main__":
    sys.exit(main())
