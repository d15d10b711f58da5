"""The HTTP commands' listening socket: answers on kept-alive connections are not delayed."""

from __future__ import annotations

import asyncio
import socket

import pytest

from common.errors import CommandError
from dossier_stream.listen import listening_socket


def test_accepted_connections_get_tcp_nodelay() -> None:
    # asyncio sets TCP_NODELAY on an accepted connection only when the listening socket
    # names IPPROTO_TCP; without it each kept-alive answer waits for a delayed ACK.
    async def accepted_nodelay() -> int:
        sock = listening_socket("127.0.0.1", 0)
        found: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("socket")
            found.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        value = await asyncio.wait_for(found, 10)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_port_in_use_is_a_clear_error() -> None:
    taken = listening_socket("127.0.0.1", 0)
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(CommandError, match=f"cannot listen on 127.0.0.1:{port}"):
            listening_socket("127.0.0.1", port)
    finally:
        taken.close()
