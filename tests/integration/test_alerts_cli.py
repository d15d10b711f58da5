"""`dossier-stream alerts` against the real Redis: alerts written as the worker stores them
(the log stream, the hash of open alerts, the channel), read by the command in a subprocess."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from typing import IO, Any

import redis

from common.errors import EXIT_FAILURE, EXIT_INTERRUPTED
from common.settings import StackSettings
from schemas.alerts import AlertEvent
from schemas.serving import alerts_channel, alerts_log_key, alerts_open_key
from tests.cli import ROOT, error_line, free_port, run_cli
from tests.conftest import Names
from tests.integration.workers import wait_for


def alert(n: int, **fields: Any) -> AlertEvent:
    at = fields.pop("at")
    return AlertEvent.model_validate(
        {
            "id": f"00000000-0000-5000-8000-{n:012d}",
            "incident_id": f"11111111-0000-5000-8000-{n:012d}",
            "severity": "warning",
            "action": "opened",
            "at": at,
            "opened_at": at,
            **fields,
        }
    )


YTE = {"scope": "agency:SO-YTE", "agency": "SO-YTE", "agency_name": "Sở Y tế"}
XD = {"scope": "agency:SO-XD", "agency": "SO-XD", "agency_name": "Sở Xây dựng"}
# An overdue spike at Sở Y tế that opened and cleared; a near-due backlog at Sở Xây dựng and
# an online ratio below target at Sở Y tế, both open. Times are UTC (Vietnam is UTC+7).
SPIKE_OPENED = alert(
    1,
    **YTE,
    kind="overdue_spike",
    severity="critical",
    at=datetime(2026, 4, 8, 4, 0, tzinfo=UTC),
    figures={"became_overdue": 14},
    baseline={"open_level": 5, "close_line": 3},
)
SPIKE_CLEARED = SPIKE_OPENED.model_copy(
    update={
        "id": "00000000-0000-5000-8000-000000000002",
        "action": "cleared",
        "at": datetime(2026, 4, 8, 5, 0, tzinfo=UTC),
        "figures": {"became_overdue": 2},
    }
)
NEAR_DUE = alert(
    3,
    **XD,
    kind="near_due_backlog",
    at=datetime(2026, 4, 8, 6, 0, tzinfo=UTC),
    figures={"near_due_now": 24},
    baseline={"open_at": 20, "close_at": 12},
)
TARGET = alert(
    4,
    **YTE,
    kind="online_target",
    at=datetime(2026, 4, 8, 7, 0, tzinfo=UTC),
    figures={"received": 250, "online": 160, "online_ratio": "0.640000"},
    baseline={"target": "0.800000", "clear_at": "0.820000"},
)
HISTORY = [SPIKE_OPENED, SPIKE_CLEARED, NEAR_DUE, TARGET]


def store(client: redis.Redis, prefix: str, events: list[AlertEvent]) -> None:
    """What the worker's sink does: XADD each event to the log, HSET/HDEL the open hash."""
    pipe = client.pipeline(transaction=True)
    for e in events:
        body = e.model_dump_json()
        pipe.xadd(alerts_log_key(prefix), {"id": e.id, "alert": body})
        if e.action == "opened":
            pipe.hset(alerts_open_key(prefix), e.incident_id, body)
        else:
            pipe.hdel(alerts_open_key(prefix), e.incident_id)
    pipe.execute()


def env_of(stack: StackSettings, names: Names) -> dict[str, str]:
    return {"DOSSIER_REDIS_URL": stack.redis_url, "DOSSIER_REDIS_PREFIX": names.redis_prefix}


def json_events(stdout: str) -> list[AlertEvent]:
    return [AlertEvent.model_validate_json(line) for line in stdout.splitlines()]


