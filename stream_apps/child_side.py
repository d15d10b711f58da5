"""A child process's end of the line to the worker (see `stream_apps.child_process`).

Imports nothing of the project's compiled core: a child calls `connect` first, then
`common.native.activate()`, then builds what it runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import orjson

FD_ENV = "DOSSIER_CHILD_FD"  # the child's end of the socket pair
PARENT_ENV = "DOSSIER_CHILD_PARENT"  # the pid of the process `dossier-stream worker` started
LOGLEVEL_ENV = "DOSSIER_CHILD_LOGLEVEL"  # the worker's --loglevel
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int, what: str) -> None:
    """SIGKILL this process when its parent ends (Linux); exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        raise SystemExit(f"{what}: the worker that started it is gone")


def read_line(sock: socket.socket, what: str) -> bytes:
    """The first line on the socket, and not a byte after it: what follows is the event
    loop's to read, and the worker may have sent it already (a byte a call: the settings
    line is read once, and is a few KiB)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            raise SystemExit(f"{what}: the worker closed the socket before the settings")
        data += byte
    return bytes(data)


def connect(what: str, module: str) -> tuple[socket.socket, dict[str, Any], str] | None:
    """This child's socket, the settings the worker sent, and the worker's log level.

    None (after a line on stderr) when the process was not started by a worker.
    """
    fd, parent = os.environ.get(FD_ENV), os.environ.get(PARENT_ENV)
    if fd is None or parent is None:
        print(f"{module} is started by `dossier-stream worker`, not by hand", file=sys.stderr)
        return None
    die_with_parent(int(parent), what)
    sock = socket.socket(fileno=int(fd))
    doc = orjson.loads(read_line(sock, what))["settings"]
    return sock, doc, os.environ.get(LOGLEVEL_ENV, "info")


def run(what: str, module: str, build: Callable[[Any, socket.socket, str], Any]) -> int:
    """A child's main: its socket and settings, the compiled core activated (before
    anything imports it: the settings module does), then `build(settings, socket,
    loglevel)` run from the command line (a mode or Faust worker)."""
    line = connect(what, module)
    if line is None:
        return 2
    sock, doc, loglevel = line
    from common import native

    native.activate()
    from stream_apps.settings import WorkerSettings

    build(WorkerSettings(**doc), sock, loglevel).execute_from_commandline()
    return 0
