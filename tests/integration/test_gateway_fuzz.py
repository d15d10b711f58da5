"""Fuzzing the running gateway: documented statuses only, and exactly once on the topic.

Two generators drive one gateway process on the real broker:
- Schemathesis, from the gateway's own OpenAPI description (`/openapi.json`): request
  bodies that fit (or, with negative generation, break) the documented schemas, with and
  without the token;
- Hypothesis, from the project's factories: batches of valid events of the token's agency
  in the three formats, mixed with mutations (a field dropped or given a wrong value,
  another agency, a duplicate) and junk bytes.
Every response must have a status the description documents for the operation (never a
500), and fit its documented model. At the end, the events the gateway accepted (202)
must be on the topic exactly once: the topic grew by their count, and its event ids are
unique and the accepted ones; and every event on it names the token's agency.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import Names
from tests.factories import event_doc
from tests.integration.gateways import (
    GatewayProcess,
    add_token,
    end_offsets,
    gateway_env,
    read_all,
)

# JSON Lines bodies are generated as text (the description's schema), sent as they are.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

SCHEMATHESIS_CASES = 150
HYPOTHESIS_CASES = 120
XD = {"code": "SO-XD", "level": "city"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class Ledger:
    """What the gateway said it accepted, and every status it answered."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.statuses: Counter[int] = Counter()

    def record(self, status: int, body: Any) -> None:
        self.statuses[status] += 1
        if status == 202:
            self.accepted.extend(e["event_id"] for e in body["events"])


@pytest.fixture
def running(
    stack, names: Names, make_topics, tmp_path: Path
) -> Iterator[tuple[GatewayProcess, str]]:  # type: ignore[no-untyped-def]
    make_topics(names, partitions=3)
    tokens_file = tmp_path / "tokens.json"
    token = add_token(tokens_file, "SO-XD")
    env = gateway_env(
        stack, names, tokens_file,
        gateway_max_events="50", gateway_burst="100000", gateway_rate_per_s="100000",
        gateway_max_body_bytes="65536",
    )  # fmt: skip
    with GatewayProcess(env, tmp_path / "gateway.log") as gateway:
        yield gateway, token


# -- Hypothesis bodies from the factories --------------------------------------------------

KINDS = ["accepted", "processing", "supplement_requested", "resolved", "refused", "withdrawn"]
JUNK_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),  # what JSON encoders carry
    st.text(max_size=20),
    st.just([]),
    st.just({}),
)


def clean_event(draw: st.DrawFn) -> dict[str, Any]:
    doc = event_doc(
        draw(st.sampled_from(KINDS)),
        agency=XD,
        dossier_id=f"HP-SO-XD-{draw(st.integers(0, 30)):06d}",
        sequence=draw(st.integers(1, 5)),
    )
    doc["event_id"] = str(uuid.uuid4())  # fresh: the accepted ids are unique
    return doc


def mutate(draw: st.DrawFn, doc: Any) -> Any:
    """One thing wrong with an event: a field dropped or junk, another agency, an unknown
    field, a resent event (the same id), or no object at all."""
    if not isinstance(doc, dict) or not doc:  # spoiled already
        return draw(JUNK_VALUES)
    mutation = draw(st.sampled_from(["drop", "value", "agency", "other", "extra", "junk"]))
    key = draw(st.sampled_from(sorted(doc)))
    doc = dict(doc)
    if mutation == "drop":
        del doc[key]
    elif mutation == "value":
        doc[key] = draw(JUNK_VALUES)
    elif mutation == "agency":  # a valid event of another agency
        doc["agency"] = {"code": draw(st.sampled_from(["SO-YTE", "SO-TC"])), "level": "city"}
    elif mutation == "other":  # codes the registry does not have at this level
        doc["agency"] = {"code": draw(st.sampled_from(["11311", "NOPE"])), "level": "city"}
    elif mutation == "extra":
        doc["applicant_name"] = "Nguyễn Văn A"
    else:
        return draw(JUNK_VALUES)
    return doc


