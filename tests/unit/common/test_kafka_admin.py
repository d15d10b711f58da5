"""Kafka administration without a broker: it gives up in time and says where it looked."""

from __future__ import annotations

import time

import pytest

from common import kafka_admin
from tests.cli import free_port


@pytest.mark.parametrize(
    "call",
    [
        lambda address: kafka_admin.ensure_topics(address, {"t": 1}),
        lambda address: kafka_admin.delete_topics(address, ["t"]),
    ],
    ids=["ensure_topics", "delete_topics"],
)
def test_no_broker_raises_unavailable_after_the_timeout_from_the_environment(
    call: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOSSIER_KAFKA_ADMIN_TIMEOUT_S", "1")
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(kafka_admin.KafkaUnavailableError, match=f"at {address} within 1 s"):
        call(address)  # type: ignore[operator]
    assert time.monotonic() - started < 10


def test_an_explicit_timeout_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_KAFKA_ADMIN_TIMEOUT_S", "600")
    with pytest.raises(kafka_admin.KafkaUnavailableError, match="within 1 s"):
        kafka_admin.describe_cluster(f"127.0.0.1:{free_port()}", timeout_s=1)
