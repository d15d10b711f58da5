"""Exit codes of the `dossier-stream` commands and the error a command stops with."""

from __future__ import annotations

from schemas.errors import DossierStreamError

EXIT_OK = 0
# The command ran and failed, and says why: events rejected or not delivered, Kafka or
# Redis unreachable, a service that did not start, a schema file out of date.
EXIT_FAILURE = 1
# Bad arguments (argparse's own code), a bad DOSSIER_* setting, or a file named on the
# command line that cannot be read or written (as argparse does for file arguments).
EXIT_USAGE = 2
# `services status` only: a service is not running (as `systemctl status` says).
EXIT_NOT_RUNNING = 3
# Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_INTERRUPTED = 130
# Standard output was closed by its reader, as `| head` does (128 + SIGPIPE).
EXIT_BROKEN_PIPE = 141


class CommandError(DossierStreamError):
    """A command cannot go on. The message is the one line the user sees; `exit_code` says why.

    Raised by a command's `run` after it has cleaned up; `dossier-stream`'s entry point
    prints it and exits with the code.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
