"""Request bodies: one event (a JSON object), a JSON array of events, or JSON Lines.

The media type says which: `application/json` (or any `+json` type, or none) is a JSON
object or array; `application/x-ndjson` (also `application/jsonl`, `application/json-seq`
is not supported) is one JSON value per line, blank lines ignored. What comes out is the
list of decoded items, each to be validated as an event; an item that is not an object is
left for the validation to name. No I/O: the adapter reads the bytes, within the size limit.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import BodyError, TooLargeError

JSON = "application/json"
NDJSON = "application/x-ndjson"
JSON_LINES_TYPES = frozenset({NDJSON, "application/jsonl", "application/x-jsonlines"})


class UnsupportedMediaType(BodyError):
    """The Content-Type is neither JSON nor JSON Lines."""


def media_type(content_type: str | None) -> str:
    """`json` or `ndjson` for a Content-Type header; UnsupportedMediaType otherwise."""
    base = (content_type or JSON).split(";", 1)[0].strip().lower()
    if base in ("", JSON) or (base.startswith("application/") and base.endswith("+json")):
        return "json"
    if base in JSON_LINES_TYPES:
        return "ndjson"
    raise UnsupportedMediaType(
        f"Content-Type {base[:60]!r} is not supported: send {JSON} (an event or an array "
        f"of events) or {NDJSON} (one event per line)"
    )


def check_size(size: int, max_bytes: int) -> None:
    """TooLargeError when a body of `size` bytes is beyond `max_bytes`."""
    if size > max_bytes:
        raise TooLargeError(f"the body is larger than {max_bytes} bytes: send smaller batches")


def parse_body(raw: bytes, kind: str, max_events: int) -> list[Any]:
    """The items of a body (`kind` from `media_type`), at most `max_events` of them.

    Raises BodyError when it is not JSON (naming the line for JSON Lines) or holds no
    event, TooLargeError beyond `max_events`.
    """
    if kind == "ndjson":
        items: list[Any] = []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            if len(items) == max_events:
                raise _too_many(max_events)
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise BodyError(f"line {number} is not valid JSON: {exc}") from None
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"the body is not valid JSON: {exc}") from None
        items = doc if isinstance(doc, list) else [doc]
        if len(items) > max_events:
            raise _too_many(max_events)
    if not items:
        raise BodyError("the body holds no event")
    return items


def _too_many(max_events: int) -> TooLargeError:
    return TooLargeError(f"more than {max_events} events in one request: send smaller batches")
