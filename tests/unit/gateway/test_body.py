"""Bodies: one JSON object, a JSON array, or JSON Lines; the limits; what is refused."""

from __future__ import annotations

import pytest

from gateway.body import UnsupportedMediaType, check_size, media_type, parse_body
from gateway.errors import BodyError, TooLargeError


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (None, "json"),
        ("application/json", "json"),
        ("application/json; charset=utf-8", "json"),
        ("Application/JSON", "json"),
        ("application/vnd.agency+json", "json"),
        ("application/x-ndjson", "ndjson"),
        ("application/jsonl; charset=utf-8", "ndjson"),
    ],
)
def test_media_types(header: str | None, kind: str) -> None:
    assert media_type(header) == kind


@pytest.mark.parametrize("header", ["text/plain", "application/x-www-form-urlencoded", "text/csv"])
def test_other_media_types_are_refused(header: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        media_type(header)


@pytest.mark.parametrize(
    ("raw", "kind", "items"),
    [
        (b'{"a": 1}', "json", [{"a": 1}]),
        (b'[{"a": 1}, {"a": 2}]', "json", [{"a": 1}, {"a": 2}]),
        (b'[{"a": 1}, 5, "x"]', "json", [{"a": 1}, 5, "x"]),  # items checked later
        (b'{"a": 1}\n{"a": 2}\n', "ndjson", [{"a": 1}, {"a": 2}]),
        (b'{"a": 1}\r\n\r\n  \n{"a": 2}', "ndjson", [{"a": 1}, {"a": 2}]),  # blank lines
        (b"7", "json", [7]),
    ],
)
def test_items_of_each_format(raw: bytes, kind: str, items: list[object]) -> None:
    assert parse_body(raw, kind, max_events=10) == items


@pytest.mark.parametrize(
    ("raw", "kind", "says"),
    [
        (b"", "json", "not valid JSON"),
        (b"{nope", "json", "not valid JSON"),
        (b"[]", "json", "no event"),
        (b"\n\n", "ndjson", "no event"),
        (b'{"a": 1}\n{nope\n', "ndjson", "line 2"),
        (b"\xff\xfe", "json", "not valid JSON"),
    ],
)
def test_what_is_no_body_of_events(raw: bytes, kind: str, says: str) -> None:
    with pytest.raises(BodyError, match=says) as info:
        parse_body(raw, kind, max_events=10)
    assert not isinstance(info.value, TooLargeError)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [(b"[" + b",".join([b"{}"] * 4) + b"]", "json"), (b"{}\n" * 4, "ndjson")],
)
def test_more_events_than_the_limit(raw: bytes, kind: str) -> None:
    assert len(parse_body(raw, kind, max_events=4)) == 4
    with pytest.raises(TooLargeError):
        parse_body(raw, kind, max_events=3)


def test_the_size_limit_is_inclusive() -> None:
    check_size(1024, 1024)
    with pytest.raises(TooLargeError):
        check_size(1025, 1024)
