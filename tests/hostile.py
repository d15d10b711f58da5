"""A corpus of hostile messages: what real agency feeds and broken clients send.

Each `Hostile` is one Kafka message (key and raw value) and what the worker must do with
it: dead-letter it with a reason containing `reason`, or apply it by a documented rule
(`applied`: it counts, as the reference says). The corpus is built around a few clean
dossiers of the workload (`Anchors`) whose events all come before the corpus in their
partition, and fresh dossiers (`HX-...`) that exist only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from schemas.events import DossierEvent
from tests.factories import event_doc

# What becomes of a message.
DEAD = "dead_letter"
APPLIED = "applied"
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Hostile:
    """One message of the corpus and the fate the worker must give it."""

    name: str
    key: bytes | None
    value: bytes
    fate: str  # DEAD, APPLIED or DUPLICATE
    reason: str = ""  # a fragment of the dead letter's reason
    flags: str = ""  # the flag its dossier must end with ("" for none)

    @property
    def dossier_id(self) -> str | None:
        try:
            doc = orjson.loads(self.value)
        except orjson.JSONDecodeError:
            return None
        return doc.get("dossier_id") if isinstance(doc, dict) else None


@dataclass(frozen=True)
class Anchors:
    """Clean dossiers of the workload that the corpus aims at, and the time to date it at."""

    finished: DossierEvent  # the last event of a dossier whose events are all published
    at: datetime  # an instant inside the workload, after the anchors' events


def _bytes(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


def _doc(kind: str, dossier: str, seq: int, at: datetime, **over: Any) -> dict[str, Any]:
    return event_doc(kind, at=at, dossier_id=dossier, sequence=seq, **over)


def _msg(
    name: str, doc: dict[str, Any] | bytes, fate: str, reason: str = "", flags: str = ""
) -> Hostile:
    value = doc if isinstance(doc, bytes) else _bytes(doc)
    key = b"hostile"  # a message with no readable dossier id still has a key
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("dossier_id"), str):
        key = parsed["dossier_id"].encode()
    return Hostile(name, key, value, fate, reason, flags)


def corpus(anchors: Anchors, run: str) -> list[Hostile]:
    """The hostile messages, in the order they are to be sent; `run` keeps ids unique."""
    at = anchors.at
    later = at + timedelta(hours=2)
    hx = f"HX-{run}"
    out: list[Hostile] = []

    # -- undecodable or not an object: no dossier can be read ----------------------------
    out += [
        _msg("not json", b"not json at all", DEAD, "invalid event"),
        _msg("empty value", b"", DEAD, "invalid event"),
        _msg("json array", b"[1, 2, 3]", DEAD, "invalid event"),
        _msg("json string", b'"accepted"', DEAD, "invalid event"),
        _msg("json number", b"42", DEAD, "invalid event"),
        _msg("json null", b"null", DEAD, "invalid event"),
        _msg("invalid utf-8", b'{"dossier_id": "\xff\xfe", "sequence": 1}', DEAD, "invalid"),
        _msg("deep nesting", b"[" * 5000 + b"]" * 5000, DEAD, "invalid event"),
        _msg("nan", b'{"dossier_id": "X", "sequence": NaN}', DEAD, "invalid event"),
        _msg(
            "one megabyte",
            b'{"dossier_id": "'
            + f"{hx}-BIG".encode()
            + b'", "sequence": 1, "padding": "'
            + b"A" * 1_000_000
            + b'"}',
            DEAD,
            "padding",
        ),
        _msg("dossier id not a string", {"dossier_id": {"a": 1}, "sequence": 1}, DEAD, "invalid"),
        _msg("sequence zero", _doc("accepted", f"{hx}-SEQ0", 0, at), DEAD, "sequence"),
        _msg(
            "sequence as text",
            _doc("accepted", f"{hx}-SEQT", 1, at) | {"sequence": "1"},
            DEAD,
            "sequence",
        ),
    ]
    missing_id = _doc("accepted", f"{hx}-NOID", 1, at)
    del missing_id["dossier_id"]
    out.append(_msg("missing dossier_id", missing_id, DEAD, "dossier_id"))

    # -- invalid, but the dossier and sequence are readable: the sequence is used up -----
    # HX-VOID: 1 accepted, 2 fails the contract, 3 resolved applies anyway.
    void = f"{hx}-VOID"
    out.append(_msg("void: accepted", _doc("accepted", void, 1, at), APPLIED))
    out.append(
        _msg("void: wrong status", _doc("processing", void, 2, at, status=9), DEAD, "used up")
    )
    out.append(_msg("void: later event applies", _doc("resolved", void, 3, later), APPLIED))
    missing_status = _doc("accepted", f"{hx}-NOSTATUS", 1, at)
    del missing_status["status"]
    out += [
        _msg("missing status", missing_status, DEAD, "status"),
        _msg(
            "accepted without time_limit",
            _doc("accepted", f"{hx}-NOLIMIT", 1, at) | {"time_limit": None},
            DEAD,
            "time_limit",
        ),
        _msg(
            "year 1900",
            _doc("accepted", f"{hx}-1900", 1, at) | {"occurred_at": "1900-01-01T08:00:00+07:00"},
            DEAD,
            "occurred_at",
        ),
        _msg(
            "unknown agency",
            _doc(
                "accepted", f"{hx}-AGENCY", 1, at, agency={"code": "SO-KHONG-CO", "level": "city"}
            ),
            DEAD,
            "unknown agency",
        ),
        _msg(
            "agency level wrong",
            _doc("accepted", f"{hx}-LEVEL", 1, at, agency={"code": "SO-YTE", "level": "commune"}),
            DEAD,
            "agency",
        ),
        _msg(
            "personal data field",
            _doc("accepted", f"{hx}-PII", 1, at) | {"citizen_name": "Nguyễn Văn A"},
            DEAD,
            "citizen_name",
        ),
        _msg(
            "withdrawn without reason",
            _doc("withdrawn", f"{hx}-NOREASON", 1, at) | {"reason": None},
            DEAD,
            "reason",
        ),
        _msg(
            "online without mode",
            _doc("accepted", f"{hx}-NOMODE", 1, at) | {"online_mode": None},
            DEAD,
            "online_mode",
        ),
        _msg(
            "not a uuid",
            _doc("accepted", f"{hx}-UUID", 1, at) | {"event_id": "not-a-uuid"},
            DEAD,
            "event_id",
        ),
        _msg(
            "naive time",
            _doc("accepted", f"{hx}-NAIVE", 1, at) | {"occurred_at": "2025-09-23T08:00:00"},
            DEAD,
            "occurred_at",
        ),
    ]

    # -- dated in the future (against the wall clock) ------------------------------------
    wall = datetime.now(at.tzinfo)
    out += [
        _msg("year 2099", _doc("accepted", f"{hx}-2099", 1, at.replace(year=2099)), DEAD, "future"),
        _msg(
            "an hour ahead (local time labelled Z)",
            _doc("accepted", f"{hx}-AHEAD", 1, wall + timedelta(hours=1)),
            DEAD,
            "future",
        ),
    ]

    # -- inputs that stopped the worker before: now applied by their rule ----------------
    out.append(
        _msg(
            "appointment in 2031",
            _doc("accepted", f"{hx}-2031", 1, at, appointment_at="2031-06-02T17:00:00+07:00"),
            APPLIED,
        )
    )
    out.append(
        _msg(
            "appointment in 2100, 3650-day limit",
            _doc(
                "accepted",
                f"{hx}-2100",
                1,
                at,
                appointment_at="2100-12-31T17:00:00+07:00",
                time_limit={"value": 3650, "unit": "calendar_days"},
            ),
            APPLIED,
        )
    )
    back = f"{hx}-BACK"
    out += [
        _msg("backwards: accepted", _doc("accepted", back, 1, at), APPLIED),
        _msg(
            "backwards: supplement requested",
            _doc("supplement_requested", back, 2, at + timedelta(days=2)),
            APPLIED,
        ),
        _msg(
            "backwards: supplement received before it was asked",
            _doc("supplement_received", back, 3, at + timedelta(days=1)),
            APPLIED,
            flags="time_clamped",
        ),
    ]
    late = f"{hx}-LATEPAUSE"
    out += [
        _msg(
            "pause after due: accepted",
            _doc(
                "accepted",
                late,
                1,
                at - timedelta(days=3),
                appointment_at=(at - timedelta(days=1)).isoformat(),
            ),
            APPLIED,
        ),
        _msg(
            "pause after due: supplement requested late",
            _doc("supplement_requested", late, 2, at),
            APPLIED,
        ),
    ]

    # -- sequences: a gap never filled, an impossible move -------------------------------
    gap = f"{hx}-GAP"
    out += [
        _msg("gap: accepted", _doc("accepted", gap, 1, at), APPLIED),
        _msg(
            "gap: sequence 3 with 2 never sent",
            _doc("processing", gap, 3, later),
            APPLIED,
            flags="gap_released",
        ),
        _msg("gap: sequence 4", _doc("resolved", gap, 4, later + timedelta(hours=1)), APPLIED),
        _msg(
            "impossible transition",
            _doc("resolved", f"{hx}-IMPOSSIBLE", 1, at),
            DEAD,
            "impossible transition",
        ),
    ]

    # -- identity: another agency's dossier under a known id, resends, transfers ----------
    done = anchors.finished
    nxt = done.sequence + 1
    base = {
        "agency": done.agency.model_dump(mode="json"),
        "procedure": done.procedure.model_dump(mode="json"),
        "channel": done.channel.value,
        "online_mode": done.online_mode.value if done.online_mode else None,
    }
    other_agency = "SO-TP" if done.agency.code != "SO-TP" else "SO-YTE"
    out += [
        _msg("exact resend of a clean event", done.model_dump_json().encode(), DUPLICATE),
        _msg(
            "same sequence, other content",
            _doc("accepted", done.dossier_id, 1, at, **base),
            DEAD,
            "already used",
        ),
        _msg(
            "another agency under a known id",
            _doc(
                "processing",
                done.dossier_id,
                nxt,
                later,
                **(base | {"agency": {"code": other_agency, "level": "city"}}),
            ),
            DEAD,
            "conflict: agency",
        ),
        _msg(
            "another procedure under a known id",
            _doc(
                "processing",
                done.dossier_id,
                nxt,
                later,
                **(base | {"procedure": {"code": "9.999999", "field": base["procedure"]["field"]}}),
            ),
            DEAD,
            "conflict: procedure",
        ),
        _msg(
            "another channel under a known id",
            _doc(
                "processing",
                done.dossier_id,
                nxt,
                later,
                **(base | {"channel": "post", "online_mode": None}),
            ),
            DEAD,
            "conflict: channel",
        ),
    ]
    moved = f"{hx}-TRANSFER"
    out += [
        _msg("transfer: accepted at SO-YTE", _doc("accepted", moved, 1, at), APPLIED),
        _msg(
            "transfer: to SO-TP",
            _doc(
                "transferred", moved, 2, later, status=2, agency={"code": "SO-TP", "level": "city"}
            ),
            APPLIED,
        ),
        _msg(
            "transfer: resolved at SO-TP",
            _doc(
                "resolved",
                moved,
                3,
                later + timedelta(hours=3),
                agency={"code": "SO-TP", "level": "city"},
            ),
            APPLIED,
        ),
        _msg(
            "transfer: old agency afterwards",
            _doc("returned", moved, 4, later + timedelta(hours=4)),
            DEAD,
            "conflict: agency",
        ),
    ]

    # -- routing: the key must be the dossier id -----------------------------------------
    routed = _doc("accepted", f"{hx}-KEY", 1, at)
    out.append(Hostile("wrong key", b"some-other-key", _bytes(routed), DEAD, "misrouted"))
    out.append(
        Hostile("no key", None, _bytes(_doc("accepted", f"{hx}-NOKEY", 1, at)), DEAD, "misrouted")
    )
    return out


def applied_events(messages: list[Hostile]) -> list[DossierEvent]:
    """The corpus's messages that must count, as events (for the reference)."""
    return [
        DossierEvent.model_validate_json(h.value)
        for h in messages
        if h.fate in (APPLIED, DUPLICATE)
    ]


def documents(run: str = "parity") -> list[Any]:
    """Every decodable JSON document of the corpus (for contract parity checks)."""
    anchor_first = DossierEvent.model_validate(event_doc("accepted"))
    anchor_done = DossierEvent.model_validate(event_doc("resolved", sequence=3))
    at = anchor_first.occurred_at + timedelta(days=1)
    out = []
    for h in corpus(Anchors(anchor_done, at), run):
        try:
            doc = orjson.loads(h.value)
        except orjson.JSONDecodeError:
            continue  # not JSON: no validator is asked
        if not isinstance(doc, list):  # deep nesting aside, every document is kept
            out.append(doc)
    return out
