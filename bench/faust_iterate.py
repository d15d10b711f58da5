"""Faust baseline of the pipeline benchmark: an agent that only iterates `stream.events()`.

Run by `bench/pipeline.py` as its own process, like a worker:

    python -m bench.faust_iterate --topic T --app-id A --expected N --result R.json

The agent counts the messages of the topic (raw bytes, no decoding, no table, no sink);
when it has seen `--expected` of them it writes the count and the seconds from its first
message to its last one to `--result`. The web server is off. The process then idles
until the benchmark stops it with SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import faust


def build(args: argparse.Namespace) -> faust.Worker:
    datadir = Path(args.datadir)
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        args.app_id,
        broker=[f"kafka://{server}" for server in args.bootstrap.split(",")],
        store="memory://",
        autodiscover=False,
        datadir=str(datadir),
        topic_partitions=args.partitions,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
    )
    topic = app.topic(
        args.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    result = Path(args.result)
    state = {"n": 0, "first": 0.0}

    @app.agent(topic)
    async def iterate(stream: faust.StreamT[bytes]) -> AsyncIterator[None]:
        async for _event in stream.events():
            state["n"] += 1
            n = state["n"]
            if n == 1:
                state["first"] = time.perf_counter()
            if n == args.expected:
                elapsed = time.perf_counter() - state["first"]
                tmp = result.with_suffix(".tmp")
                tmp.write_text(json.dumps({"events": n, "elapsed_s": elapsed, "pid": os.getpid()}))
                tmp.replace(result)  # the benchmark never reads half a file
            yield None

    return faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:29092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--app-id", required=True)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--datadir", required=True)
    args = parser.parse_args()
    build(args).execute_from_commandline()


if __name__ == "__main__":
    main()
