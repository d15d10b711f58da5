"""Stand-ins for what `watch` and `demo` read and draw on: Redis hashes and a screen."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from rich.console import Console


class FakeRedis:
    """The reads `render` and the demo's alert panel make, from hashes, sets and streams
    held in memory (a stream: its entries' field maps, oldest first)."""

    def __init__(
        self,
        hashes: Mapping[str, Mapping[str, Any]],
        sets: Mapping[str, set[str]] | None = None,
        streams: Mapping[str, list[Mapping[str, str]]] | None = None,
    ) -> None:
        self.hashes = {
            k: {f.encode(): str(v).encode() for f, v in h.items()} for k, h in hashes.items()
        }
        self.sets = {k: {m.encode() for m in s} for k, s in (sets or {}).items()}
        self.streams = {
            k: [
                (f"{i + 1}-0".encode(), {f.encode(): v.encode() for f, v in fields.items()})
                for i, fields in enumerate(entries)
            ]
            for k, entries in (streams or {}).items()
        }

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return self.hashes.get(key, {})

    def smembers(self, key: str) -> set[bytes]:
        return self.sets.get(key, set())

    def xlen(self, key: str) -> int:
        return len(self.streams.get(key, []))

    def xrevrange(
        self, key: str, max: str = "+", min: str = "-", count: int | None = None
    ) -> list[tuple[bytes, dict[bytes, bytes]]]:
        """Newest first, from `max` ("+", an id, or "(id" exclusive); `min` must be "-"."""
        assert min == "-"

        def seq(entry_id: bytes) -> int:
            return int(entry_id.decode().split("-")[0])

        entries = self.streams.get(key, [])[::-1]
        if max != "+":
            exclusive = max.startswith("(")
            bound = int(max.lstrip("(").split("-")[0])
            entries = [
                e for e in entries if seq(e[0]) < bound or (not exclusive and seq(e[0]) == bound)
            ]
        return entries[:count] if count is not None else entries


def text_of(renderable: Any, width: int = 160) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out
