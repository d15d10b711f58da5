"""On the three-broker cluster, losing a broker loses no event and stops nothing.

Topics are created with replication factor 3 and min.insync.replicas 2. While a simulated
workload streams in, the broker that leads the most partitions of the events topic is
killed with SIGKILL; publishing goes on (acks=all needs two replicas in sync, and two are
left), the worker goes on applying events, and the broker is started again later. In the
end the worker has counted every event sent, every figure in Redis equals the independent
reference, and the worker process never exited.

Short for CI (DOSSIER_CLUSTER_EVENTS, default 8,000; the broker down for
DOSSIER_CLUSTER_OUTAGE_S, default 20 s: leadership moves only after the
controller's 9 s broker session timeout). `make cluster-test` runs it alone, longer
(40,000 events, 30 s down).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

import redis
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from common import kafka_admin
from dossier_stream import clusterstack
from tests.integration.pipeline import (
    Publisher,
    clock_of,
    contract_view,
    events_of,
    expected_view,
    meta,
    simulate,
    view_difference,
    wait_until_equal,
)
from tests.integration.workers import WorkerProcess, wait_for, worker_env
from tests.reference import reference_series, reference_snapshots

# Longer than the controller's broker session timeout (9 s): leadership moves only then.
OUTAGE_S = float(os.environ.get("DOSSIER_CLUSTER_OUTAGE_S", "20"))
EVENTS = int(os.environ.get("DOSSIER_CLUSTER_EVENTS", "8000"))


def replication(admin: KafkaAdminClient, topics: list[str]) -> dict[str, tuple[set[int], str]]:
    """topic -> (the replica counts of its partitions, its own min.insync.replicas).

    "broker" when the topic has none of its own and takes the broker's (2 on the cluster).
    """
    described = {t["name"]: t for t in admin.describe_topics(topics)}
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, configs=["min.insync.replicas"])
        for name in topics
    ]
    configs = admin.describe_configs(resources)["topic"]
    return {
        name: (
            {len(p["replica_nodes"]) for p in described[name]["partitions"]},
            configs[name].get("min.insync.replicas", {}).get("value", "broker"),
        )
        for name in topics
    }


def leaders(admin: KafkaAdminClient, topic: str) -> Counter[int]:
    (described,) = admin.describe_topics([topic])
    return Counter(p["leader_id"] for p in described["partitions"])


def fully_replicated(admin: KafkaAdminClient, topic: str) -> bool:
    (described,) = admin.describe_topics([topic])
    return all(len(p["isr_nodes"]) == len(p["replica_nodes"]) for p in described["partitions"])


def test_a_broker_killed_mid_stream_loses_nothing(
    cluster_stack, local_stack_settings, names, tmp_path: Path
) -> None:
    bootstrap = cluster_stack.kafka_bootstrap
    topics = {names.events_topic: 4, names.dead_letter_topic: 1}
    kafka_admin.ensure_topics(
        bootstrap,
        topics,
        replication_factor=cluster_stack.replication_factor,
        min_insync_replicas=cluster_stack.min_insync_replicas,
        options={},
    )
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    client = redis.Redis.from_url(cluster_stack.redis_url, decode_responses=True)
    lines = simulate(
        tmp_path / "workload.jsonl",
        *("--start", "2025-07-01", "--days", "91", "--seed", "47"),
        *("--scale", f"{max(0.005, EVENTS / 1_470_000):.4f}"),
        *("--duplicates", "0.02", "--reorder", "0.02"),
    )
    events = events_of(lines)
    t = clock_of(events)
    want = expected_view(reference_snapshots(events, t), reference_series(events, t))
    publisher = Publisher(
        bootstrap,
        names.events_topic,
        lines,
        [e.dossier_id.encode() for e in events],
        pace_s=OUTAGE_S + 25,
        chunks=100,
    )
    env = worker_env(cluster_stack, names, tmp_path) | {
        "DOSSIER_CLOCK": "event",
        "DOSSIER_REPLICATION_FACTOR": str(cluster_stack.replication_factor),
        "DOSSIER_MIN_INSYNC_REPLICAS": str(cluster_stack.min_insync_replicas),
    }
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    total = len(lines)

    def alive() -> bool:
        return worker.proc is not None and worker.proc.poll() is None

    def applied_so_far() -> int:
        return int(worker.health()["counts"].get("events_in", 0))

    victim = 0
    try:
        # Every topic of this test, the worker's own included, has 3 replicas, 2 in sync.
        ours = sorted(name for name in admin.list_topics() if name.startswith(names.group_id))
        ours += list(topics)
        assert len(ours) >= 6, ours  # events, dead letters, state, partials, alerts (2)
        got = replication(admin, ours)
        # Faust creates its assignor's topic itself, with the replication factor only.
        assert got == {name: ({3}, "broker" if "__assignor" in name else "2") for name in ours}, got

        publisher.start()
        assert wait_for(lambda: applied_so_far() >= total // 4, 120), worker.log_tail()
        # The worker has committed offsets by now: the broker's own topic has 3 replicas too.
        (offsets,) = admin.describe_topics(["__consumer_offsets"])
        assert {len(p["replica_nodes"]) for p in offsets["partitions"]} == {3}
        led = leaders(admin, names.events_topic)
        victim = led.most_common(1)[0][0]
        pid = clusterstack.broker_pids(local_stack_settings)[victim]
        sent_before, applied_before = publisher.sent, applied_so_far()
        os.killpg(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < OUTAGE_S:
            assert alive(), f"the worker exited with broker {victim} down:\n{worker.log_tail()}"
            time.sleep(0.5)
        sent_during = publisher.sent - sent_before
        applied_during = applied_so_far() - applied_before
        moved = leaders(admin, names.events_topic)
        print(
            f"\n{total} messages; killed broker {victim} (pid {pid}, leader of "
            f"{led[victim]} of 4 partitions) after {sent_before} sent, {applied_before} "
            f"applied; in the {OUTAGE_S:.0f} s it was down {sent_during} more were "
            f"acknowledged and {applied_during} more applied; leaders then {dict(moved)}"
        )
        # With one broker of three gone, writes and reads went on: the whole point.
        assert victim not in moved, moved
        assert sent_during > 0 or sent_before == total, (sent_before, publisher.sent)
        assert applied_during > 0, (applied_before, worker.log_tail())
        restarted = clusterstack.start_broker(local_stack_settings, victim)
        back_after = time.monotonic() - killed_at
        # The restarted broker catches up and every replica is in sync again.
        assert wait_for(lambda: fully_replicated(admin, names.events_topic), 120)
        print(
            f"broker {victim} restarted as pid {restarted.pid}, {back_after:.1f} s after the kill"
        )

        publisher.hurry()  # the outage is over: the rest need not trickle in
        publisher.join(300)
        assert publisher.error is None, repr(publisher.error)
        assert publisher.sent == total
        assert wait_for(
            lambda: meta(client, names.redis_prefix).get("events_in") == str(total), 180
        ), (meta(client, names.redis_prefix), worker.log_tail())
        assert alive(), worker.log_tail()
        view = wait_until_equal(lambda: contract_view(client, names.redis_prefix), want, 90)
        assert view == want, view_difference(want, view)
        m = meta(client, names.redis_prefix)
        distinct = len({(e.dossier_id, e.sequence) for e in events})
        assert (int(m["applied"]), int(m["duplicates"])) == (distinct, len(events) - distinct)
        assert (m["pending"], m["dead_lettered"]) == ("0", "0")
        assert "Crashed" not in (tmp_path / "worker.log").read_text(errors="replace")
        assert worker.stop() == 0
    finally:
        # The broker first: a worker may not stop in time with partitions offline.
        if victim and victim not in clusterstack.broker_pids(local_stack_settings):
            clusterstack.start_broker(local_stack_settings, victim)
        if alive():
            worker.stop()
        keys = list(client.scan_iter(match=f"{names.redis_prefix}*", count=500))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()
        leftover = [n for n in admin.list_topics() if n.startswith(names.group_id)]
        kafka_admin.delete_topics(bootstrap, [*topics, *leftover], options={})
        admin.close()
