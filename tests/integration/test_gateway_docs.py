"""docs/gateway.md's curl and Java examples, run as written against a running gateway."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import Names
from tests.factories import event_doc
from tests.integration.gateways import GatewayProcess, add_token, end_offsets, gateway_env

DOC = (Path(__file__).resolve().parents[2] / "docs" / "gateway.md").read_text(encoding="utf-8")
XD = {"code": "SO-XD", "level": "city"}


def code_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC, re.S)
    found = [b for b in blocks if containing in b]
    assert found, f"no {language} block with {containing!r}"
    return found[0]


@pytest.fixture
def running(stack, names: Names, make_topics, tmp_path: Path):  # type: ignore[no-untyped-def]
    make_topics(names)
    tokens_file = tmp_path / "tokens.json"
    token = add_token(tokens_file, "SO-XD")
    with GatewayProcess(gateway_env(stack, names, tokens_file), tmp_path / "gw.log") as gateway:
        yield gateway, token


def write_events(path: Path, first: int, count: int) -> None:
    docs = [event_doc(agency=XD, dossier_id=f"HP-SO-XD-{first + n}") for n in range(count)]
    path.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in docs))


def test_the_curl_example(running, stack, names: Names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    gateway, token = running
    write_events(tmp_path / "events.jsonl", 1, 3)
    command = code_block("sh", "curl").replace("http://127.0.0.1:8077", gateway.url)
    result = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=os.environ | {"TOKEN": token},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["count"] == 3
    assert sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values()) == 3


def test_the_java_example(running, stack, names: Names, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    java = shutil.which("java")
    if java is None:
        pytest.fail("no `java` on PATH: the Java example cannot be checked", pytrace=False)
    gateway, token = running
    source = tmp_path / "GatewayClient.java"
    source.write_text(code_block("java", "class GatewayClient"), encoding="utf-8")
    write_events(tmp_path / "events.jsonl", 10, 4)
    env = os.environ | {"GATEWAY_URL": gateway.url, "GATEWAY_TOKEN": token}
    result = subprocess.run(
        [java, str(source), "events.jsonl"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("202 ")
    assert sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values()) == 4
    # A bad token: the example stops with 401 and exit code 1, and publishes nothing.
    bad = env | {"GATEWAY_TOKEN": token[:-1] + ("A" if token[-1] != "A" else "B")}
    refused = subprocess.run(
        [java, str(source), "events.jsonl"], cwd=tmp_path, env=bad,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 1 and refused.stdout.startswith("401 ")
    assert sum(end_offsets(stack.kafka_bootstrap, names.events_topic).values()) == 4
