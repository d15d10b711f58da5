"""The store with a signature verifier: only the gateway or the agency itself is believed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from schemas.registry import AgencyRegistry
from schemas.signing import GATEWAY_SIGNER, Verifier, sign, signer_key
from stream_apps.book import PartitionBook, new_partition_book
from stream_apps.store import PartitionStore, Verdict
from tests.factories import T0, lifecycle

CALENDAR = WorkingCalendar()
NOW = (T0 + timedelta(days=400)).timestamp()
MASTER = "the worker's master key"
# The factories' dossiers belong to Sở Y tế (SO-YTE).
OWN, OTHER = "SO-YTE", "SO-XD"


def store() -> PartitionStore:
    return PartitionStore(
        0,
        Lifecycle(calendar_resume(CALENDAR)),
        AgencyRegistry.default(),
        verifier=Verifier(MASTER),
    )


def book() -> PartitionBook:
    return new_partition_book(CALENDAR, second_supplement_late=True)


def raw(ev: Any) -> bytes:
    return ev.model_dump_json().encode()


def signed(signer: str, value: bytes) -> list[tuple[str, bytes]]:
    return sign(signer, signer_key(MASTER, signer), value)


def process(s: PartitionStore, b: PartitionBook, offset: int, value: bytes, signer: str | None):
    headers = signed(signer, value) if signer is not None else None
    dossier = orjson.loads(value).get("dossier_id", "")
    return s.process(offset, dossier.encode(), value, b, now=NOW, headers=headers)


def test_events_signed_by_their_agency_or_the_gateway_apply() -> None:
    s, b = store(), book()
    e1, e2, e3, e4 = lifecycle()
    signers = [OWN, GATEWAY_SIGNER, OWN, GATEWAY_SIGNER]
    verdicts = [
        process(s, b, i, raw(e), who)[0]
        for i, (e, who) in enumerate(zip((e1, e2, e3, e4), signers, strict=True))
    ]
    assert verdicts == [Verdict.APPLIED] * 4
    assert s.counts()["applied"] == 4


def test_an_unsigned_event_is_dead_lettered_and_touches_no_dossier() -> None:
    s, b = store(), book()
    e1, *_ = lifecycle()
    verdict, letters = process(s, b, 0, raw(e1), None)
    assert verdict is Verdict.DEAD_LETTER
    assert letters[0].reason.startswith("unauthenticated: ")
    assert e1.dossier_id not in s.records
    assert b.scopes() == []  # no figure moved
    counts = s.counts()
    assert (counts["events_in"], counts["dead_lettered"], counts["applied"]) == (1, 1, 0)


def test_a_forged_event_does_not_use_up_the_sequence_the_real_one_needs() -> None:
    s, b = store(), book()
    e1, e2, *_ = lifecycle()
    verdict, letters = process(s, b, 0, raw(e1), OTHER)  # valid signature, wrong agency
    assert verdict is Verdict.DEAD_LETTER
    assert letters[0].reason.startswith("unauthenticated: ")
    assert f"'{OTHER}'" in letters[0].reason and f"'{OWN}'" in letters[0].reason
    assert e1.dossier_id not in s.records
    # The agency's own sequence 1 still applies, and its sequence 2 after it.
    assert process(s, b, 1, raw(e1), OWN)[0] is Verdict.APPLIED
    assert process(s, b, 2, raw(e2), OWN)[0] is Verdict.APPLIED
    assert s.records[e1.dossier_id].state.last_seq == 2


def test_an_invalid_event_signed_by_another_agency_uses_up_no_sequence() -> None:
    s, b = store(), book()
    e1, e2, *_ = lifecycle()
    bad = e2.model_dump(mode="json")
    bad["status"] = 9  # fails the contract
    process(s, b, 0, raw(e1), OWN)
    verdict, letters = process(s, b, 1, orjson.dumps(bad), OTHER)
    assert verdict is Verdict.DEAD_LETTER and "used up" not in letters[0].reason
    assert process(s, b, 2, raw(e2), OWN)[0] is Verdict.APPLIED


def test_an_invalid_event_signed_by_its_own_agency_still_uses_up_its_sequence() -> None:
    s, b = store(), book()
    e1, e2, e3, _ = lifecycle()
    bad = e2.model_dump(mode="json")
    bad["status"] = 9
    process(s, b, 0, raw(e1), OWN)
    verdict, letters = process(s, b, 1, orjson.dumps(bad), OWN)
    assert verdict is Verdict.DEAD_LETTER and "used up" in letters[0].reason
    assert process(s, b, 2, raw(e3), OWN)[0] is Verdict.APPLIED  # no gap waits for 2


def test_a_tampered_event_is_unauthenticated() -> None:
    s, b = store(), book()
    e1, *_ = lifecycle()
    value = raw(e1)
    headers = signed(OWN, value)
    tampered = value.replace(b'"online"', b'"in_person"')
    assert tampered != value
    verdict, letters = s.process(0, e1.dossier_id.encode(), tampered, b, now=NOW, headers=headers)
    assert verdict is Verdict.DEAD_LETTER
    assert "does not match" in letters[0].reason


def test_a_redelivered_unauthenticated_message_is_not_counted_twice() -> None:
    s, b = store(), book()
    e1, *_ = lifecycle()
    process(s, b, 5, raw(e1), None)
    before = s.counts()
    assert process(s, b, 5, raw(e1), None)[0] is Verdict.REDELIVERY
    assert s.counts() == before
