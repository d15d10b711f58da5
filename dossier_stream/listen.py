"""The listening socket of the commands that serve HTTP (`dashboard`, `gateway serve`)."""

from __future__ import annotations

import socket

from common.errors import CommandError


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port (port 0: any), for uvicorn to serve on.

    IPPROTO_TCP is named: asyncio sets TCP_NODELAY on accepted connections only when the
    listening socket says so, and without it every keep-alive answer waits ~40 ms (Nagle).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock
