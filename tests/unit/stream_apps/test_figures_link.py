"""The line between the worker's two processes: settings sent whole, reports read, /health."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import orjson

from domain.calendar import WorkingCalendar
from domain.lifecycle import Lifecycle, calendar_resume
from stream_apps.book import new_partition_book
from stream_apps.child_process import settings_line
from stream_apps.dossier_stage import DossierStage
from stream_apps.figures_link import FiguresProcess, FiguresStatus
from stream_apps.health import Health
from stream_apps.settings import WorkerSettings
from stream_apps.stage_group import StageGroup
from stream_apps.web import health_report

CALENDAR = WorkingCalendar()


def test_the_settings_line_gives_the_figures_process_the_same_settings_secrets_included(
    tmp_path: Path,
) -> None:
    settings = WorkerSettings(
        app_id="hp-replay",
        redis_prefix="ds:test",
        data_dir=tmp_path / "worker",
        clock="event",
        flush_interval_s=0.25,
        alert_webhooks=["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"],
        signing_master_key="not-a-real-key-but-secret",
        redis_password="p@ss word",
    )
    line = settings_line(settings)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    received = WorkerSettings(**orjson.loads(line)["settings"])
    assert received == settings
    assert received.signing_master_key is not None
    assert received.signing_master_key.get_secret_value() == "not-a-real-key-but-secret"
    assert received.redis_password is not None
    assert received.redis_password.get_secret_value() == "p@ss word"
    assert received.partials_topic == "hp-replay-partials"


def test_a_ready_message_calls_back_and_a_status_message_is_kept() -> None:
    calls: list[str] = []
    flushes: list[float] = []
    health = Health()
    health.failed("figures", RuntimeError("figures process exited with -9"))
    link = FiguresProcess(
        WorkerSettings(), health, lambda: calls.append("ready"), on_flushes=flushes.extend
    )
    link.receive(
        {
            "status": {
                "last_flush_s": 0.012,
                "figures_keys": 7,
                "counts_sources": [0, 1],
                "down": {"redis": {"since": 1.0, "seconds": 2.0, "error": "refused"}},
                "retries": {"redis": 3},
                "seconds_since_flush": 1.5,
                "flushes": [0.01, 0.02],
            }
        }
    )
    assert calls == [] and "figures" in health.down
    status = link.status
    assert (status.last_flush_s, status.figures_keys, status.counts_sources) == (0.012, 7, [0, 1])
    assert list(status.down) == ["redis"] and status.retries == {"redis": 3}
    assert flushes == [0.01, 0.02]
    link.receive({"ready": True})
    assert calls == ["ready"] and status.ready and "figures" not in health.down


def stage() -> DossierStage:
    return DossierStage(
        WorkerSettings(alerts=False),
        Lifecycle(calendar_resume(CALENDAR)),
        lambda _p: new_partition_book(CALENDAR, second_supplement_late=True),
    )


def test_health_is_starting_then_names_what_either_process_cannot_reach() -> None:
    s = stage()
    figures = FiguresStatus(pid=4242, ready=True)
    assert health_report(StageGroup(s), figures)["status"] == "starting"
    s.ready.set()
    report = health_report(StageGroup(s), figures)
    assert (report["status"], report["down"]) == ("ok", {})
    assert report["figures_process"] == {"pid": 4242, "ready": True, "restarts": 0}
    figures.update({"down": {"redis": {"since": 1.0, "seconds": 2.0, "error": "refused"}}})
    s.health.failed("kafka", TimeoutError("no broker"))
    report = health_report(StageGroup(s), figures)
    assert report["status"] == "degraded" and list(report["down"]) == ["kafka", "redis"]
    figures.update({})
    s.health.ok("kafka")
    assert health_report(StageGroup(s), figures)["status"] == "ok"


def test_a_ready_figures_stage_has_the_dossier_stage_publish_every_partial() -> None:
    s = stage()
    s._full_due = False
    s.figures_owned()
    assert s.figures_ready.is_set() and s._full_due


# A stand-in for the figures process: it reads the settings line from its end of the
# socket, says it is ready, then says something that is not JSON and waits.
BABBLER = """
import os, socket, sys, time
sock = socket.socket(fileno=int(os.environ["DOSSIER_CHILD_FD"]))
data = b""
while not data.endswith(b"\\n"):
    data += sock.recv(65536)
assert data.startswith(b'{"settings":'), data[:40]
sock.sendall(b'{"ready": true}\\n' + b"not json\\n")
time.sleep(60)
"""


def run_once(command: list[str]) -> tuple[int | None, FiguresProcess, list[str]]:
    calls: list[str] = []

    async def main() -> tuple[int | None, FiguresProcess]:
        link = FiguresProcess(WorkerSettings(), Health(), lambda: calls.append("ready"))
        link.command = command
        return await asyncio.wait_for(link._run_once(), 30), link

    code, link = asyncio.run(main())
    return code, link, calls


def test_a_figures_process_that_says_what_is_not_json_is_stopped() -> None:
    code, link, calls = run_once([sys.executable, "-c", BABBLER])
    assert calls == ["ready"] and link.status.pid is not None
    assert code == -signal.SIGTERM  # terminated, to be started again by the supervisor


def test_the_exit_code_of_a_figures_process_is_returned() -> None:
    code, _, calls = run_once([sys.executable, "-c", "raise SystemExit(3)"])
    assert (code, calls) == (3, [])


def test_a_figures_process_that_cannot_start_is_no_crash() -> None:
    code, link, _ = run_once(["/nonexistent/python"])
    assert code is None and link.status.pid is None
