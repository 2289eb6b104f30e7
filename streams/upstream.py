"""The worker's upstream consumer: each batch is stored, scored and dead-lettered, then committed.

Why not Faust's own acking for these topics: Faust commits the highest run of acked offsets it
has seen, and after a rebalance (or a seek back while its flow is stopped) an event taken into a
batch can be dropped without an ack while later ones are acked, so the commit moves past it and
the event is neither stored nor dead-lettered. Here the rule is simple enough to check by reading:
one librdkafka consumer, a batch is handled completely before the next poll, offsets are committed
explicitly from that batch only, and partitions can only move between batches (rebalance callbacks
run inside the poll). An event below a committed offset has therefore been stored, scored or
dead-lettered; a crash before the commit means a redelivery, which the idempotent sink absorbs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from edge.dead_letters import RawMessage, dead_letter_from
from edge.kafka import KafkaConnection
from edge.logs import RateLimitedLog, kafka_logger
from edge.retry import TRANSIENT_ERRORS, RetryPolicy
from schemas.base import ModelFamily
from schemas.customer_activity import CustomerActivityRecorded
from schemas.dead_letter import DeadLettered
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams import metrics
from streams.services.ingest import IngestHandler
from streams.services.scoring import ScoredBatch, Scorer
from streams.statement_history import Delivery

log = logging.getLogger(__name__)

SendDeadLetters = Callable[[Sequence[DeadLettered]], Awaitable[None]]
Signal = Callable[[ModelFamily], Awaitable[None]]

# Errors librdkafka reports on a poll that only mean "not yet" (a topic being created).
_QUIET_ERRORS = {KafkaError._PARTITION_EOF}


@dataclass(frozen=True)
class UpstreamOptions:
    """How the upstream consumer reads: its group, batch shape and retry pacing."""

    kafka: KafkaConnection
    group_id: str
    topics: dict[str, str]  # configured topic name -> logical (default) name
    batch_size: int = 500
    batch_within_s: float = 0.5
    session_timeout_s: float = 10.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 5.0


class UpstreamConsumer:
    """Poll a batch, hand it over completely, commit it; repeat until stopped."""

    def __init__(
        self,
        options: UpstreamOptions,
        ingest: IngestHandler,
        scorer: Scorer,
        send_dead_letters: SendDeadLetters,
        signal: Signal,
        emit_expenses: Callable[[Sequence[Any]], Awaitable[None]],
        emit_customers: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> None:
        self.options = options
        self.ingest = ingest
        self.scorer = scorer
        self.send_dead_letters = send_dead_letters
        self.signal = signal
        self.emit_expenses = emit_expenses
        self.emit_customers = emit_customers
        self.assignment: set[tuple[str, int]] = set()
        self._errors = RateLimitedLog(log)
        # Handling a batch retries any exception: what is left to fail there is the
        # infrastructure, never the input (that is dead-lettered inside `handle`).
        self._retry_any = RetryPolicy(
            options.retry_initial_s, options.retry_max_s, transient=(Exception,)
        )
        self._retry = RetryPolicy(
            options.retry_initial_s, options.retry_max_s, transient=TRANSIENT_ERRORS
        )
        # Offsets handled but not committed yet (a commit failed during a rebalance).
        self._pending: dict[tuple[str, int], int] = {}

    def _config(self) -> dict[str, Any]:
        return self.options.kafka.confluent(
            {
                "group.id": self.options.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": int(self.options.session_timeout_s * 1000),
                "heartbeat.interval.ms": max(int(self.options.session_timeout_s * 1000) // 5, 500),
                "error_cb": self._on_error,
                "logger": kafka_logger(),
            }
        )

    def _on_error(self, error: KafkaError) -> None:
        self._errors.warning(
            f"kafka:{error.code()}", "upstream consumer: %s", error.str() or error.name()
        )

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assignment.update((tp.topic, tp.partition) for tp in partitions)
        log.info("upstream partitions assigned: %s", _names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every batch was handled before this poll began: commit what is not committed yet
        # while these partitions are still ours, then let them go.
        self._commit_pending(consumer, {(tp.topic, tp.partition) for tp in partitions})
        statements: list[int] = []
        for tp in partitions:
            self._pending.pop((tp.topic, tp.partition), None)
            self.assignment.discard((tp.topic, tp.partition))
            logical = self.options.topics.get(tp.topic)
            if logical is not None:
                _forget_lag(logical, tp.partition)
            if logical == "customer-activity":
                statements.append(tp.partition)
        # Another member stores these customers' statements from now on.
        self.scorer.partitions_revoked(statements)
        if partitions:
            log.info("upstream partitions revoked: %s", _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost (this member timed out): another member may own them already, commit nothing.
        for tp in partitions:
            self._pending.pop((tp.topic, tp.partition), None)
        self._on_revoke(consumer, partitions)

    async def run(self) -> None:
        """Consume until cancelled; the consumer leaves its group on the way out."""
        consumer = Consumer(self._config())
        consumer.subscribe(
            list(self.options.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        polling: asyncio.Future[list[Message]] | None = None
        try:
            while True:
                polling = asyncio.ensure_future(
                    asyncio.to_thread(
                        consumer.consume,
                        self.options.batch_size,
                        self.options.batch_within_s,
                    )
                )
                messages = await asyncio.shield(polling)
                polling = None
                batch = self._usable(messages)
                if batch:
                    await self._handle_until_done(batch)
                    await self._commit(consumer, batch)
                elif self._pending:
                    await asyncio.to_thread(self._commit_pending, consumer, None)
                await asyncio.to_thread(self._export_lag, consumer)
        finally:
            if polling is not None:
                # A poll still runs in its thread: the consumer is closed after it returns.
                await asyncio.wait([polling])
            await asyncio.to_thread(consumer.close)
            self.assignment.clear()

    def _usable(self, messages: list[Message]) -> list[Message]:
        usable: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                usable.append(message)
            elif error.code() not in _QUIET_ERRORS:
                self._errors.warning(
                    f"poll:{error.code()}", "upstream poll: %s", error.str() or error.name()
                )
        return usable

    async def _handle_until_done(self, batch: Sequence[Message]) -> None:
        """Handle `batch`, trying again after a pause when Kafka or PostgreSQL fail under it.

        What the input gets wrong is dead-lettered inside `handle`; what is left to fail is the
        infrastructure (a dead letter or a signal Kafka does not take). The batch is stored
        idempotently, so it is handled again rather than skipped, and this task never dies:
        ingestion resumes when the fault is gone.
        """
        await self._retry_any.call(
            lambda: self.handle(batch), f"handling a batch of {len(batch)}", self._errors
        )

    async def handle(self, batch: Sequence[Message]) -> None:
        """Store, dead-letter and score one polled batch; returns once all of it is done."""
        by_topic: dict[str, list[RawMessage]] = defaultdict(list)
        for message in batch:
            topic = message.topic() or ""
            by_topic[topic].append(
                RawMessage(
                    topic,
                    message.partition() or 0,
                    message.offset() or 0,
                    message.key(),
                    message.value(),
                )
            )
        families: set[ModelFamily] = set()
        for topic, raws in by_topic.items():
            logical = self.options.topics[topic]
            result = await self.ingest.handle(logical, raws)
            letters = list(result.dead_letters)
            if logical == "expense-sheet":
                sheets = [e for e in result.events if isinstance(e, ExpenseSheetSubmitted)]
                scored = await self._score(logical, raws, letters, self._score_sheets, sheets)
                # New scores move the anomaly rate: the policy looks again (the lines are stored).
                if scored is not None and scored.scored and scored.model_version is not None:
                    families.add(ModelFamily.EXPENSE_FRAUD)
            elif logical == "customer-activity":
                statements: list[CustomerActivityRecorded] = []
                partitions: list[int] = []
                for event, source in zip(result.events, result.sources, strict=True):
                    if isinstance(event, CustomerActivityRecorded):
                        statements.append(event)
                        partitions.append(source.partition)
                score = functools.partial(
                    self.scorer.score_statements,
                    emit=self.emit_customers,
                    delivery=Delivery(partitions, result.stored.new_ids),
                )
                await self._score(logical, raws, letters, score, statements)
            if letters:
                await self.send_dead_letters(letters)
            families |= result.families
        for family in sorted(families):
            await self.signal(family)

    async def _score_sheets(self, sheets: Sequence[Any]) -> ScoredBatch:
        return await self.scorer.score_sheets(sheets, self.emit_expenses)

    async def _score(
        self,
        logical: str,
        raws: Sequence[RawMessage],
        letters: list[DeadLettered],
        score: Callable[[Sequence[Any]], Awaitable[ScoredBatch]],
        events: Sequence[Any],
    ) -> ScoredBatch | None:
        """Score stored events; outages are retried, any other failure is dead-lettered."""
        if not events:
            return None
        try:
            return await self._retry.call(
                lambda: score(events),
                f"scoring {logical}",
                self._errors,
                on_retry=lambda _exc: metrics.SCORING_RETRIES.labels(logical).inc(),
            )
        except Exception as exc:  # any other failure sets the batch aside, never the worker
            log.exception("scoring a batch of %s failed; dead-lettering it", logical)
            stored = {(r.partition, r.offset) for r in raws} - {
                (letter.partition, letter.offset) for letter in letters
            }
            for raw in raws:
                if (raw.partition, raw.offset) in stored:
                    letter = dead_letter_from(raw, "score", type(exc).__name__, str(exc))
                    letters.append(letter)
                    metrics.DEAD_LETTERS.labels(logical, "score", letter.reason).inc()
            return None

    async def _commit(self, consumer: Consumer, batch: Sequence[Message]) -> None:
        """Commit the offset after the last message of each partition handled so far."""
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            self._pending[key] = max(self._pending.get(key, -1), (message.offset() or 0) + 1)
        await asyncio.to_thread(self._commit_pending, consumer, None)

    def _commit_pending(self, consumer: Consumer, only: set[tuple[str, int]] | None) -> None:
        """Commit handled offsets of partitions this member owns; what fails is tried again.

        A failed commit (the group rebalancing) is kept and retried after the next poll, so the
        committed offset catches up even when no new message arrives; partitions given up in the
        meantime are dropped (their new owner reads the rest again, and the sink is idempotent).
        """
        keys = [k for k in self._pending if k in self.assignment and (only is None or k in only)]
        if not keys:
            return
        offsets = [TopicPartition(t, p, self._pending[(t, p)]) for t, p in sorted(keys)]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._errors.warning(
                "commit", "upstream commit of %d partitions failed (retried): %s", len(keys), exc
            )
            return
        for key in keys:
            self._pending.pop(key, None)

    def _export_lag(self, consumer: Consumer) -> None:
        owned = [TopicPartition(t, p) for t, p in sorted(self.assignment)]
        if not owned:
            return
        try:
            positions = consumer.position(owned)
        except KafkaException:
            return
        for tp in positions:
            if tp.offset < 0:
                continue
            try:
                _low, high = consumer.get_watermark_offsets(tp, cached=True)
            except KafkaException:
                continue
            logical = self.options.topics.get(tp.topic)
            if logical is not None and high >= 0:
                metrics.CONSUMER_LAG.labels(logical, str(tp.partition)).set(
                    max(high - tp.offset, 0)
                )


def _forget_lag(logical: str, partition: int) -> None:
    with contextlib.suppress(KeyError):  # never exported for this partition
        metrics.CONSUMER_LAG.remove(logical, str(partition))


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "none"
