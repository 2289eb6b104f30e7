"""Scoring from the statements the worker keeps gives exactly what reading them from PostgreSQL
for every batch gives, on the real PostgreSQL.

Two upstream consumers (each on a database of its own) handle the same batches: one keeps each
customer's newest statements between batches (few of them, for few customers, so that older
statements are left out and customers are dropped), the other reads every batch's history from
the store. The batches bring statements late and out of order, twice, on the wrong partition,
a second event for a stored statement id, statements of customers whose profile arrives later,
a revoked partition, and a statement another writer stored first. Both must score every
statement with the same feature vector.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import numpy as np
import pytest
from confluent_kafka import TopicPartition

from edge.kafka import KafkaConnection
from retrainer.harness import create_database, drop_database
from schemas.base import Event, ModelFamily
from schemas.bundles import ModelBundle, Scores
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated, CustomerProfile
from schemas.customer_scored import CustomerScored
from schemas.dead_letter import DeadLettered
from schemas.features import DELINQUENCY_FEATURES, FloatArray
from streams.models import ModelHolder
from streams.scoring_frames import LoadedModel
from streams.services.ingest import IngestHandler
from streams.services.scoring import Scorer
from streams.statement_history import StatementHistory
from streams.store import sink
from streams.upstream import UpstreamConsumer, UpstreamOptions
from tests.conftest import Stack
from tests.factories import CODEC

ACTIVITY, CUSTOMERS = "customer-activity", "customer-created"
PARTITIONS = 4
FIRST_DAY = date(2025, 1, 28)


@dataclass(frozen=True)
class RecordingBundle(ModelBundle):
    """Keeps each feature matrix it is handed; scores its first feature (months on book)."""

    seen: list[FloatArray] = field(default_factory=list)

    def score(self, features: FloatArray) -> Scores:
        self.seen.append(features.copy())
        score = np.nan_to_num(features[:, 0]) / 10.0
        return Scores(score, score > 0.5)


@dataclass
class FakeMessage:
    """What UpstreamConsumer.handle reads of a confluent-kafka message."""

    _topic: str
    _partition: int
    _offset: int
    _key: bytes
    _value: bytes

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value

    def error(self) -> None:
        return None


def _statement(customer: int, month: int, rng: random.Random, suffix: str = "") -> Event:
    day = FIRST_DAY + timedelta(days=30 * month)
    limit = Decimal(rng.choice([1000, 3000, 5000]))
    return CustomerActivityRecorded(
        occurred_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
        statement_id=f"c{customer}-m{month:02d}{suffix}",
        customer_id=f"c{customer}",
        statement_date=day,
        balance=Decimal(rng.randint(-5_000, 500_000)) / 100,
        credit_limit=limit,
        payment_amount=Decimal(rng.randint(0, 30_000)) / 100,
        minimum_due=Decimal(rng.randint(0, 20_000)) / 100,
        purchase_amount=Decimal(rng.randint(0, 90_000)) / 100,
        cash_advance_amount=Decimal(rng.choice([0, 0, 0, 12_345])) / 100,
        days_past_due=rng.choice([0, 0, 0, 15, 31, 65]),
    )


def _customer(customer: int, rng: random.Random) -> Event:
    created = datetime(2024, 12, 1, tzinfo=UTC)
    return CustomerCreated(
        occurred_at=created,
        customer_id=f"c{customer}",
        created_at=created,
        profile=CustomerProfile(
            age=rng.randint(20, 80),
            annual_income=Decimal(rng.randint(10_000, 150_000)),
            credit_limit=Decimal(3000),
            region="north",
            product="classic",
            tenure_months=rng.randint(0, 100),
            employment_status=rng.choice(["employed", "Self-Employed", "sailor", "retired"]),
        ),
    )


Batch = list[tuple[str, int, Event]]


def _batches(seed: int, customers: int = 14, months: int = 12) -> list[Batch]:
    """Statements month by month, with every irregularity the kept history must survive."""
    rng = random.Random(seed)
    owner = {c: c % PARTITIONS for c in range(customers)}
    late_profiles = set(rng.sample(range(customers), customers // 2))
    batches: list[Batch] = [
        [
            (CUSTOMERS, owner[c], _customer(c, rng))
            for c in range(customers)
            if c not in late_profiles
        ]
    ]
    delayed: list[tuple[int, tuple[str, int, Event]]] = []
    sent: list[tuple[str, int, Event]] = []
    for month in range(months):
        batch: Batch = []
        for c in range(customers):
            item = (ACTIVITY, owner[c], _statement(c, month, rng))
            if rng.random() < 0.15:  # arrives some batches late, after newer ones
                delayed.append((month + rng.randint(1, 4), item))
            else:
                batch.append(item)
            if rng.random() < 0.1:  # a second statement on the same day
                batch.append((ACTIVITY, owner[c], _statement(c, month, rng, suffix="b")))
        batch.extend(item for due, item in delayed if due == month)
        delayed = [(due, item) for due, item in delayed if due != month]
        if sent and rng.random() < 0.5:  # redelivered
            batch.extend(rng.sample(sent, min(len(sent), 5)))
        if month == 3:  # a second event for a stored statement id, with other figures
            _, partition, first = next(i for i in sent if i[0] == ACTIVITY)
            assert isinstance(first, CustomerActivityRecorded)
            other = _statement(int(first.customer_id[1:]), 20, rng)
            assert isinstance(other, CustomerActivityRecorded)
            batch.append(
                (ACTIVITY, partition, other.model_copy(update={"statement_id": first.statement_id}))
            )
        if month == 5:  # one customer's statement on another partition
            c = rng.randrange(customers)
            batch.append((ACTIVITY, (owner[c] + 1) % PARTITIONS, _statement(c, 14, rng)))
        if month == 4:  # the late profiles arrive, in the same batch as statements of theirs
            batch.extend((CUSTOMERS, owner[c], _customer(c, rng)) for c in sorted(late_profiles))
        rng.shuffle(batch)
        batches.append(batch)
        sent.extend(batch)
    batches.append([item for _, item in delayed])
    return batches


@dataclass
class Side:
    """One upstream consumer, its database and what its model saw."""

    upstream: UpstreamConsumer
    bundle: RecordingBundle
    scored: list[CustomerScored]
    history: StatementHistory | None
    pools: list[asyncpg.Pool]
    pool: Callable[[], Awaitable[asyncpg.Pool]]

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()


def _side(url: str, history: StatementHistory | None) -> Side:
    bundle = RecordingBundle(ModelFamily.DELINQUENCY, {}, DELINQUENCY_FEATURES, 0.5)
    holder = ModelHolder()
    holder.swap(LoadedModel(ModelFamily.DELINQUENCY, "recording", bundle))
    pools: list[asyncpg.Pool] = []

    async def pool() -> asyncpg.Pool:
        if not pools:
            pools.append(await asyncpg.create_pool(url, min_size=1, max_size=2))
        return pools[0]

    scored: list[CustomerScored] = []

    async def emit_customers(events: Sequence[Any]) -> None:
        scored.extend(events)

    async def nothing(_: Any) -> None:
        return None

    async def no_letters(letters: Sequence[DeadLettered]) -> None:
        assert not letters, [(x.stage, x.reason, x.error) for x in letters]

    upstream = UpstreamConsumer(
        UpstreamOptions(
            kafka=KafkaConnection(),
            group_id="unused",
            topics={ACTIVITY: ACTIVITY, CUSTOMERS: CUSTOMERS},
        ),
        IngestHandler(CODEC, pool),
        Scorer(holder, pool, statements=history),
        no_letters,
        nothing,
        nothing,
        emit_customers,
    )
    return Side(upstream, bundle, scored, history, pools, pool)


@pytest.fixture
async def two_databases(stack: Stack) -> AsyncIterator[tuple[str, str]]:
    names = [f"retrainer_t_{stack.session_id}_h{n}_{random.randrange(10**6)}" for n in (1, 2)]
    urls = [await create_database(stack.dsn, name) for name in names]
    try:
        yield urls[0], urls[1]
    finally:
        for name in names:
            await drop_database(stack.dsn, name)


@pytest.mark.parametrize("seed", [1, 2])
async def test_kept_statements_score_exactly_as_statements_read_per_batch(
    two_databases: tuple[str, str], seed: int
) -> None:
    kept = _side(two_databases[0], StatementHistory(customers=6, keep=4))
    read = _side(two_databases[1], None)
    try:
        await _handle_both(kept, read, seed)
    finally:
        await kept.close()
        await read.close()

    assert [s.statement_id for s in kept.scored] == [s.statement_id for s in read.scored]
    assert len(kept.bundle.seen) == len(read.bundle.seen)
    for ours, theirs in zip(kept.bundle.seen, read.bundle.seen, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert [s.delinquency_probability for s in kept.scored] == [
        s.delinquency_probability for s in read.scored
    ]
    assert kept.history is not None
    assert kept.history.hits > 0
    assert kept.history.misses > 0
    stored = [await _stored_features(url) for url in two_databases]
    assert stored[0] == stored[1]


async def _handle_both(kept: Side, read: Side, seed: int) -> None:
    offsets: dict[tuple[str, int], int] = {}
    seen: set[str] = set()
    for n, batch in enumerate(_batches(seed)):
        messages = []
        for topic, partition, event in batch:
            offset = offsets.get((topic, partition), 0)
            offsets[(topic, partition)] = offset + 1
            messages.append(
                FakeMessage(topic, partition, offset, CODEC.key_of(event), CODEC.encode(event))
            )
        if n == 9:  # another writer (a replay) stores a statement before the worker sees it
            assert kept.history is not None
            first = next(
                e
                for topic, _, e in batch
                if isinstance(e, CustomerActivityRecorded)
                and e.statement_id not in seen
                and e.customer_id in kept.history
            )
            for side in (kept, read):
                pool = await side.pool()
                async with pool.acquire() as conn:
                    assert (await sink.store_activity(conn, [first])).new == 1
        for side in (kept, read):
            await side.upstream.handle(messages)  # type: ignore[arg-type]
        seen.update(e.statement_id for _, _, e in batch if isinstance(e, CustomerActivityRecorded))
        if n == 7:  # partition 1 goes to another member and comes back
            kept.upstream._on_revoke(None, [TopicPartition(ACTIVITY, 1)])  # type: ignore[arg-type]


async def _stored_features(url: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT statement_id, features FROM customer_scores ORDER BY statement_id"
        )
    finally:
        await conn.close()
    # NaN as text: NaN never equals itself.
    return [(r["statement_id"], repr(r["features"])) for r in rows]
