"""Stand-ins for what `watch` and `demo` read and draw on: Redis hashes and a screen."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from rich.console import Console


class FakeRedis:
    """The reads `render` makes, from hashes and sets held in memory."""

    def __init__(
        self, hashes: Mapping[str, Mapping[str, Any]], sets: Mapping[str, set[str]] | None = None
    ) -> None:
        self.hashes = {
            k: {f.encode(): str(v).encode() for f, v in h.items()} for k, h in hashes.items()
        }
        self.sets = {k: {m.encode() for m in s} for k, s in (sets or {}).items()}

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return self.hashes.get(key, {})

    def smembers(self, key: str) -> set[bytes]:
        return self.sets.get(key, set())


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out
