"""The worker's context: every connection and shared object its agents and views use, built
once from the settings before the app starts. Nothing connects here: the pool opens on first use
inside the running loop, the producer on its first message."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from edge.kafka import KafkaConnection
from edge.producer import DeliveringProducer
from edge.settings import TopicNames
from schemas.base import ModelFamily
from schemas.codec import Codec
from schemas.dead_letter import DeadLettered
from streams.health import Reachability
from streams.models import ModelFollower, ModelHolder, ModelLoader
from streams.policy import PolicyConfig
from streams.services.quality import QualityMonitor
from streams.services.scoring import Scorer
from streams.settings import StreamsSettings
from streams.signals import PolicySignal, SignalKind
from streams.statement_history import StatementHistory


class WorkerProducer(DeliveringProducer):
    """The worker's one producer for everything it writes (scores, requests, signals, dead
    letters): a batch is handed over in one go, and returns once the broker has all of it."""

    def __init__(self, kafka: KafkaConnection) -> None:
        super().__init__(
            kafka,
            **{
                "compression.type": "lz4",
                # The same key→partition mapping as Faust's (Java's murmur2): a family's policy
                # signals land on the partition whose table changelog holds that family.
                "partitioner": "murmur2_random",
                # Dead letters of near-limit messages exceed the 1 MiB default (see ensure_topics).
                "message.max.bytes": 16 * 1024 * 1024,
                # A batch Kafka has not taken within a minute fails, and is handled again.
                "message.timeout.ms": 60_000,
            },
        )


class Database:
    """The worker's PostgreSQL pool, opened on first use inside the running loop."""

    def __init__(self, settings: StreamsSettings) -> None:
        self._settings = settings
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._settings.database_url.get_secret_value(),
                        min_size=1,
                        max_size=self._settings.db_pool_size,
                        timeout=10,
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


@dataclass(frozen=True)
class WorkerContext:
    """What the worker's agents and views share; `build_context` makes one from settings."""

    settings: StreamsSettings
    codec: Codec
    policy: PolicyConfig
    database: Database
    producer: WorkerProducer
    holder: ModelHolder
    loader: ModelLoader
    follower: ModelFollower
    scorer: Scorer
    reachability: Reachability
    quality: QualityMonitor
    """The champion's drift and performance figures, read at most once per refresh."""

    @property
    def topics(self) -> TopicNames:
        return self.settings.topics

    async def pool(self) -> asyncpg.Pool:
        return await self.database.pool()

    async def publish(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Write `messages` (key, value) to `topic`; returns once the broker has them all."""
        if messages:
            await self.producer.send_all(topic, messages)

    async def signal(self, family: ModelFamily, kind: SignalKind, **fields: Any) -> None:
        """Wake the policy agent that owns `family` (signals are keyed by family)."""
        message = PolicySignal(kind=kind, family=family, sent_at=datetime.now(UTC), **fields)
        await self.publish(self.topics.policy_signals, [(family.value.encode(), message.encode())])

    async def dead_letter(self, letters: Sequence[DeadLettered]) -> None:
        """Set `letters` aside in the dead-letter topic."""
        await self.publish(
            self.topics.dead_letter,
            [(letter.partition_key(), self.codec.encode(letter)) for letter in letters],
        )


def build_context(settings: StreamsSettings) -> WorkerContext:
    """Every shared object of a worker, wired from `settings`; nothing connects yet."""
    codec = Codec(settings.codec_limits())
    topics = settings.topics
    database = Database(settings)
    holder = ModelHolder()
    loader = ModelLoader(holder, database.pool)
    policy = settings.policy()
    return WorkerContext(
        settings=settings,
        codec=codec,
        policy=policy,
        database=database,
        producer=WorkerProducer(settings.kafka),
        holder=holder,
        loader=loader,
        follower=ModelFollower(settings.kafka, topics.model_updated, codec, loader),
        scorer=Scorer(
            holder,
            database.pool,
            approval_limit=settings.approval_limit,
            history_days=settings.expense_history_days,
            statements=(
                StatementHistory(
                    settings.statement_history_customers, settings.statement_history_statements
                )
                if settings.statement_history_customers
                else None
            ),
        ),
        reachability=Reachability(database.pool, settings.kafka),
        quality=QualityMonitor(policy.quality, database.pool),
    )
