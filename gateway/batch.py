"""One request's events: who may send them, whether they hold, and the records to write.

Rules, in the order a request meets them (each refuses the whole request, so that an
agency system resends a batch as a whole and never has to work out which part went):
1. authorization (403): an event whose `agency.code` is not the caller's agency. It is
   read from the item as sent (whitespace stripped, as the contract does), so an event
   for another agency is refused even when it is also invalid; and checked again on the
   validated event.
2. validation (400): every event against the contract and the agency registry
   (`schemas.events.parse_event`, as `publish` does), each failure named by index and field;
   and no event_id twice in one request (decision: a batch that repeats an event is a
   mistake of the sending system; a resend in a later request is the worker's to ignore).
3. records: each event's JSON as sent (the bytes of the object, re-serialised compactly
   by orjson, never the model's re-rendering), keyed by dossier id, on the partition of
   its key (`partition_for`, as `publish` does), signed when a signer and key are set.
No I/O: the sender writes the records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.errors import EventValidationError, FieldError
from schemas.events import DossierEvent, parse_event
from schemas.signing import Header, sign

HEADERS: list[Header] = [("content-type", b"application/json"), ("schema", b"dossier-event.v1")]


@dataclass(frozen=True)
class Forbidden:
    """Events of the request that name another agency than the caller's."""

    agency: str
    indexes: list[int]


@dataclass(frozen=True)
class Invalid:
    """Events of the request that do not satisfy the contract, by index."""

    errors: dict[int, list[FieldError]]


@dataclass(frozen=True)
class Record:
    """One event as it goes to Kafka."""

    index: int
    event_id: str
    dossier_id: str
    agency: str
    key: bytes
    value: bytes
    partition: int
    headers: list[Header]


def claimed_agency(item: Any) -> str | None:
    """The agency code an item names, as the contract would read it; None if it names none."""
    if not isinstance(item, dict):
        return None
    agency = item.get("agency")
    if not isinstance(agency, dict):
        return None
    code = agency.get("code")
    return code.strip() if isinstance(code, str) else None


def forbidden_indexes(items: Sequence[Any], agency: str) -> list[int]:
    """Indexes of the items that name an agency other than `agency`."""
    out = []
    for index, item in enumerate(items):
        claimed = claimed_agency(item)
        if claimed is not None and claimed != agency:
            out.append(index)
    return out


def validate(items: Sequence[Any], registry: Any) -> tuple[list[DossierEvent], Invalid | None]:
    """Every item validated: the events, and the failures by index (None when all hold)."""
    events: list[DossierEvent] = []
    errors: dict[int, list[FieldError]] = {}
    first_of: dict[str, int] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors[index] = [FieldError("event", "expected a JSON object")]
            continue
        try:
            event = parse_event(item, registry)
        except EventValidationError as exc:
            errors[index] = exc.errors
            continue
        event_id = str(event.event_id)
        if event_id in first_of:
            message = f"the same event_id as the event at index {first_of[event_id]}"
            errors[index] = [FieldError("event_id", message)]
            continue
        first_of[event_id] = index
        events.append(event)
    return events, (Invalid(errors) if errors else None)


def check(
    items: Sequence[Any], agency: str, registry: Any
) -> list[DossierEvent] | Forbidden | Invalid:
    """The request's events when the caller may send them all and they all hold."""
    forbidden = forbidden_indexes(items, agency)
    events, invalid = validate(items, registry)
    if not forbidden and invalid is None:
        # The contract may read a code differently from `claimed_agency`: check again.
        forbidden = [i for i, e in enumerate(events) if e.agency.code != agency]
    if forbidden:
        return Forbidden(agency, forbidden)
    if invalid is not None:
        return invalid
    return events


def records(
    items: Sequence[dict[str, Any]],
    events: Sequence[DossierEvent],
    partitions: int,
    partition_for: Callable[[bytes, int], int],
    signer: tuple[str, str] | None = None,
) -> list[Record]:
    """The Kafka records of validated events (`items` as sent, `events` as validated)."""
    out = []
    for index, (item, event) in enumerate(zip(items, events, strict=True)):
        value = orjson.dumps(item)
        key = event.dossier_id.encode("utf-8")
        headers = HEADERS if signer is None else HEADERS + sign(signer[0], signer[1], value)
        out.append(
            Record(
                index=index,
                event_id=str(event.event_id),
                dossier_id=event.dossier_id,
                agency=event.agency.code,
                key=key,
                value=value,
                partition=partition_for(key, partitions),
                headers=headers,
            )
        )
    return out
