"""The figures process's Kafka transport: Faust's aiokafka driver, fetching more promptly.

Faust builds its worker consumer with a fixed long poll (`fetch_max_wait_ms=1500`).
Replaying a backlog, the figures process then received a round of partials up to about
a second and a half after the stage processes had sent it (a fetch waited out in full
while the round's messages were already on the broker), and Redis trailed the stage by
up to 1.8 s on the quarter (BENCHMARKS.md, "Freshness under the backlog"). The consumer
here waits at most `FETCH_MAX_WAIT_MS`: a handful of fetches a second from an idle
figures process, and every round merged within a fraction of a second.
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = 100


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by AIOKafkaConsumer.start(), which builds its fetcher with it.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """Faust's aiokafka transport with the prompter worker consumer."""

    Consumer = _Consumer
