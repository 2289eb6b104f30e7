"""Ingestion: decode a batch of raw upstream messages, store the good ones idempotently and turn
every bad one into a dead letter. Knows no Kafka client and no Faust: the upstream consumer
(streams.upstream), replay and tests hand it batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from edge.dead_letters import RawMessage, dead_letter_from
from edge.logs import RateLimitedLog
from edge.retry import TRANSIENT_DATABASE_ERRORS, RetryPolicy
from schemas.base import Event, ModelFamily
from schemas.codec import Codec
from schemas.dead_letter import DeadLettered
from schemas.errors import DecodeError
from schemas.topics import TOPICS
from streams import metrics
from streams.store.sink import Stored, store_activity, store_customers, store_labels, store_sheets

log = logging.getLogger(__name__)

# Which family's counters a stored event of each upstream topic moves.
FAMILY_OF_TOPIC: dict[str, ModelFamily] = {
    "expense-sheet": ModelFamily.EXPENSE_FRAUD,
    "expense-label": ModelFamily.EXPENSE_FRAUD,
    "customer-created": ModelFamily.DELINQUENCY,
    "customer-activity": ModelFamily.DELINQUENCY,
}

Store = Callable[[asyncpg.Connection, Sequence[Any]], Awaitable[Stored]]
STORES: dict[str, Store] = {
    "expense-sheet": store_sheets,
    "customer-created": store_customers,
    "customer-activity": store_activity,
    "expense-label": store_labels,
}
# The event each upstream topic carries, from the topic registry (schemas.topics).
UPSTREAM_EVENT_TYPES: dict[str, type[Event]] = {topic: TOPICS[topic].event_type for topic in STORES}


@dataclass
class IngestResult:
    """What one batch did: stored counts, dead letters to send, families whose data moved."""

    stored: Stored = field(default_factory=lambda: Stored(0, 0))
    dead_letters: list[DeadLettered] = field(default_factory=list)
    families: set[ModelFamily] = field(default_factory=set)
    # The decoded events now in PostgreSQL (new or already present), in message order.
    events: list[Event] = field(default_factory=list)
    # The message each of `events` came from.
    sources: list[RawMessage] = field(default_factory=list)


class IngestHandler:
    """Decode, store idempotently, dead-letter what cannot be decoded or stored."""

    def __init__(
        self,
        codec: Codec,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        retry_initial_s: float = 0.5,
        retry_max_s: float = 5.0,
    ) -> None:
        self.codec = codec
        self.pool = pool
        # An outage never gives the data up: storing is tried until PostgreSQL is back.
        self.retry = RetryPolicy(retry_initial_s, retry_max_s, transient=TRANSIENT_DATABASE_ERRORS)
        self._outage_log = RateLimitedLog(log, every_s=10.0)

    async def handle(self, logical_topic: str, messages: Sequence[RawMessage]) -> IngestResult:
        """Process one batch of `logical_topic` (a default topic name such as expense-sheet)."""
        result = IngestResult()
        event_type = UPSTREAM_EVENT_TYPES[logical_topic]
        decoded: list[tuple[RawMessage, Event]] = []
        for message in messages:
            metrics.EVENTS_CONSUMED.labels(logical_topic).inc()
            if message.value is None:
                letter = dead_letter_from(message, "decode", "invalid_json", "message has no value")
                result.dead_letters.append(letter)
                continue
            try:
                decoded.append((message, self.codec.decode_as(event_type, message.value)))
            except DecodeError as exc:
                result.dead_letters.append(
                    dead_letter_from(message, "decode", exc.reason.value, str(exc))
                )
        if decoded:
            began = time.perf_counter()
            stored, rejected = await self._store(logical_topic, decoded)
            metrics.SINK_BATCH_SECONDS.labels(logical_topic).observe(time.perf_counter() - began)
            result.stored = stored
            result.dead_letters.extend(rejected)
            refused = {(letter.partition, letter.offset) for letter in rejected}
            for message, event in decoded:
                if (message.partition, message.offset) not in refused:
                    result.events.append(event)
                    result.sources.append(message)
            metrics.EVENTS_STORED.labels(logical_topic, "new").inc(stored.new)
            metrics.EVENTS_STORED.labels(logical_topic, "present").inc(stored.present)
            if stored.new:
                result.families.add(FAMILY_OF_TOPIC[logical_topic])
        for letter in result.dead_letters:
            metrics.DEAD_LETTERS.labels(logical_topic, letter.stage, letter.reason).inc()
        return result

    async def _store(
        self, logical_topic: str, decoded: list[tuple[RawMessage, Event]]
    ) -> tuple[Stored, list[DeadLettered]]:
        store = STORES[logical_topic]
        events = [event for _, event in decoded]
        try:
            return await self._with_retry(logical_topic, store, events), []
        except asyncpg.PostgresError as exc:
            # The batch holds a row the database refuses (not an outage): store the events one
            # by one so only the offender is set aside.
            log.warning("batch of %s refused (%s); storing one by one", logical_topic, exc)
        total = Stored(0, 0)
        rejected: list[DeadLettered] = []
        for message, event in decoded:
            try:
                total += await self._with_retry(logical_topic, store, [event])
            except asyncpg.PostgresError as exc:
                reason = getattr(exc, "sqlstate", None) or type(exc).__name__
                rejected.append(dead_letter_from(message, "store", f"sql_{reason}", str(exc)))
        return total, rejected

    async def _with_retry(
        self, logical_topic: str, store: Store, events: Sequence[Event]
    ) -> Stored:
        async def attempt() -> Stored:
            pool = await self.pool()
            async with pool.acquire() as conn:
                return await store(conn, events)

        return await self.retry.call(
            attempt,
            f"storing {logical_topic} in PostgreSQL",
            self._outage_log,
            on_retry=lambda _exc: metrics.SINK_RETRIES.labels(logical_topic).inc(),
        )
