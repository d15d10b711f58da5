"""Webhook delivery by a real worker: alert events on the alerts topic are POSTed to every
URL, a 5xx is retried, a 410 is not, and what no retry delivered lands on the undelivered
topic with its reason.

The receiver is an HTTP server in this test: `/ok` answers 500 to its first request and
200 afterwards, `/gone` always answers 410 (Gone: retrying the same body cannot help).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from common import kafka_admin
from common.settings import StackSettings
from schemas.alerts import AlertEvent
from tests.conftest import Names
from tests.integration.workers import WorkerProcess, wait_for, worker_env

WAIT_S = 60.0


class Receiver:
    """Records every request (path, status answered, JSON body)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, int, dict[str, Any]]] = []

    def answer(self, path: str, body: dict[str, Any]) -> int:
        with self.lock:
            if path == "/ok":
                tried = sum(1 for p, _, _ in self.requests if p == "/ok")
                status = 500 if tried == 0 else 200
            elif path == "/gone":
                status = 410
            else:
                status = 404
            self.requests.append((path, status, body))
            return status

    def to(self, path: str, status: int | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [b for p, s, b in self.requests if p == path and status in (None, s)]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = {"unparsable": raw.decode(errors="replace")}
            status = rec.answer(self.path, body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def alert(n: int, **fields: Any) -> AlertEvent:
    at = datetime(2026, 4, 8, 4 + n, 0, tzinfo=UTC)
    return AlertEvent.model_validate(
        {
            "id": f"7e57a1e0-0000-5000-8000-{n:012d}",
            "incident_id": f"7e57a1e0-1111-5000-8000-{n:012d}",
            "severity": "warning",
            "action": "opened",
            "at": at,
            "opened_at": at,
            **fields,
        }
    )


SPIKE = alert(
    1,
    kind="overdue_spike",
    scope="agency:SO-YTE",
    agency="SO-YTE",
    agency_name="Sở Y tế",
    severity="critical",
    figures={"became_overdue": 14},
    baseline={"open_level": 5, "close_line": 3},
)
BACKLOG = alert(
    2,
    kind="near_due_backlog",
    scope="agency:SO-XD",
    agency="SO-XD",
    agency_name="Sở Xây dựng",
    figures={"near_due_now": 24},
    baseline={"open_at": 20, "close_at": 12},
)


def read_topic(bootstrap: str, topic: str, want: int) -> list[dict[str, Any]]:
    """The topic's records (JSON) from the start, once there are `want` (or after WAIT_S)."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    records: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + WAIT_S
        while len(records) < want and time.monotonic() < deadline:
            records.extend(json.loads(r.value) for r in consumer)
        return records
    finally:
        consumer.close()


def test_alerts_are_posted_retried_and_dead_lettered(
    stack: StackSettings,
    names: Names,
    make_topics: Any,
    receiver: tuple[Receiver, int],
    tmp_path: Path,
) -> None:
    rec, port = receiver
    make_topics(names, partitions=2)
    alerts_topic = f"{names.group_id}.alerts"
    undelivered_topic = f"{names.group_id}.alerts.undelivered"
    ok_url, gone_url = f"http://127.0.0.1:{port}/ok", f"http://127.0.0.1:{port}/gone"
    env = worker_env(stack, names, tmp_path) | {
        "DOSSIER_ALERT_WEBHOOKS": f"{ok_url},{gone_url}",
        "DOSSIER_WEBHOOK_RETRIES": "2",
    }
    assert env["DOSSIER_ALERTS_TOPIC"] == alerts_topic
    assert env["DOSSIER_ALERTS_UNDELIVERED_TOPIC"] == undelivered_topic
    try:
        with WorkerProcess(env, tmp_path / "worker.log") as worker:
            producer = KafkaProducer(bootstrap_servers=stack.kafka_bootstrap, acks="all")
            try:
                for event in (SPIKE, BACKLOG):
                    producer.send(
                        alerts_topic,
                        key=event.scope.encode(),
                        value=event.model_dump_json().encode(),
                    )
                producer.flush(timeout=WAIT_S)
            finally:
                producer.close()

            # Each URL is done with an alert before its dead letter is published, so once
            # both dead letters are there every request has been made.
            dead = read_topic(stack.kafka_bootstrap, undelivered_topic, want=2)
            assert len(dead) == 2, worker.log_tail()
            delivered = wait_for(
                lambda: (
                    {b["alerts"][0]["annotations"]["alert_id"] for b in rec.to("/ok", 200)}
                    == {SPIKE.id, BACKLOG.id}
                ),
                timeout_s=WAIT_S,
            )
            assert delivered, (rec.requests, worker.log_tail())
    finally:
        kafka_admin.delete_topics(stack.kafka_bootstrap, [alerts_topic, undelivered_topic])

    # /ok: its first request was answered 500 and retried; each alert taken once.
    ok = rec.to("/ok")
    assert [s for p, s, _ in rec.requests if p == "/ok"] == [500, 200, 200]
    by_id = {b["alerts"][0]["annotations"]["alert_id"]: b for b in rec.to("/ok", 200)}
    for event in (SPIKE, BACKLOG):
        body = by_id[event.id]
        assert body["version"] == "4"
        assert body["status"] == "firing"
        assert body["receiver"] == "dossier-stream"
        (am,) = body["alerts"]
        assert am["status"] == "firing"
        assert am["labels"]["alertname"] == event.kind
        assert am["labels"]["scope"] == event.scope
        assert am["labels"]["severity"] == event.severity
        assert am["fingerprint"] == event.incident_id
        assert am["annotations"]["incident_id"] == event.incident_id
        assert am["endsAt"] == "0001-01-01T00:00:00Z"
        assert datetime.fromisoformat(am["startsAt"]) == event.opened_at
    assert len(ok) == 3

    # /gone: 410 is refused for good, so each alert was tried exactly once.
    gone_ids = sorted(b["alerts"][0]["annotations"]["alert_id"] for b in rec.to("/gone"))
    assert gone_ids == sorted([SPIKE.id, BACKLOG.id])

    # One dead letter per alert, for /gone only, with the reason and the alert itself.
    assert sorted(d["alert"]["id"] for d in dead) == sorted([SPIKE.id, BACKLOG.id])
    for record in dead:
        assert record["url"] == gone_url
        assert record["reason"] == "HTTP 410"
        assert record["attempts"] == 1
        event = SPIKE if record["alert"]["id"] == SPIKE.id else BACKLOG
        assert AlertEvent.model_validate(record["alert"]) == event
