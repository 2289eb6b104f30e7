"""The trainer's Kafka edge: consume retrain-requested, hand each request on, publish, commit.

An offset is committed only after the outcome is recorded and published, so a crash anywhere
before that brings the request back; the handler then recognises a finished request.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from schemas.codec import Codec, utc_now
from schemas.dead_letter import DeadLettered
from schemas.errors import DecodeError
from schemas.retrain_requested import RetrainRequested
from trainer import metrics
from trainer.errors import DependencyUnavailable
from trainer.publisher import Outgoing, Publisher
from trainer.retry import retrying
from trainer.service import Result, Trainer
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
# A training holds the consumer between polls; the broker must not think it died meanwhile.
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000


def outgoing(settings: TrainerSettings, result: Result) -> list[Outgoing]:
    """What a result publishes: the promotion first, so the outcome's readers can rely on it."""
    messages: list[Outgoing] = []
    if result.model_updated is not None:
        messages.append(Outgoing(settings.topic_model_updated, result.model_updated))
    messages.append(Outgoing(settings.topic_training_outcome, result.outcome))
    return messages


class RequestConsumer:
    """Runs the trainer on every retrain-requested message of its consumer group."""

    def __init__(
        self,
        settings: TrainerSettings,
        trainer: Trainer,
        publisher: Publisher,
        codec: Codec,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._trainer = trainer
        self._publisher = publisher
        self._codec = codec
        self._clock = clock
        self.handled = 0

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                **self._settings.kafka_config(),
                "group.id": self._settings.trainer_group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
            }
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the current request is finished first."""
        consumer = self._consumer()
        consumer.subscribe([self._settings.topic_retrain_requested])
        log.info(
            "trainer consuming %s as group %s",
            self._settings.topic_retrain_requested,
            self._settings.trainer_group_id,
        )
        try:
            while not stop.is_set():
                message = await asyncio.to_thread(consumer.poll, POLL_SECONDS)
                metrics.LIVENESS.beat()
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("consumer error: %s", error)
                    continue
                await self.process(consumer, message)
        finally:
            await asyncio.to_thread(consumer.close)

    async def process(self, consumer: Consumer, message: Message) -> None:
        value = message.value() or b""
        try:
            request = self._codec.decode_as(RetrainRequested, value)
        except DecodeError as exc:
            await self._dead_letter(message, exc)
            await self._commit(consumer, message)
            return
        result = await self._trainer.handle(request)
        try:
            await self._publisher.send(outgoing(self._settings, result))
        except DependencyUnavailable as exc:
            # Not committed: rewind so the request comes back; it is finished, so the handler
            # only re-publishes its outcome then.
            log.error("could not publish the outcome of %s: %s", request.request_id, exc)
            partition = TopicPartition(
                message.topic() or self._settings.topic_retrain_requested,
                message.partition() or 0,
                message.offset() or 0,
            )
            await asyncio.to_thread(consumer.seek, partition)
            return
        await self._commit(consumer, message)
        self.handled += 1
        log.info(
            "request %s (%s): %s %s",
            request.request_id,
            request.family,
            result.status.value,
            result.outcome.version or "",
        )

    async def _commit(self, consumer: Consumer, message: Message) -> None:
        async def commit() -> None:
            await asyncio.to_thread(consumer.commit, message=message, asynchronous=False)

        await retrying(commit, self._settings, "committing the offset")

    async def _dead_letter(self, message: Message, exc: DecodeError) -> None:
        key = message.key()
        letter = DeadLettered(
            occurred_at=self._clock(),
            source_topic=message.topic() or self._settings.topic_retrain_requested,
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key_b64=base64.b64encode(key).decode() if key is not None else None,
            value_b64=base64.b64encode(message.value() or b"").decode(),
            stage="decode",
            reason=exc.reason.value,
            error=str(exc)[:1000],
            failed_at=self._clock(),
        )
        metrics.INVALID_REQUESTS.labels(exc.reason.value).inc()
        log.warning("retrain request at offset %s dead-lettered: %s", message.offset(), exc)
        await self._publisher.send([Outgoing(self._settings.topic_dead_letter, letter)])
