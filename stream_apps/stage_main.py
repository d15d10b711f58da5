"""A worker's second (third, ...) dossier stage process: its composition root.

Started by the worker when `DOSSIER_STAGE_PROCESSES` is above 1 (see
`stream_apps.stage_group`), never by hand: it reads its settings from the socket the
worker gave it (`stream_apps.child_side`), runs a dossier stage as the worker's first
process does, in the same consumer group, and reports to the worker over the same
socket. It dies with the worker's first process, however that ends.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

from stream_apps.child_side import run

if TYPE_CHECKING:  # imported in the functions: after `native.activate()`
    import mode

    from stream_apps.settings import WorkerSettings


def main() -> int:
    return run("stage process", "stream_apps.stage_main", build_stage_worker)


def build_stage_worker(
    settings: WorkerSettings, sock: socket.socket, loglevel: str = "info"
) -> mode.Worker:
    import mode

    from stream_apps.health import quiet_client_logs
    from stream_apps.stage_group import WorkerLink
    from stream_apps.worker_cmd import build_stage

    quiet_client_logs()
    stage = build_stage(settings)
    link = WorkerLink(stage, sock)
    return mode.Worker(stage, link, loglevel=loglevel, quiet=True, redirect_stdouts=False)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
