"""The figures process's side of the line to the worker (see `stream_apps.figures_link`).

A service of the figures process: it holds the socket to the worker's first process, the
figures stage's own `Health` (Redis outages, and Kafka ones of its alert publishing), and
the producer its alerts are published with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import OutOfOrderSequenceNumber
from mode import Service

from stream_apps.child_process import encode
from stream_apps.health import Health
from stream_apps.kafka_io import idempotent_producer, send_and_wait
from stream_apps.settings import WorkerSettings

log = logging.getLogger(__name__)


class StageLink(Service):
    """What the figures stage needs of the worker, and what it tells it."""

    def __init__(self, settings: WorkerSettings, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.partials_topic = settings.partials_topic
        self.health = Health()
        self.flushes: list[float] = []  # Redis flush durations not reported yet
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._producer: AIOKafkaProducer | None = None

    async def on_start(self) -> None:
        _, self._writer = await asyncio.open_unix_connection(sock=self._sock)

    async def on_stop(self) -> None:
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        if self._writer is not None:
            self._writer.close()

    def tell(self, message: dict[str, Any]) -> None:
        """Send one message to the worker (lost if it is gone: then so are we)."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(encode(message))

    def figures_ready(self) -> None:
        """The figures stage owns its partials partitions: the stage publishes them all."""
        self.tell({"ready": True})

    def report(self, status: dict[str, Any]) -> None:
        flushes, self.flushes = self.flushes, []
        self.tell(
            {
                "status": {
                    **status,
                    "down": self.health.report(),
                    "retries": dict(self.health.retries),
                    "flushes": flushes,
                }
            }
        )

    async def publish(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Send records (key, value); return once the broker has them all."""
        if self._producer is None:
            producer = idempotent_producer(self.settings)
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        try:
            await send_and_wait(self._producer, topic, records)
        except OutOfOrderSequenceNumber:
            # The broker no longer takes this producer's sequence numbers: a new one
            # gets a new producer id (what it sends again is harmless: same alert ids).
            old, self._producer = self._producer, None
            with contextlib.suppress(Exception):
                await old.stop()
            raise
