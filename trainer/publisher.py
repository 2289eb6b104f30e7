"""Publishing the trainer's events with confluent-kafka: delivered, or an error after retries.

Failures come in two kinds the runner treats differently: Kafka is unavailable (retried, then
DependencyUnavailable: try the whole message again later) or Kafka refuses this very message
(MessageRejected: sending it again cannot help).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from edge.logs import kafka_logger
from schemas.base import Event
from schemas.codec import Codec
from trainer.errors import DependencyUnavailable, TrainerError
from trainer.retry import retrying
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)

REFUSED_MESSAGE_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
    }
)
"""Errors about the message itself (its size or shape), not about the state of Kafka."""


class MessageRejected(TrainerError):
    """Kafka refuses a message itself (too large for the topic, malformed): never retried."""


@dataclass(frozen=True)
class Outgoing:
    """One event bound for a topic (the key is the event's own key field)."""

    topic: str
    event: Event


def _failure(errors: Sequence[KafkaError], remaining: int) -> TrainerError:
    described = [f"{error.name()}: {error.str()}" for error in errors[:3]]
    if any(error.code() in REFUSED_MESSAGE_CODES for error in errors):
        return MessageRejected(f"Kafka refused the message: {described}")
    return DependencyUnavailable(f"{remaining} message(s) undelivered; errors: {described}")


class Publisher:
    """An idempotent producer; `send` returns once every message is acknowledged by the broker."""

    def __init__(self, settings: TrainerSettings, codec: Codec) -> None:
        self._settings = settings
        self._codec = codec
        self._producer = self._new_producer()

    def _new_producer(self) -> Producer:
        return Producer(
            {
                **self._settings.kafka_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(self._settings.publish_timeout_s * 1000),
                "logger": kafka_logger("trainer.kafka", every_s=60.0),
            }
        )

    def _send_blocking(self, messages: Sequence[Outgoing]) -> None:
        errors: list[KafkaError] = []

        def delivered(err: KafkaError | None, message: Message) -> None:
            if err is not None:
                errors.append(err)

        for item in messages:
            try:
                self._producer.produce(
                    item.topic,
                    key=self._codec.key_of(item.event),
                    value=self._codec.encode(item.event),
                    on_delivery=delivered,
                )
            except KafkaException as exc:
                # Raised before sending: the message is too large, the topic name invalid, …
                errors.append(exc.args[0])
                break
            except BufferError:
                errors.append(KafkaError(KafkaError._QUEUE_FULL))
                break
        remaining = self._producer.flush(self._settings.publish_timeout_s)
        if any(error.fatal() for error in errors):
            # An idempotent producer that met a fatal error refuses everything from then on.
            log.error("the producer met a fatal error (%s); starting a new one", errors)
            self._producer = self._new_producer()
        if remaining or errors:
            raise _failure(errors, remaining)

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
        self._producer.flush(self._settings.publish_timeout_s)
