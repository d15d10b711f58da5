"""Throughput and response times of `dossier-stream gateway serve` on the local broker.

One gateway process (the CLI, as an operator runs it) publishes to a fresh topic of 4
partitions; `--clients` threads, each an agency with its own token, POST batches of valid
events (pre-serialised JSON arrays) one after the other, for each batch size of
`--batch-sizes`. A response counts when it is a 202, i.e. once the broker acknowledged
every event of the batch (acks=all). Figures per configuration: events/s (accepted events
over the wall time from the first request to the last answer), p50 and p99 of the
response time, and the gateway's CPU seconds per 1,000 events. Delivery is checked: the
topic's end offsets must sum to the accepted events. The rate limit is raised out of the
way. Results go to bench/results/gateway.json; the topic, the tokens and the process are
removed at the end. Not part of the test suite: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.pipeline import code_state, cpu_seconds, machine, say
from common import kafka_admin
from common.settings import StackSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaConsumer, TopicPartition

EXAMPLES = """\
examples:
  .venv/bin/python -m bench.gateway                               # batches of 100 and 1,000
  .venv/bin/python -m bench.gateway --batch-sizes 10,100 --clients 8 --events 20000
"""

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "gateway.json"
AGENCIES = ["SO-XD", "SO-YTE", "SO-TC", "SO-GDDT", "SO-CT", "SO-NV", "SO-KHCN", "SO-NNMT"]
T0 = datetime(2025, 10, 1, 8, 0, tzinfo=UTC)


def event(agency: str, n: int) -> dict[str, Any]:
    """A valid `accepted` event of a new dossier of `agency`."""
    at = T0 + timedelta(seconds=n)
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "dossier_id": f"HP-{agency}-BENCH-{n:08d}",
        "sequence": 1,
        "event_type": "accepted",
        "status": 2,
        "occurred_at": at.isoformat(),
        "emitted_at": (at + timedelta(seconds=2)).isoformat(),
        "agency": {"code": agency, "level": "city"},
        "procedure": {"code": "1.004616", "field": "health"},
        "channel": "online",
        "online_mode": "full",
        "time_limit": {"value": 5, "unit": "working_days"},
        "appointment_at": (at + timedelta(days=7)).isoformat(),
    }


def add_token(env: dict[str, str], agency: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dossier_stream.cli", "gateway", "token", "add", "--agency", agency],
        env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def end_total(bootstrap: str, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def run_config(
    url: str, tokens: dict[str, str], batch_size: int, clients: int, events: int, pid: int
) -> dict[str, Any]:
    """`clients` agencies POST `events` events in all, in batches of `batch_size`."""
    batches_per_client = max(1, events // (batch_size * clients))
    agencies = list(tokens)[:clients]
    bodies: dict[str, list[bytes]] = {}
    for c, agency in enumerate(agencies):
        start = c * 10_000_000 + batch_size * 1000 * batches_per_client
        bodies[agency] = [
            orjson.dumps([event(agency, start + b * batch_size + i) for i in range(batch_size)])
            for b in range(batches_per_client)
        ]
    times: list[float] = []
    statuses: dict[int, int] = {}
    accepted = [0]
    lock = threading.Lock()

    def client(agency: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[agency]}", "Content-Type": "application/json"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            for body in bodies[agency]:
                t = time.perf_counter()
                response = http.post("/v1/events", content=body)
                elapsed = time.perf_counter() - t
                with lock:
                    times.append(elapsed)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    if response.status_code == 202:
                        accepted[0] += response.json()["count"]

    threads = [threading.Thread(target=client, args=(a,)) for a in agencies]
    cpu_before = cpu_seconds(pid) or 0.0
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu = (cpu_seconds(pid) or 0.0) - cpu_before
    ordered = sorted(times)
    return {
        "batch_size": batch_size,
        "clients": clients,
        "requests": len(times),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "accepted_events": accepted[0],
        "seconds": round(wall, 3),
        "events_per_s": round(accepted[0] / wall, 1) if wall > 0 else None,
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "gateway_cpu_s_per_1000_events": round(cpu / accepted[0] * 1000, 4)
        if accepted[0]
        else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway",
        description=(__doc__ or "").split("\n\n")[0],
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--batch-sizes", default="100,1000", help="comma-separated (default 100,1000)"
    )
    parser.add_argument(
        "--clients", type=int, default=4, help=f"concurrent agencies (1-{len(AGENCIES)})"
    )
    parser.add_argument("--events", type=int, default=40_000, help="events per configuration")
    parser.add_argument("--warmup", type=int, default=2_000, help="events sent first, not measured")
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)
    clients = max(1, min(len(AGENCIES), args.clients))
    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    stack = StackSettings()
    topic = f"bench.gateway.{uuid.uuid4().hex[:8]}.events"
    tmp = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")} | {
        "DOSSIER_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "DOSSIER_EVENTS_TOPIC": topic,
        "DOSSIER_GATEWAY_TOKENS_FILE": str(tmp / "tokens.json"),
        "DOSSIER_GATEWAY_MAX_EVENTS": str(max(sizes)),
        "DOSSIER_GATEWAY_BURST": "1000000000",
        "DOSSIER_GATEWAY_RATE_PER_S": "1000000000",
        "DOSSIER_GATEWAY_MAX_BODY_BYTES": str(max(4 << 20, max(sizes) * 1024)),
    }
    kafka_admin.ensure_topics(stack.kafka_bootstrap, {topic: 4})
    load_before = os.getloadavg()
    proc: subprocess.Popen[bytes] | None = None
    results: list[dict[str, Any]] = []
    try:
        tokens = {agency: add_token(env, agency) for agency in AGENCIES[:clients]}
        log = open(tmp / "gateway.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "dossier_stream.cli", "gateway", "serve", "--port", str(port)],
            env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit((tmp / "gateway.log").read_text())
            time.sleep(0.1)
        say(f"gateway on {url}, topic {topic}, {clients} client(s)")
        run_config(url, tokens, min(sizes), clients, args.warmup, proc.pid)
        for size in sizes:
            say(f"batches of {size}: {args.events} events from {clients} client(s)")
            result = run_config(url, tokens, size, clients, args.events, proc.pid)
            say(
                f"  {result['events_per_s']:,.0f} events/s, p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms, statuses {result['statuses']}"
            )
            results.append(result)
        on_topic = end_total(stack.kafka_bootstrap, topic)
        sent = sum(r["accepted_events"] for r in results)
        say(f"topic holds {on_topic} events (measured {sent} + warm-up)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        kafka_admin.delete_topics(stack.kafka_bootstrap, [topic])
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code_state(),
        "machine": machine(),
        # Others' work on the machine: the load average before and after (1, 5, 15 min).
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "clients": clients,
        "topic_partitions": 4,
        "events_on_topic": on_topic,
        "accepted_measured": sent,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"{'batch':>6} {'clients':>7} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'cpu s/1k':>8}"
    )
    for r in results:
        print(
            f"{r['batch_size']:>6} {r['clients']:>7} {r['events_per_s']:>9,.0f} {r['p50_ms']:>7} "
            f"{r['p99_ms']:>7} {r['gateway_cpu_s_per_1000_events']:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