@st.composite
def request_body(draw: st.DrawFn) -> tuple[bytes, str]:
    """A batch of valid events, then none, one or several of them spoiled; or junk bytes."""
    if draw(st.integers(0, 9)) == 0:
        junk = draw(st.binary(max_size=200))
        return junk, draw(st.sampled_from(["application/json", "application/x-ndjson"]))
    items: list[Any] = [clean_event(draw) for _ in range(draw(st.integers(0, 60)))]
    spoiled = draw(st.sampled_from(["none", "one", "several", "foreign"]))
    if items and spoiled == "foreign":  # one valid event of another agency among valid ones
        index = draw(st.integers(0, len(items) - 1))
        items[index] = items[index] | {"agency": {"code": "SO-YTE", "level": "city"}}
    elif items and spoiled != "none":
        count = 1 if spoiled == "one" else draw(st.integers(1, len(items)))
        for index in draw(st.lists(st.integers(0, len(items) - 1), min_size=count, max_size=count)):
            items[index] = mutate(draw, items[index])
    if items and draw(st.integers(0, 19)) == 0:  # the same event twice in one batch
        items.append(items[0])
    form = draw(st.sampled_from(["object", "array", "ndjson"]))
    if form == "object" and items:
        return orjson.dumps(items[0]), "application/json"
    if form == "ndjson":
        return b"\n".join(orjson.dumps(i) for i in items), "application/x-ndjson"
    return orjson.dumps(items), "application/json"


def documented_statuses(spec: dict[str, Any]) -> set[int]:
    return {int(s) for s in spec["paths"]["/v1/events"]["post"]["responses"]}


def test_every_answer_is_documented_and_every_accepted_event_is_on_the_topic_once(
    running: tuple[GatewayProcess, str], stack, names: Names
) -> None:  # type: ignore[no-untyped-def]
    gateway, token = running
    auth = {"Authorization": f"Bearer {token}"}
    ledger = Ledger()
    seen: set[tuple[str, int]] = set()
    before = sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values())
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    documented = documented_statuses(schema.raw_schema)
    operation = schema["/v1/events"]["POST"]
    # The token as a fixed header (Schemathesis would make one up from the security scheme).
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE, headers=auth),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=auth),
    )
    quiet = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large]

    calls = Counter[str]()

    @settings(max_examples=SCHEMATHESIS_CASES, deadline=None, suppress_health_check=quiet)
    @given(case=cases)
    def schemathesis_case(case: schemathesis.Case) -> None:
        calls["schemathesis"] += 1
        if calls["schemathesis"] % 10 == 0:  # one case in ten without the token
            case.headers = {k: v for k, v in (case.headers or {}).items() if k != "Authorization"}
        response = case.call(base_url=gateway.url)
        case.validate_response(response, checks=CHECKS)
        assert response.status_code in documented
        ledger.record(response.status_code, response.json())
        seen.add((case.media_type or "", response.status_code))

    @settings(max_examples=HYPOTHESIS_CASES, deadline=None, suppress_health_check=quiet)
    @given(body=request_body())
    def factory_case(body: tuple[bytes, str]) -> None:
        content, media = body
        response = httpx.post(
            f"{gateway.url}/v1/events",
            content=content,
            headers=auth | {"Content-Type": media},
            timeout=30,
        )
        assert response.status_code in documented - {503}, response.text
        assert response.status_code != 500
        ledger.record(response.status_code, response.json())

    schemathesis_case()
    factory_case()

    assert ledger.statuses[202] > 0 and ledger.statuses[400] > 0 and ledger.statuses[403] > 0
    grown = sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values()) - before
    assert grown == len(ledger.accepted), ledger.statuses
    records = [orjson.loads(r.value) for r in read_all(stack.kafka_bootstrap, names.events_topic)]
    on_topic = [r["event_id"] for r in records]
    assert len(on_topic) == len(set(on_topic))
    # Nothing for another agency than the token's reached the topic.
    assert {r["agency"]["code"].strip() for r in records} <= {"SO-XD"}
    assert Counter(on_topic) == Counter(ledger.accepted)
    print(f"schemathesis: {sorted(seen)}")
    print(f"statuses: {dict(sorted(ledger.statuses.items()))}; accepted {len(ledger.accepted)}")
