"""Where do the figures fall behind on a backlog? A once-a-second trace of one worker.

Publishes the benchmark's workload to a fresh topic, starts one worker and prints every
second: the events the dossier stage has applied (`/health`), the events Redis shows
(`{prefix}:meta`), the end of the partials topic (messages the dossier stage has
published for the figures stage) and the position the Faust figures agent has committed
on it (Faust commits every few seconds, so it trails the agent a little). Ends when
Redis shows every event; cleans up like `bench.pipeline`.

    .venv/bin/python -m bench.probe_partials --events 300000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from datetime import date

import redis

from bench.pipeline import (
    BENCH_DIR,
    WORKER_COMMAND,
    Child,
    _worker_env,
    cleanup_worker_run,
    free_port,
    get_json,
    load_workload,
    log_warnings,
    publish,
    say,
)
from common import kafka_admin
from common.settings import StackSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.probe_partials", description=__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--worker-env", action="append", default=[], metavar="NAME=VALUE", help="repeatable"
    )
    args = parser.parse_args(argv)
    extra = dict(item.split("=", 1) for item in args.worker_env)
    stack = StackSettings()
    bootstrap, redis_url, parts = stack.kafka_bootstrap, stack.redis_url, args.partitions
    workload = load_workload(args.events, 1, date(2025, 9, 22), 1.0, None)
    n = len(workload.lines)
    tag = f"bench.{uuid.uuid4().hex[:8]}"
    topic, dlq, app_id, prefix = f"{tag}.events", f"{tag}.dlq", f"{tag}.probe", f"{tag}:ds:v1"
    partials = [TopicPartition(f"{app_id}-partials", p) for p in range(parts)]
    workdir = BENCH_DIR / "runs" / tag
    child: Child | None = None
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    client = redis.Redis.from_url(redis_url)
    try:
        kafka_admin.ensure_topics(bootstrap, {topic: parts, dlq: 1})
        asyncio.run(publish(bootstrap, topic, parts, workload))
        port = free_port()
        env = _worker_env(
            bootstrap, redis_url, topic, dlq, app_id, prefix, parts, port, workdir / "data"
        )
        child = Child("worker", WORKER_COMMAND, env | extra, workdir / "worker.log")
        started = time.perf_counter()
        print(f"{'s':>5} {'stage':>8} {'redis':>8} {'partials end':>13} {'agent committed':>16}")
        while time.perf_counter() - started < args.timeout:
            time.sleep(1.0)
            child.check_alive()
            health = get_json(f"http://127.0.0.1:{port}/health", timeout_s=5.0) or {}
            stage = (health.get("counts") or {}).get("events_in")
            raw = client.hget(f"{prefix}:meta", "events_in")
            shown = None if raw is None else int(raw)
            try:
                end = sum(consumer.end_offsets(partials).values())
                offsets = admin.list_group_offsets(app_id).get(app_id, {})
                committed = sum(o.offset for tp, o in offsets.items() if tp in partials)
            except Exception:  # the topics appear only once the worker made them
                end = committed = None
            elapsed = time.perf_counter() - started
            print(f"{elapsed:5.1f} {stage!s:>8} {shown!s:>8} {end!s:>13} {committed!s:>16}")
            if shown == n:
                break
    finally:
        if child is not None:
            child.stop()
            print(f"worker log: {log_warnings([child.log])}")
        consumer.close()
        admin.close()
        client.close()
        cleanup_worker_run(
            bootstrap,
            redis_url,
            topic=topic,
            dead_letter_topic=dlq,
            app_id=app_id,
            redis_prefix=prefix,
            workdir=None,
        )
        shutil.rmtree(workdir, ignore_errors=True)
        say("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
