"""A batch whose handling fails on the infrastructure is handled again, never dropped, and the
consumer task does not die."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException

from edge.kafka import KafkaConnection
from streams.upstream import UpstreamConsumer, UpstreamOptions


class Flaky(UpstreamConsumer):
    def __init__(self, failures: int) -> None:
        async def nothing(*_: Any) -> None:
            return None

        options = UpstreamOptions(
            KafkaConnection("127.0.0.1:1"), "g", {}, retry_initial_s=0.001, retry_max_s=0.002
        )
        super().__init__(options, None, None, nothing, nothing, nothing, nothing)  # type: ignore[arg-type]
        self.failures = failures
        self.calls = 0

    async def handle(self, batch: Sequence[Any]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise KafkaException("the dead letter was not acknowledged")


async def test_a_failing_batch_is_handled_again_until_it_is_done() -> None:
    consumer = Flaky(failures=3)
    await consumer._handle_until_done(["a message"])  # type: ignore[list-item]
    assert consumer.calls == 4


async def test_a_batch_that_succeeds_is_handled_once() -> None:
    consumer = Flaky(failures=0)
    await consumer._handle_until_done(["a message"])  # type: ignore[list-item]
    assert consumer.calls == 1
