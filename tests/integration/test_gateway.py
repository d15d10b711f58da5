"""The gateway as a separate process against the real broker: what it publishes, and what not.

Each test starts `dossier-stream gateway serve` on its own topic, with tokens issued by
`dossier-stream gateway token add`, and checks the topic itself: its end offsets, and the
records' keys, values, partitions and signature headers.
"""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.batch import HEADERS
from producers.publisher import partition_for
from schemas.signing import signer_key, unauthenticated_reason
from tests.cli import run_cli
from tests.conftest import Names
from tests.factories import event_doc
from tests.integration.gateways import (
    MASTER_KEY,
    GatewayProcess,
    add_token,
    end_offsets,
    gateway_env,
    read_all,
)
from tests.integration.test_publisher import refusing_topic

PARTITIONS = 4
XD = {"code": "SO-XD", "level": "city"}
YTE = {"code": "SO-YTE", "level": "city"}


def xd_event(dossier: int, sequence: int = 1) -> dict[str, object]:
    kind = "accepted" if sequence == 1 else "processing"
    return event_doc(kind, agency=XD, dossier_id=f"HP-SO-XD-{dossier:06d}", sequence=sequence)


def post(url: str, token: str | None, content: bytes, media: str = "application/json"):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": media}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{url}/v1/events", content=content, headers=headers, timeout=30)


@pytest.fixture
def start_gateway(  # type: ignore[no-untyped-def]
    stack, names: Names, make_topics, tmp_path: Path
) -> Iterator[Callable[..., tuple[GatewayProcess, dict[str, str]]]]:
    """start(**settings) -> (running gateway, {agency: token}) for SO-XD and SO-YTE."""
    make_topics(names, partitions=PARTITIONS)
    tokens_file = tmp_path / "tokens.json"
    tokens = {agency: add_token(tokens_file, agency) for agency in ("SO-XD", "SO-YTE")}
    started: list[GatewayProcess] = []

    def start(scheme: str = "http", **settings: str) -> tuple[GatewayProcess, dict[str, str]]:
        env = gateway_env(stack, names, tokens_file, **settings)
        gateway = GatewayProcess(env, tmp_path / "gateway.log", scheme=scheme).start()
        started.append(gateway)
        return gateway, tokens

    yield start
    for gateway in started:
        gateway.stop()


def settle_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """End offsets once nothing more arrives (a late write would show within a second)."""
    time.sleep(1.0)
    return end_offsets(bootstrap, topic)


def test_an_event_for_another_agency_is_403_and_nothing_of_the_request_is_published(
    start_gateway, stack, names: Names
) -> None:  # type: ignore[no-untyped-def]
    gateway, tokens = start_gateway()
    before = end_offsets(stack.kafka_bootstrap, names.events_topic)
    batch = [xd_event(1), xd_event(2), event_doc(agency=YTE), xd_event(3), event_doc(agency=YTE)]
    response = post(gateway.url, tokens["SO-XD"], orjson.dumps(batch))
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["agency"] == "SO-XD" and body["indexes"] == [2, 4]
    assert settle_offsets(stack.kafka_bootstrap, names.events_topic) == before
    # The same events with the right token of each agency go through.
    assert post(gateway.url, tokens["SO-XD"], orjson.dumps(batch[:2])).status_code == 202
    after = end_offsets(stack.kafka_bootstrap, names.events_topic)
    assert sum(after.values()) - sum(before.values()) == 2
    log = gateway.log()
    assert "agency=SO-XD" in log and "status=403" in log
    assert all(token not in log for token in tokens.values())


def test_each_format_is_published_acknowledged_keyed_and_signed(
    start_gateway, stack, names: Names
) -> None:  # type: ignore[no-untyped-def]
    gateway, tokens = start_gateway(signer="gateway", signing_key=signer_key(MASTER_KEY, "gateway"))
    one = xd_event(1)
    array = [xd_event(2, seq) for seq in (1, 2, 3)] + [xd_event(3)]
    lines = [xd_event(4), xd_event(5), xd_event(4, 2)]
    requests = [
        (orjson.dumps(one), "application/json", [one]),
        (orjson.dumps(array), "application/json", array),
        (b"\n".join(orjson.dumps(e) for e in lines) + b"\n", "application/x-ndjson", lines),
    ]
    sent: list[dict[str, object]] = []
    results: dict[str, tuple[int, int]] = {}
    for content, media, events in requests:
        response = post(gateway.url, tokens["SO-XD"], content, media)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["count"] == len(events)
        assert [e["event_id"] for e in body["events"]] == [e["event_id"] for e in events]
        assert [e["index"] for e in body["events"]] == list(range(len(events)))
        results |= {e["event_id"]: (e["partition"], e["offset"]) for e in body["events"]}
        sent.extend(events)
    records = read_all(stack.kafka_bootstrap, names.events_topic)
    assert len(records) == len(sent) == 8
    by_id = {orjson.loads(r.value)["event_id"]: r for r in records}
    for event in sent:
        record = by_id[str(event["event_id"])]
        assert orjson.loads(record.value) == event
        assert record.key == str(event["dossier_id"]).encode()
        assert record.partition == partition_for(record.key, PARTITIONS)
        assert results[str(event["event_id"])] == (record.partition, record.offset)
        headers = list(record.headers)
        assert headers[: len(HEADERS)] == HEADERS
        assert unauthenticated_reason(MASTER_KEY, headers, record.value, "SO-XD") is None
    # One dossier's events keep their order on its partition.
    offsets = [results[str(e["event_id"])][1] for e in array[:3]]
    assert offsets == sorted(offsets)


