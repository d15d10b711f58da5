"""The app with a fake Kafka: statuses, what reaches the sender, and what the logs say."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.batch import Record
from gateway.errors import TokenFileError
from gateway.sender import Delivery, SenderUnavailable
from gateway.settings import GatewaySettings
from gateway.tokens import TokenBook, issue
from schemas.signing import signer_key, unauthenticated_reason
from tests.factories import event_doc

NOW = datetime(2026, 12, 1, tzinfo=UTC)
XD = {"code": "SO-XD", "level": "city"}
MASTER = "the-worker-master-key"


class FakeSender:
    """Acknowledges the first `acknowledge` records of each request (all by default)."""

    def __init__(self, acknowledge: int | None = None, unavailable: bool = False) -> None:
        self.acknowledge = acknowledge
        self.unavailable = unavailable
        self.sent: list[Record] = []

    def partitions(self) -> int:
        if self.unavailable:
            raise SenderUnavailable("no metadata")
        return 4

    def send(self, records: Sequence[Record], timeout_s: float) -> list[Delivery]:
        self.sent.extend(records)
        n = len(records) if self.acknowledge is None else self.acknowledge
        return [
            Delivery(r.partition, 100 + i) if i < n else Delivery(None, None)
            for i, r in enumerate(records)
        ]

    def close(self) -> None:
        pass


TOKEN, ENTRY = issue("SO-XD", "test", NOW)
BOOK = TokenBook().add(ENTRY)


def client(sender: FakeSender, **settings: object) -> TestClient:
    base = {"gateway_rate_per_s": 1000.0, "gateway_burst": 2000, "gateway_max_events": 1000}
    config = GatewaySettings(**(base | settings))  # type: ignore[arg-type]
    return TestClient(create_app(config, sender, lambda: BOOK))


def post(api: TestClient, body: object, token: str | None = TOKEN) -> object:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return api.post("/v1/events", content=orjson.dumps(body), headers=headers)


def xd_events(n: int) -> list[dict[str, object]]:
    return [event_doc(agency=XD, dossier_id=f"HP-SO-XD-{i}") for i in range(n)]


def test_accepted_events_reach_the_sender_signed() -> None:
    sender = FakeSender()
    api = client(sender, signer="gateway", signing_key=signer_key(MASTER, "gateway"))
    response = post(api, xd_events(3))
    assert response.status_code == 202  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["count"] == 3 and [e["offset"] for e in body["events"]] == [100, 101, 102]
    assert len(sender.sent) == 3
    for record in sender.sent:
        assert unauthenticated_reason(MASTER, record.headers, record.value, "SO-XD") is None


def test_part_acknowledged_is_a_503_naming_each_event() -> None:
    sender = FakeSender(acknowledge=1)
    response = post(client(sender), xd_events(3))
    assert response.status_code == 503  # type: ignore[attr-defined]
    statuses = [e["status"] for e in response.json()["events"]]  # type: ignore[attr-defined]
    assert statuses == ["acknowledged", "not_acknowledged", "not_acknowledged"]


def test_no_broker_metadata_is_a_503_and_nothing_is_sent() -> None:
    sender = FakeSender(unavailable=True)
    response = post(client(sender), xd_events(2))
    assert response.status_code == 503 and sender.sent == []  # type: ignore[attr-defined]


def test_an_unreadable_tokens_file_is_a_503_not_a_500() -> None:
    def broken() -> TokenBook:
        raise TokenFileError("malformed")

    api = TestClient(create_app(GatewaySettings(), FakeSender(), broken))
    assert post(api, xd_events(1)).status_code == 503  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), ("dsg_00000000_" + "A" * 43, 401), ("junk", 401)]
)
def test_no_or_unknown_token_is_a_401_with_the_challenge(token: str | None, status: int) -> None:
    sender = FakeSender()
    response = post(client(sender), xd_events(1), token=token)
    assert response.status_code == status  # type: ignore[attr-defined]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    assert sender.sent == []


def test_too_many_events_or_bytes_is_a_413() -> None:
    sender = FakeSender()
    assert post(client(sender, gateway_max_events=2), xd_events(3)).status_code == 413  # type: ignore[attr-defined]
    small = client(sender, gateway_max_body_bytes=1024)
    assert post(small, xd_events(3)).status_code == 413  # type: ignore[attr-defined]
    assert sender.sent == []


def test_over_the_rate_is_a_429_with_retry_after() -> None:
    sender = FakeSender()
    api = client(sender, gateway_rate_per_s=1.0, gateway_burst=3, gateway_max_events=3)
    assert post(api, xd_events(3)).status_code == 202  # type: ignore[attr-defined]
    response = post(api, xd_events(2))
    assert response.status_code == 429  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "2"  # type: ignore[attr-defined]
    assert response.json()["retry_after_s"] == 2  # type: ignore[attr-defined]
    assert len(sender.sent) == 3


def test_the_logs_name_the_agency_and_never_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api = client(FakeSender())
    post(api, xd_events(2))
    post(api, xd_events(1), token=TOKEN + "x")
    text = caplog.text
    assert "agency=SO-XD" in text and "events=2 status=202" in text and "status=401" in text
    assert TOKEN not in text and TOKEN[13:] not in text and ENTRY.sha256 not in text


def test_every_status_is_documented_with_a_model() -> None:
    spec = client(FakeSender()).get("/openapi.json").json()
    responses = spec["paths"]["/v1/events"]["post"]["responses"]
    assert set(responses) == {"202", "400", "401", "403", "413", "415", "429", "503"}
    for answer in responses.values():
        assert answer["content"]["application/json"]["schema"]["$ref"]
    assert spec["paths"]["/v1/events"]["post"]["security"] == [{"HTTPBearer": []}]
