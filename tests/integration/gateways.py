"""Run `dossier-stream gateway serve` as a separate process, and read what it published."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tests.cli import ROOT, free_port, run_cli

MASTER_KEY = "integration-master-key-of-the-worker"


def add_token(tokens_file: Path, agency: str) -> str:
    """`dossier-stream gateway token add --agency AGENCY`: the token it prints once."""
    result = run_cli(
        "gateway", "token", "add", "--agency", agency, "--label", "integration test",
        env={"DOSSIER_GATEWAY_TOKENS_FILE": str(tokens_file)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def gateway_env(stack, names, tokens_file: Path, **settings: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """A gateway for one test's topic and tokens file; `settings` as DOSSIER_* suffixes."""
    env = {
        "DOSSIER_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "DOSSIER_EVENTS_TOPIC": names.events_topic,
        "DOSSIER_GATEWAY_TOKENS_FILE": str(tokens_file),
    }
    return env | {f"DOSSIER_{k.upper()}": v for k, v in settings.items()}


class GatewayProcess:
    """`python -m dossier_stream.cli gateway serve` in its own process, until `stop`."""

    def __init__(self, env: dict[str, str], log_path: Path, *, scheme: str = "http") -> None:
        self.port = free_port()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
        self.env = clean | env
        self.log_path = log_path
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> GatewayProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dossier_stream.cli", "gateway", "serve",
                 "--port", str(self.port)],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            try:
                # The health check only: the certificate is the test's to verify.
                answer = httpx.get(f"{self.url}/v1/health", timeout=1, verify=False)
                if answer.status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"gateway not serving within {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> end offset of the topic, as the broker has it now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    """Every record of the topic, up to its end offsets at the time of the call."""
    ends = end_offsets(bootstrap, topic)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        out: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()
