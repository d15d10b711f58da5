"""Run the real stream worker as a separate process for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WorkerProcess:
    """`dossier-stream worker` in its own process, configured through the environment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "DOSSIER_WEB_PORT": str(self.port)}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> WorkerProcess:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dossier_stream.cli", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"worker not healthy within {timeout_s} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, as an operator would; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
                raise RuntimeError(f"worker ignored SIGTERM:\n{self.log_tail()}") from None
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def health(self) -> dict:
        """The worker's /health document."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5) as r:
            return dict(json.loads(r.read()))

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop()


def wait_for(predicate, timeout_s: float = 60.0, interval_s: float = 0.25):  # type: ignore[no-untyped-def]
    """Poll until `predicate()` returns a truthy value; return it (or the last falsy one)."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = predicate()
    return value


def read_hash(client: redis.Redis, key: str) -> dict[str, str]:
    raw = client.hgetall(key)
    return {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()  # type: ignore[union-attr]
    }


def worker_env(stack, names, data_dir: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment of a worker bound to one test's topics, group and Redis prefix."""
    return {
        "DOSSIER_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "DOSSIER_REDIS_URL": stack.redis_url,
        "DOSSIER_EVENTS_TOPIC": names.events_topic,
        "DOSSIER_DEAD_LETTER_TOPIC": names.dead_letter_topic,
        "DOSSIER_REDIS_PREFIX": names.redis_prefix,
        "DOSSIER_APP_ID": names.group_id,
        "DOSSIER_DATA_DIR": str(data_dir),
        "DOSSIER_ALERTS_TOPIC": f"{names.group_id}.alerts",
        "DOSSIER_ALERTS_UNDELIVERED_TOPIC": f"{names.group_id}.alerts.undelivered",
    }
