"""Terminal helpers for the commands: one-line errors, progress bars that stay out of pipes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PROG = "dossier-stream"

err_console = Console(stderr=True)


def print_error(message: str, command: str | None = None) -> None:
    """Print a failure as `dossier-stream COMMAND: error: MESSAGE`, as argparse does.

    Plain text, never wrapped. The lines after the first of a multi-line message (a
    service's log, say) are printed before it, so the output ends in the one line that
    names the problem.
    """
    first, *detail = message.strip().splitlines() or ["failed"]
    if detail:
        print("\n".join(detail), file=sys.stderr)
    prog = f"{PROG} {command}" if command else PROG
    print(f"{prog}: error: {first}", file=sys.stderr, flush=True)


class _Bar:
    """A progress task; a no-op when progress display is off."""

    def __init__(self, progress: Progress | None, task: TaskID | None) -> None:
        self._progress = progress
        self._task = task

    def advance(self, n: float = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def update(self, *, completed: float | None = None, description: str | None = None) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, description=description)


@contextmanager
def progress_bar(
    description: str, total: float | None, *, enabled: bool | None = None, unit: str = "events"
) -> Iterator[_Bar]:
    """Show a progress bar on stderr when it is a terminal (or when `enabled` says so)."""
    show = sys.stderr.isatty() if enabled is None else enabled
    if not show:
        yield _Bar(None, None)
        return
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=err_console, transient=False) as progress:
        yield _Bar(progress, progress.add_task(description, total=total))