def test_an_invalid_event_is_400_naming_index_and_field_and_nothing_is_published(
    start_gateway, stack, names: Names
) -> None:  # type: ignore[no-untyped-def]
    gateway, tokens = start_gateway()
    before = end_offsets(stack.kafka_bootstrap, names.events_topic)
    bad = xd_event(2) | {"channel": "fax"}
    missing = {k: v for k, v in xd_event(3).items() if k != "dossier_id"}
    lines = [xd_event(1), bad, missing]
    content = b"\n".join(orjson.dumps(e) for e in lines)
    response = post(gateway.url, tokens["SO-XD"], content, "application/x-ndjson")
    assert response.status_code == 400, response.text
    events = response.json()["events"]
    assert [e["index"] for e in events] == [1, 2]
    assert [f["field"] for f in events[0]["errors"]] == ["channel"]
    assert [f["field"] for f in events[1]["errors"]] == ["dossier_id"]
    junk = post(gateway.url, tokens["SO-XD"], b"{not json")
    assert junk.status_code == 400 and "not valid JSON" in junk.json()["error"]
    assert settle_offsets(stack.kafka_bootstrap, names.events_topic) == before


def test_no_token_an_unknown_one_or_a_revoked_one_is_401(
    start_gateway, stack, names: Names, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    gateway, tokens = start_gateway()
    body = orjson.dumps([xd_event(1)])
    for token in (None, "dsg_00000000_" + "A" * 43, tokens["SO-XD"] + "A"):
        response = post(gateway.url, token, body)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(gateway.url, tokens["SO-XD"], body).status_code == 202
    # Revoked while the gateway runs: refused from the next request on.
    token_id = tokens["SO-XD"].split("_")[1]
    env = {"DOSSIER_GATEWAY_TOKENS_FILE": str(tmp_path / "tokens.json")}
    listed = run_cli("gateway", "token", "list", env=env).stdout
    assert token_id in listed and tokens["SO-XD"] not in listed
    assert run_cli("gateway", "token", "revoke", token_id, env=env).returncode == 0
    assert post(gateway.url, tokens["SO-XD"], orjson.dumps([xd_event(2)])).status_code == 401
    assert sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values()) == 1


def test_over_the_rate_limit_is_429_with_retry_after(start_gateway, stack, names: Names) -> None:  # type: ignore[no-untyped-def]
    gateway, tokens = start_gateway(
        gateway_rate_per_s="1", gateway_burst="5", gateway_max_events="5"
    )
    first = post(gateway.url, tokens["SO-XD"], orjson.dumps([xd_event(n) for n in range(5)]))
    assert first.status_code == 202
    second = post(gateway.url, tokens["SO-XD"], orjson.dumps([xd_event(n) for n in range(5, 9)]))
    assert second.status_code == 429, second.text
    # 4 events at 1 event/s with the bucket about empty: about 4 s, rounded up.
    assert 3 <= int(second.headers["Retry-After"]) <= 4
    # Another agency has its own bucket.
    yte = event_doc(agency=YTE)
    assert post(gateway.url, tokens["SO-YTE"], orjson.dumps(yte)).status_code == 202
    assert sum(settle_offsets(stack.kafka_bootstrap, names.events_topic).values()) == 6


def test_a_broker_that_does_not_acknowledge_is_a_503_naming_each_event(
    stack, names: Names, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tokens_file = tmp_path / "tokens.json"
    token = add_token(tokens_file, "SO-XD")
    env = gateway_env(stack, names, tokens_file, gateway_ack_timeout_s="3")
    with (
        refusing_topic(stack.kafka_bootstrap, names.events_topic),
        GatewayProcess(env, tmp_path / "gateway.log") as gateway,
    ):
        batch = [xd_event(1), xd_event(2)]
        response = post(gateway.url, token, orjson.dumps(batch))
        assert response.status_code == 503, response.text
        events = response.json()["events"]
        assert [(e["index"], e["event_id"]) for e in events] == [
            (0, batch[0]["event_id"]),
            (1, batch[1]["event_id"]),
        ]
        assert {e["status"] for e in events} == {"not_acknowledged"}
        assert "status=503" in gateway.log()


def test_tls_when_a_certificate_and_key_are_set(start_gateway, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "gateway.crt", tmp_path / "gateway.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    gateway, tokens = start_gateway(
        gateway_tls_cert_file=str(cert), gateway_tls_key_file=str(key), scheme="https"
    )
    assert gateway.url.startswith("https://")
    response = httpx.post(
        f"{gateway.url}/v1/events",
        content=orjson.dumps(xd_event(1)),
        headers={"Authorization": f"Bearer {tokens['SO-XD']}", "Content-Type": "application/json"},
        verify=ssl.create_default_context(cafile=str(cert)),
        timeout=30,
    )
    assert response.status_code == 202, response.text
    with pytest.raises(httpx.HTTPError):  # plain HTTP is not served
        httpx.get(gateway.url.replace("https://", "http://") + "/v1/health", timeout=5)
