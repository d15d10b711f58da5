"""A child process reads its settings line, and leaves what follows for its event loop."""

from __future__ import annotations

import socket

import pytest

from stream_apps.child_side import read_line


def test_the_settings_line_is_read_alone_when_more_came_with_it() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.sendall(b'{"settings": {"app_id": "x"}}\n{"figures_owned": true}\n')
        assert read_line(theirs, "stage process") == b'{"settings": {"app_id": "x"}}\n'
        assert theirs.recv(65536) == b'{"figures_owned": true}\n'


def test_a_socket_closed_before_the_settings_ends_the_child_with_a_reason() -> None:
    ours, theirs = socket.socketpair()
    with theirs:
        ours.sendall(b'{"settings": ')
        ours.close()
        with pytest.raises(SystemExit, match="stage process: the worker closed the socket"):
            read_line(theirs, "stage process")
