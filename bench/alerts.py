"""How the alert rules behave on a realistic workload: false alerts and detected incidents.

One run: `dossier-stream simulate` writes a workload to a fresh topic (with the given
`--incident`s, or none), one worker replays it with the event clock, and every alert it
stores is read back from Redis. Prints a table per kind and, for each incident, whether
the overdue-spike alert of that agency opened, when (event time) and how far after the
incident's start; writes the whole result as JSON.

Examples:
  python -m bench.alerts --days 91 --out bench/results/alerts-normal.json      # no incident
  python -m bench.alerts --days 91 --out bench/results/alerts-incidents.json \\
      --incident SO-XD:2025-08-12T08:00:00+07:00:24 --incident 10510:2025-09-09T08:00:00+07:00:48

Needs the local Kafka and Redis (`dossier-stream services up`). Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from bench.pipeline import _worker_env, cleanup_worker_run, free_port, services_reachable
from common import kafka_admin
from common.settings import PROJECT_ROOT, StackSettings
from schemas.alerts import AlertEvent
from schemas.registry import AgencyRegistry
from schemas.serving import alerts_log_key, meta_key

VN = "+07:00"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start", default="2025-07-01", help="first simulated day")
    parser.add_argument("--days", type=int, default=91, help="simulated days (default 91)")
    parser.add_argument("--scale", default="1", help="simulator scale (default 1)")
    parser.add_argument("--seed", default="1", help="simulator seed (default 1)")
    parser.add_argument("--incident", action="append", default=[], help="AGENCY:START:HOURS")
    parser.add_argument("--partitions", type=int, default=4, help="events topic partitions")
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait at most")
    args = parser.parse_args(argv)

    stack = StackSettings()
    if not services_reachable(stack):
        return 1
    run = f"bench-alerts-{uuid.uuid4().hex[:8]}"
    topic, prefix = f"{run}.events", f"{run}:ds:v1"
    kafka_admin.ensure_topics(stack.kafka_bootstrap, {topic: args.partitions})
    summary = Path(PROJECT_ROOT / ".local" / "bench" / f"{run}-truth.json")
    summary.parent.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "dossier_stream.cli"]
    simulate = [
        *cli,
        "simulate",
        "--start",
        args.start,
        "--days",
        str(args.days),
        "--scale",
        args.scale,
        "--seed",
        args.seed,
        "--speed",
        "max",
        "--topic",
        topic,
        "--summary-json",
        str(summary),
        "--quiet",
    ]
    for inc in args.incident:
        simulate += ["--incident", inc]
    began = time.monotonic()
    subprocess.run(simulate, check=True)
    truth = json.loads(summary.read_text())
    total = str(truth["total"]["events"])
    published_s = time.monotonic() - began

    workdir = PROJECT_ROOT / ".local" / "bench" / run
    env = _worker_env(
        stack.kafka_bootstrap,
        stack.redis_url,
        topic,
        f"{run}.dlq",
        run,
        prefix,
        args.partitions,
        free_port(),
        workdir,
    ) | {
        # Named under the app id, so the run's cleanup removes them with the others.
        "DOSSIER_ALERTS_TOPIC": f"{run}-alerts",
        "DOSSIER_ALERTS_UNDELIVERED_TOPIC": f"{run}-alerts-undelivered",
    }
    log_path = PROJECT_ROOT / ".local" / "bench" / f"{run}-worker.log"
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen([*cli, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        last: tuple[str | None, int] = (None, -1)
        stable_since = time.monotonic()
        while time.monotonic() - started < args.timeout:
            time.sleep(2)
            meta = client.hgetall(meta_key(prefix))
            seen = (meta.get("events_in"), client.xlen(alerts_log_key(prefix)))
            if seen != last:
                last, stable_since = seen, time.monotonic()
            # Done when the worker has counted every event the simulator sent and
            # the alert log has not grown for 15 s.
            if (not total or seen[0] == total) and time.monotonic() - stable_since > 15:
                break
        worker_s = time.monotonic() - started
    finally:
        worker.terminate()
        worker.wait(60)
    events = [
        AlertEvent.model_validate_json(fields["alert"])
        for _id, fields in client.xrange(alerts_log_key(prefix))
    ]
    result = report(args, truth, events, meta, published_s, worker_s)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    cleanup_worker_run(
        stack.kafka_bootstrap,
        stack.redis_url,
        topic=topic,
        dead_letter_topic=f"{run}.dlq",
        app_id=run,
        redis_prefix=prefix,
        workdir=workdir,
    )
    return 0


def report(
    args: argparse.Namespace,
    truth: dict[str, Any],
    events: list[AlertEvent],
    meta: dict[str, str],
    published_s: float,
    worker_s: float,
) -> dict[str, Any]:
    registry = AgencyRegistry.default()
    counts = Counter((e.kind, e.action) for e in events)
    opened = [e for e in events if e.open]
    print(
        f"\n{len(events)} alert events over {args.days} days "
        f"({meta.get('events_in')} events, worker {worker_s:.0f} s)"
    )
    for (kind, action), n in sorted(counts.items()):
        print(f"  {kind:<18} {action:<8} {n}")
    by_scope = Counter((e.kind, e.scope) for e in opened)
    print("openings per scope:")
    for (kind, scope), n in sorted(by_scope.items()):
        code = scope.removeprefix("agency:")
        agency = registry.get(code)
        print(f"  {kind:<18} {scope:<18} {n:>3}  {agency.name if agency else ''}")
    units = {u.get("code"): u for u in truth.get("units", [])}
    incidents = []
    for text in args.incident:
        code, rest = text.split(":", 1)
        start_text, hours = rest.rsplit(":", 1)
        start = datetime.fromisoformat(start_text)
        end = start + timedelta(hours=float(hours))
        spikes = [
            e
            for e in opened
            if e.kind == "overdue_spike"
            and e.agency == code
            and start <= e.at <= end + timedelta(days=3)
        ]
        first = min(spikes, key=lambda e: e.at) if spikes else None
        unit = units.get(code, {})
        row = {
            "agency": code,
            "name": registry.get(code).name if registry.get(code) else code,
            "start": start.isoformat(),
            "hours": float(hours),
            "dossiers_due_in_window": unit.get("incident_dossiers"),
            "detected": first is not None,
            "opened_at": first.at.isoformat() if first else None,
            "delay_h": round((first.at - start).total_seconds() / 3600, 1) if first else None,
            "window_count": first.figures.get("became_overdue") if first else None,
            "open_level": first.baseline.get("open_level") if first else None,
            "baseline_median": first.baseline.get("median") if first else None,
        }
        incidents.append(row)
        print(
            f"incident {code} {start:%d/%m %H:%M} +{hours} h: due in window "
            f"{row['dossiers_due_in_window']}, detected {row['detected']}, "
            f"delay {row['delay_h']} h, window {row['window_count']} >= {row['open_level']}"
        )
    return {
        "workload": {
            "start": args.start,
            "days": args.days,
            "scale": args.scale,
            "seed": args.seed,
            "incidents": args.incident,
        },
        "events_in": meta.get("events_in"),
        "publish_s": round(published_s, 1),
        "worker_s": round(worker_s, 1),
        "counts": {f"{k}.{a}": n for (k, a), n in sorted(counts.items())},
        "openings_per_scope": {f"{k}|{s}": n for (k, s), n in sorted(by_scope.items())},
        "incidents": incidents,
        "alerts": [e.model_dump(mode="json") for e in events],
    }


if __name__ == "__main__":
    raise SystemExit(main())
