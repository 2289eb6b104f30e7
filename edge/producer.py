"""The one producer of both services and the tools: a batch is delivered, or one error says what
was not.

`DeliveringProducer` hands a batch to librdkafka in one go (off the event loop for the async
calls), waits while librdkafka's queue is full instead of dropping, and waits for the delivery
report of every message it was given. Whatever failed — refused before sending, refused by the
broker, timed out — comes back as one `DeliveryFailed` listing each failed message with
librdkafka's error, so callers can tell "Kafka is away" from "Kafka will never take this".
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from edge.kafka import KafkaConnection
from edge.logs import kafka_logger

log = logging.getLogger(__name__)

KeyValue = tuple[bytes | None, bytes]

DEFAULTS: Mapping[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 5,
}
"""What every producer here wants unless told otherwise: acknowledged by all in-sync replicas,
without duplicates from librdkafka's own retries."""

QUEUE_FULL_PAUSE_S = 0.05
"""How long a full local queue is served (delivery reports) before the message is tried again."""

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


@dataclass(frozen=True)
class FailedMessage:
    """One message that was not delivered: its place in the batch, its key and why."""

    topic: str
    index: int
    key: bytes | None
    error: KafkaError

    @property
    def refused(self) -> bool:
        """Kafka refuses this message itself: sending it again cannot help."""
        return bool(self.error.code() in REFUSED_MESSAGE_CODES)

    def __str__(self) -> str:
        return (
            f"{self.topic} #{self.index} key={self.key!r}: {self.error.name()}: {self.error.str()}"
        )


class DeliveryFailed(KafkaException):
    """Some messages were not delivered; `failed` says which and why.

    A KafkaException (its `args[0]` the first failure's KafkaError, its text the whole list),
    so code that treats Kafka's errors as an outage to retry treats this one so too.
    """

    def __init__(self, failed: Sequence[FailedMessage], total: int) -> None:
        ordered = tuple(sorted(failed, key=lambda f: (f.topic, f.index)))
        topics = tuple(sorted({f.topic for f in ordered}))
        shown = "; ".join(str(f) for f in ordered[:3])
        more = f" (and {len(ordered) - 3} more)" if len(ordered) > 3 else ""
        self.summary = (
            f"{len(ordered)} of {total} message(s) not delivered to {', '.join(topics)}: "
            f"{shown}{more}"
        )
        first = ordered[0].error
        super().__init__(
            KafkaError(first.code(), self.summary, fatal=first.fatal(), retriable=first.retriable())
        )
        self.failed = ordered
        self.total = total
        self.topics = topics

    def __str__(self) -> str:
        return self.summary

    @property
    def refused(self) -> bool:
        """Kafka refused at least one of them for what it is (too large, malformed)."""
        return any(f.refused for f in self.failed)

    @property
    def fatal(self) -> bool:
        return any(f.error.fatal() for f in self.failed)


