"""The trainer's Kafka edge: consume retrain-requested, hand each request on, publish, commit.

An offset is committed only after the outcome is recorded and published, so a crash anywhere
before that brings the request back; the handler then recognises a finished request.

No single message stops the consumer. One that cannot be decoded, that the handler refuses,
that fails unexpectedly, or whose outcome Kafka refuses goes to dead-letter with the reason (a
letter always fits, see schemas.dead_letter) and its offset is committed. When Kafka or
PostgreSQL is unavailable the message is rewound and tried again; the consumer keeps polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from edge.dead_letters import RawMessage, dead_letter_from
from edge.logs import RateLimitedLog, kafka_logger
from schemas.codec import Codec, utc_now
from schemas.dead_letter import DeadLettered
from schemas.errors import DecodeError
from schemas.retrain_requested import RetrainRequested
from trainer import metrics
from trainer.admission import RequestRefused
from trainer.errors import DependencyUnavailable
from trainer.publisher import MessageRejected, Outgoing, Publisher
from trainer.retry import retrying
from trainer.service import Result, Trainer
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)
POLL_SECONDS = 0.5
# A training holds the consumer between polls; the broker must not think it died meanwhile.
MAX_POLL_INTERVAL_MS = 30 * 60 * 1000

UNEXPECTED_ERROR = "unexpected_error"
"""Reason code of a request whose handling raised an error nobody planned for."""
OUTCOME_REJECTED = "outcome_rejected"
"""Reason code of a request whose outcome (or promotion) Kafka refuses to take."""


def outgoing(settings: TrainerSettings, result: Result) -> list[Outgoing]:
    """What a result publishes: the promotion first, so the outcome's readers can rely on it."""
    messages: list[Outgoing] = []
    if result.model_updated is not None:
        messages.append(Outgoing(settings.topics.model_updated, result.model_updated))
    messages.append(Outgoing(settings.topics.training_outcome, result.outcome))
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
        self.dead_lettered = 0
        self._errors = RateLimitedLog(log, every_s=60.0)

    def _consumer(self) -> Consumer:
        return Consumer(
            self._settings.kafka.confluent(
                {
                    "group.id": self._settings.trainer_group_id,
                    "enable.auto.commit": False,
                    "auto.offset.reset": "earliest",
                    "max.poll.interval.ms": MAX_POLL_INTERVAL_MS,
                    # A trainer killed mid-training holds its partitions until its session
                    # expires: 10 s, not librdkafka's 45 s, before a restarted or second trainer
                    # takes over. Heartbeats come from librdkafka's thread, so a long training
                    # does not end it.
                    "session.timeout.ms": 10_000,
                    "heartbeat.interval.ms": 3_000,
                    # A broker that is down makes librdkafka repeat itself many times a second.
                    "logger": kafka_logger("trainer.kafka", every_s=60.0),
                }
            )
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the current request is finished first."""
        consumer = self._consumer()
        consumer.subscribe([self._settings.topics.retrain_requested])
        log.info(
            "trainer consuming %s as group %s",
            self._settings.topics.retrain_requested,
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
                        self._errors.warning(
                            f"consumer:{error.code()}", "consumer error: %s", error
                        )
                    continue
                await self.process(consumer, message)
        finally:
            await asyncio.to_thread(consumer.close)

    async def process(self, consumer: Consumer, message: Message) -> None:
        """Answer, set aside or rewind one message; only a bug in this method itself escapes."""
        try:
            request = self._codec.decode_as(RetrainRequested, message.value() or b"")
        except DecodeError as exc:
            await self._set_aside(consumer, message, "decode", exc.reason.value, str(exc))
            return
        try:
            result = await self._trainer.handle(request)
        except RequestRefused as exc:
            await self._set_aside(consumer, message, "admit", exc.reason, exc.detail)
            return
        except DependencyUnavailable as exc:
            log.error("request %s not handled, tried again: %s", request.request_id, exc)
            await self._rewind(consumer, message)
            return
        except Exception as exc:
            # A fault nobody planned for must not turn this message into a crash loop.
            log.exception("request %s failed unexpectedly", request.request_id)
            await self._set_aside(
                consumer, message, "handle", UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}"
            )
            return
        try:
            await self._publisher.send(outgoing(self._settings, result))
        except DependencyUnavailable as exc:
            # Not committed: rewind so the request comes back; it is finished, so the handler
            # only re-publishes its outcome then.
            log.error("could not publish the outcome of %s: %s", request.request_id, exc)
            await self._rewind(consumer, message)
            return
        except MessageRejected as exc:
            # Recorded in PostgreSQL, but Kafka will never take this outcome: say so where
            # operators look, rather than rewinding to the same refusal for ever.
            log.error("Kafka refused the outcome of %s: %s", request.request_id, exc)
            await self._set_aside(consumer, message, "publish", OUTCOME_REJECTED, str(exc))
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

    async def _rewind(self, consumer: Consumer, message: Message) -> None:
        """Seek back to `message`, so the next poll brings it again (after a pause)."""
        await asyncio.sleep(self._settings.retry_base_delay_s)
        partition = TopicPartition(
            message.topic() or self._settings.topics.retrain_requested,
            message.partition() or 0,
            message.offset() or 0,
        )
        try:
            await asyncio.to_thread(consumer.seek, partition)
        except KafkaException as exc:
            # The partition was revoked meanwhile: its next owner starts from the committed
            # offset, which is still before this message.
            log.warning("could not rewind to offset %s: %s", message.offset(), exc)

    async def _commit(self, consumer: Consumer, message: Message) -> None:
        async def commit() -> None:
            try:
                await asyncio.to_thread(consumer.commit, message=message, asynchronous=False)
            except KafkaException as exc:
                raise DependencyUnavailable(f"commit refused: {exc}") from exc

        try:
            await retrying(commit, self._settings, "committing the offset")
        except DependencyUnavailable as exc:
            # The message comes back after a restart or rebalance; finished requests are
            # recognised then, and a set-aside message is set aside again.
            log.error("offset %s of %s not committed: %s", message.offset(), message.topic(), exc)

    def _letter(
        self, message: Message, stage: str, reason: str, error: str, *, bare: bool = False
    ) -> DeadLettered:
        raw = RawMessage(
            message.topic() or self._settings.topics.retrain_requested,
            message.partition() or 0,
            message.offset() or 0,
            message.key(),
            message.value(),
        )
        return dead_letter_from(raw, stage, reason, error, at=self._clock(), bare=bare)

    async def _set_aside(
        self, consumer: Consumer, message: Message, stage: str, reason: str, error: str
    ) -> None:
        """Publish the message to dead-letter with the reason, then commit past it.

        A dead-letter topic that refuses even a letter within Kafka's defaults gets one without
        the original bytes (size, sha256 and offset still find them). When Kafka is unavailable
        the message is rewound and set aside later: never committed without its letter.
        """
        topic = self._settings.topics.dead_letter
        letter = self._letter(message, stage, reason, error)
        try:
            try:
                await self._publisher.send([Outgoing(topic, letter)])
            except MessageRejected as exc:
                log.error("%s refused the letter for offset %s: %s", topic, message.offset(), exc)
                bare = self._letter(message, stage, reason, error, bare=True)
                await self._publisher.send([Outgoing(topic, bare)])
        except (DependencyUnavailable, MessageRejected) as exc:
            log.error("could not dead-letter offset %s; tried again: %s", message.offset(), exc)
            await self._rewind(consumer, message)
            return
        metrics.INVALID_REQUESTS.labels(reason).inc()
        self.dead_lettered += 1
        log.warning(
            "retrain request at offset %s dead-lettered (%s): %s", message.offset(), reason, error
        )
        await self._commit(consumer, message)
