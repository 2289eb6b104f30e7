"""Publishing the trainer's events with confluent-kafka: delivered, or an error after retries."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from schemas.base import Event
from schemas.codec import Codec
from trainer.errors import DependencyUnavailable
from trainer.retry import retrying
from trainer.settings import TrainerSettings


@dataclass(frozen=True)
class Outgoing:
    """One event bound for a topic (the key is the event's own key field)."""

    topic: str
    event: Event


class Publisher:
    """An idempotent producer; `send` returns once every message is acknowledged by the broker."""

    def __init__(self, settings: TrainerSettings, codec: Codec) -> None:
        self._settings = settings
        self._codec = codec
        self._producer = Producer(
            {
                **settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(settings.publish_timeout_s * 1000),
            }
        )

    def _send_blocking(self, messages: Sequence[Outgoing]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, message: Message) -> None:
            if err is not None:
                failures.append(f"{message.topic()}: {err}")

        for item in messages:
            self._producer.produce(
                item.topic,
                key=self._codec.key_of(item.event),
                value=self._codec.encode(item.event),
                on_delivery=delivered,
            )
        remaining = self._producer.flush(self._settings.publish_timeout_s)
        if remaining or failures:
            raise DependencyUnavailable(
                f"{remaining} message(s) undelivered; errors: {failures[:3]}"
            )

    async def send(self, messages: Sequence[Outgoing]) -> None:
        """Publish and wait for acknowledgements; retried with backoff, then raises."""
        if messages:
            await retrying(
                lambda: asyncio.to_thread(self._send_blocking, messages),
                self._settings,
                "publishing to Kafka",
            )

    def close(self) -> None:
        self._producer.flush(self._settings.publish_timeout_s)