class _Batch:
    """The delivery reports of one batch; served on whichever thread polls the producer."""

    def __init__(self, topic: str, messages: Sequence[KeyValue]) -> None:
        self.topic = topic
        self.messages = messages
        self.outstanding: set[int] = set()
        self.failed: list[FailedMessage] = []
        self.lock = threading.Lock()

    def fail(self, index: int, error: KafkaError) -> None:
        with self.lock:
            self.outstanding.discard(index)
            self.failed.append(FailedMessage(self.topic, index, self.messages[index][0], error))

    def delivered(self, index: int, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.fail(index, error)
            return
        with self.lock:
            self.outstanding.discard(index)

    @property
    def done(self) -> bool:
        with self.lock:
            return not self.outstanding

    def give_up(self) -> None:
        """No report by the deadline: what is still outstanding counts as timed out."""
        for index in sorted(self.outstanding):
            self.fail(index, KafkaError(KafkaError._MSG_TIMED_OUT))


class DeliveringProducer:
    """A confluent-kafka producer whose every send is delivered or raises `DeliveryFailed`.

    `overrides` are librdkafka settings (`**{"linger.ms": 20, "compression.type": "lz4"}`) on
    top of the connection's and DEFAULTS. Safe to share between tasks and threads.
    """

    def __init__(self, connection: KafkaConnection, **overrides: Any) -> None:
        self.connection = connection
        self._config = connection.confluent({**DEFAULTS, "logger": kafka_logger(), **overrides})
        # librdkafka fails a message after message.timeout.ms; we wait a little longer for it.
        self._report_deadline_s = int(self._config.get("message.timeout.ms", 300_000)) / 1000 + 10
        self._renew = threading.Lock()
        self._producer = Producer(self._config)
        # Batches handed over by enqueue() and not settled yet; what the settled ones left.
        self._queued: list[_Batch] = []
        self._settled_failed: list[FailedMessage] = []
        self._settled_total = 0

    # -- async ---------------------------------------------------------------------------------

    async def send_all(self, topic: str, messages: Sequence[KeyValue]) -> None:
        """Deliver every message (key, value) to `topic`, or raise DeliveryFailed."""
        if messages:
            await asyncio.to_thread(self.deliver, topic, messages)

    async def send(self, topic: str, key: bytes | None, value: bytes) -> None:
        """Deliver one message, or raise DeliveryFailed."""
        await self.send_all(topic, [(key, value)])

    # -- blocking ------------------------------------------------------------------------------

    def deliver(self, topic: str, messages: Sequence[KeyValue]) -> None:
        """Blocking `send_all`, for command-line tools and threads."""
        batch = self._produce(topic, messages)
        self._wait(batch)
        self._raise(batch.failed, len(batch.messages))

    def enqueue(self, topic: str, messages: Sequence[KeyValue]) -> None:
        """Hand messages over without waiting for them; `close` accounts for them all."""
        batch = self._produce(topic, messages)
        self._queued.append(batch)
        self._producer.poll(0)
        # Keep only what close() needs of settled batches (their failures), not their messages.
        for settled in [b for b in self._queued if b.done]:
            self._queued.remove(settled)
            self._settled_failed.extend(settled.failed)
            self._settled_total += len(settled.messages)

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush within `timeout_s`; raise DeliveryFailed for enqueued messages not delivered."""
        deadline = time.monotonic() + timeout_s
        self._producer.flush(timeout_s)
        queued, self._queued = self._queued, []
        for batch in queued:
            self._wait(batch, deadline)
        failed = [*self._settled_failed, *(f for batch in queued for f in batch.failed)]
        total = self._settled_total + sum(len(batch.messages) for batch in queued)
        self._settled_failed, self._settled_total = [], 0
        self._raise(failed, total)

    # -- inside --------------------------------------------------------------------------------

    def _produce(self, topic: str, messages: Sequence[KeyValue]) -> _Batch:
        batch = _Batch(topic, messages)
        producer = self._producer
        for index, (key, value) in enumerate(messages):
            on_delivery: Callable[[KafkaError | None, Message], None] = partial(
                batch.delivered, index
            )
            with batch.lock:
                batch.outstanding.add(index)
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=on_delivery)
                    break
                except BufferError:
                    # librdkafka's queue is full: serve delivery reports until it has room.
                    producer.poll(QUEUE_FULL_PAUSE_S)
                except KafkaException as exc:
                    # Refused before sending (larger than message.max.bytes, a fatal state …).
                    batch.fail(index, exc.args[0])
                    break
        return batch

    def _wait(self, batch: _Batch, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + self._report_deadline_s
        while not batch.done and time.monotonic() < deadline:
            self._producer.poll(0.1)
        if not batch.done:
            batch.give_up()

    def _raise(self, failed: Sequence[FailedMessage], total: int) -> None:
        if not failed:
            return
        error = DeliveryFailed(failed, total)
        if error.fatal:
            self._replace()
        raise error

    def _replace(self) -> None:
        """An idempotent producer that met a fatal error refuses everything from then on."""
        with self._renew:
            log.error("the Kafka producer met a fatal error; starting a new one")
            old, self._producer = self._producer, Producer(self._config)
        old.flush(0)