def test_list_json_gives_the_open_alerts_then_the_recent_ones_each_once(
    stack: StackSettings, names: Names, redis_client: redis.Redis
) -> None:
    store(redis_client, names.redis_prefix, HISTORY)
    env = env_of(stack, names)

    result = run_cli("alerts", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    # Open now, oldest first: the backlog, the target. Then the log, oldest first, minus
    # the events already printed.
    assert json_events(result.stdout) == [NEAR_DUE, TARGET, SPIKE_OPENED, SPIKE_CLEARED]

    result = run_cli("alerts", "list", "--json", "--recent", "0", env=env)
    assert json_events(result.stdout) == [NEAR_DUE, TARGET]

    result = run_cli("alerts", "list", "--json", "--agency", "SO-YTE", env=env)
    assert json_events(result.stdout) == [TARGET, SPIKE_OPENED, SPIKE_CLEARED]

    result = run_cli(
        "alerts", "list", "--json", "--kind", "overdue_spike", "--recent", "1", env=env
    )
    assert json_events(result.stdout) == [SPIKE_CLEARED]


def test_list_draws_a_table_in_vietnam_time_with_the_figure_against_its_line(
    stack: StackSettings, names: Names, redis_client: redis.Redis
) -> None:
    store(redis_client, names.redis_prefix, HISTORY)
    result = run_cli("alerts", "list", env=env_of(stack, names) | {"COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    opened, recent = out.split("Gần đây (recent, last 20)")
    assert "Đang mở (open now)" in opened and "(giờ Việt Nam)" in opened
    # One row per open alert, in Vietnam time (UTC+7).
    backlog = next(line for line in opened.splitlines() if "Sở Xây dựng" in line)
    for cell in (
        "08/04/2026 13:00",
        "Tồn đọng hồ sơ sắp trễ (Near-due backlog)",
        "mở/opened",
        "cảnh báo/warning",
        "near_due_now 24 ≥ 20",
    ):
        assert cell in backlog
    target = next(line for line in opened.splitlines() if "Sở Y tế" in line)
    assert "08/04/2026 14:00" in target and "online 64.0% < 80%" in target
    assert "Tăng đột biến" not in opened  # the spike cleared: not open
    cleared = next(line for line in recent.splitlines() if "đã hết/cleared" in line)
    assert "08/04/2026 12:00" in cleared and "became_overdue 2 ≤ 3" in cleared
    assert "nghiêm trọng/critical" in cleared and "Sở Y tế" in cleared


def test_list_with_no_alerts_says_so(stack: StackSettings, names: Names) -> None:
    result = run_cli("alerts", "list", env=env_of(stack, names))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Không có cảnh báo / no alerts"
    result = run_cli("alerts", "list", "--json", env=env_of(stack, names))
    assert result.returncode == 0 and result.stdout == ""


def test_the_recent_ones_are_found_behind_many_newer_ones(
    stack: StackSettings, names: Names, redis_client: redis.Redis
) -> None:
    yte = [
        alert(
            n,
            **YTE,
            kind="near_due_backlog",
            at=datetime(2026, 4, 1, n, 0, tzinfo=UTC),
            figures={"near_due_now": 20 + n},
            baseline={"open_at": 20},
        )
        for n in range(1, 4)
    ]
    others = [
        alert(
            100 + n,
            **XD,
            kind="near_due_backlog",
            at=datetime(2026, 4, 2, tzinfo=UTC),
            figures={"near_due_now": 30},
            baseline={"open_at": 20},
        )
        for n in range(1200)  # more than two pages of the log
    ]
    log = alerts_log_key(names.redis_prefix)
    pipe = redis_client.pipeline(transaction=False)
    for e in [*yte, *others]:
        pipe.xadd(log, {"id": e.id, "alert": e.model_dump_json()})
    pipe.execute()
    result = run_cli(
        "alerts", "list", "--json", "--agency", "SO-YTE", "--recent", "2", env=env_of(stack, names)
    )
    assert result.returncode == 0, result.stderr
    assert json_events(result.stdout) == yte[1:]


def test_redis_down_is_one_line_and_exit_1() -> None:
    port = free_port()
    env = {"DOSSIER_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    for action in ("list", "follow"):
        result = run_cli("alerts", action, env=env)
        assert result.returncode == EXIT_FAILURE, result.stderr
        line = error_line(result)  # also: no traceback, one line
        assert line.startswith("dossier-stream alerts: error: Redis did not answer"), line
        assert f"127.0.0.1:{port}" in line and "dossier-stream services up" in line
        assert result.stdout == ""


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for text in stream:
        into.put(text.rstrip("\n"))


def test_follow_prints_each_alert_as_it_is_published_until_ctrl_c(
    stack: StackSettings, names: Names, redis_client: redis.Redis
) -> None:
    channel = alerts_channel(names.redis_prefix)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "dossier_stream.cli", "alerts", "follow", "--agency", "SO-XD"],
        cwd=ROOT,
        env=clean | env_of(stack, names),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        out: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()

        def subscribed() -> bool:
            counts = dict(redis_client.pubsub_numsub(channel))
            return int(counts.get(channel, 0)) >= 1

        assert wait_for(subscribed, timeout_s=60), "follow never subscribed to the channel"
        redis_client.publish(channel, SPIKE_OPENED.model_dump_json())  # Sở Y tế: filtered out
        redis_client.publish(channel, NEAR_DUE.model_dump_json())
        first = out.get(timeout=60)
        assert first == (
            "08/04/2026 13:00 (giờ Việt Nam) · Tồn đọng hồ sơ sắp trễ (Near-due backlog) · "
            "mở/opened · Sở Xây dựng · cảnh báo/warning · near_due_now 24 ≥ 20"
        )
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.stderr is not None
        err = proc.stderr.read()
        assert proc.returncode == EXIT_INTERRUPTED, err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == "dossier-stream alerts: interrupted"
        assert out.empty()  # nothing else was printed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
