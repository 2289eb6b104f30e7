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
from confluent_kafka import KafkaError, KafkaException, Producer

from edge.logs import kafka_logger
from schemas.base import ModelFamily
from schemas.codec import Codec
from schemas.dead_letter import DeadLettered
from schemas.limits import CodecLimits
from streams.health import Reachability
from streams.models import ModelFollower, ModelHolder, ModelLoader
from streams.policy import PolicyConfig
from streams.scorers import Scorer
from streams.settings import StreamsSettings, TopicNames
from streams.signals import PolicySignal, SignalKind


class BulkProducer:
    """A librdkafka producer for everything the worker writes (scores, requests, signals, dead
    letters): a batch is handed to librdkafka in one go and the call returns once the broker has
    acknowledged all of it, or raises what it refused."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 5,
                "enable.idempotence": True,
                "compression.type": "lz4",
                # The same key→partition mapping as Faust's (Java's murmur2): a family's policy
                # signals land on the partition whose table changelog holds that family.
                "partitioner": "murmur2_random",
                "logger": kafka_logger(),
                # Dead letters of near-limit messages exceed the 1 MiB default (see ensure_topics).
                "message.max.bytes": 16 * 1024 * 1024,
            }
        )
        self._lock = asyncio.Lock()

    async def send_all(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _message: object) -> None:
            if err is not None:
                failures.append(str(err))

        def produce_and_flush() -> int:
            for key, value in messages:
                while True:
                    try:
                        self._producer.produce(topic, value, key, on_delivery=delivered)
                        break
                    except BufferError:
                        self._producer.poll(0.05)
            return int(self._producer.flush(60))

        async with self._lock:
            left = await asyncio.to_thread(produce_and_flush)
        if left or failures:
            raise KafkaException(f"{left} undelivered, errors: {failures[:3]}")

    def close(self) -> None:
        self._producer.flush(30)


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
    topics: TopicNames
    codec: Codec
    policy: PolicyConfig
    database: Database
    producer: BulkProducer
    holder: ModelHolder
    loader: ModelLoader
    follower: ModelFollower
    scorer: Scorer
    reachability: Reachability

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
    codec = Codec(
        CodecLimits(
            max_payload_bytes=settings.max_payload_bytes,
            max_amount=settings.max_amount,
            max_string_length=settings.max_string_length,
        )
    )
    topics = settings.topics()
    database = Database(settings)
    holder = ModelHolder()
    loader = ModelLoader(holder, database.pool)
    return WorkerContext(
        settings=settings,
        topics=topics,
        codec=codec,
        policy=settings.policy(),
        database=database,
        producer=BulkProducer(settings.kafka_bootstrap),
        holder=holder,
        loader=loader,
        follower=ModelFollower(settings.kafka_bootstrap, topics.model_updated, codec, loader),
        scorer=Scorer(
            holder,
            database.pool,
            context_lines=settings.score_context_lines,
            context_refresh_s=settings.score_context_refresh_s,
            approval_limit=settings.approval_limit,
        ),
        reachability=Reachability(database.pool, settings.kafka_bootstrap),
    )
