"""Publishing the trainer's events with confluent-kafka: delivered, or an error after retries.

Failures come in two kinds the runner treats differently: Kafka is unavailable (retried, then
DependencyUnavailable: try the whole message again later) or Kafka refuses this very message
(MessageRejected: sending it again cannot help).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

from edge.logs import kafka_logger
from edge.producer import DeliveringProducer, DeliveryFailed
from schemas.base import Event
from schemas.codec import Codec
from trainer.errors import DependencyUnavailable, TrainerError
from trainer.retry import retrying
from trainer.settings import TrainerSettings


class MessageRejected(TrainerError):
    """Kafka refuses a message itself (too large for the topic, malformed): never retried."""


@dataclass(frozen=True)
class Outgoing:
    """One event bound for a topic (the key is the event's own key field)."""

    topic: str
    event: Event


def _failure(exc: DeliveryFailed) -> TrainerError:
    if exc.refused:
        return MessageRejected(f"Kafka refused the message: {exc}")
    return DependencyUnavailable(str(exc))


class Publisher:
    """An idempotent producer; `send` returns once every message is acknowledged by the broker."""

    def __init__(self, settings: TrainerSettings, codec: Codec) -> None:
        self._settings = settings
        self._codec = codec
        self._producer = DeliveringProducer(
            settings.kafka,
            **{
                "message.timeout.ms": int(settings.publish_timeout_s * 1000),
                "logger": kafka_logger("trainer.kafka", every_s=60.0),
            },
        )

    def _send_blocking(self, messages: Sequence[Outgoing]) -> None:
        # A topic's run at a time, in order: a promotion is delivered before its outcome.
        for topic, run in groupby(messages, key=lambda item: item.topic):
            batch = [(self._codec.key_of(m.event), self._codec.encode(m.event)) for m in run]
            try:
                self._producer.deliver(topic, batch)
            except DeliveryFailed as exc:
                raise _failure(exc) from exc

    async def send(self, messages: Sequence[Outgoing]) -> None:
        """Publish and wait for acknowledgements.

        Unavailability is retried with backoff, then raised as DependencyUnavailable; a message
        Kafka refuses raises MessageRejected at once.
        """
        if messages:
            await retrying(
                lambda: asyncio.to_thread(self._send_blocking, messages),
                self._settings,
                "publishing to Kafka",
            )

    def close(self) -> None:
        self._producer.close(self._settings.publish_timeout_s)
