"""The sink's one round trip per table: `unnest` of array parameters (what the sink does) against
COPY into a temporary table + `INSERT … ON CONFLICT DO NOTHING` (three round trips in a
transaction), at the batch sizes the worker uses, for the two tables the mixed load writes most:
statements, and statement scores with their feature vectors.

Each variant stores fresh rows into the same migrated database, alternating, several rounds; the
figure is the median milliseconds per batch and COPY's time over unnest's (below 1: COPY wins).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_scored import CustomerScored
from schemas.features import DELINQUENCY_FEATURES
from streams.store.scores import LIVE, store_customer_scores
from streams.store.sink import store_activity
from tests.bench.harness import BenchContext, BenchResult, Figure

SIZES = (500, 1000, 2000)
ROUNDS = 7

_ACTIVITY_COLUMNS = (
    "statement_id",
    "customer_id",
    "statement_date",
    "balance",
    "credit_limit",
    "payment_amount",
    "minimum_due",
    "purchase_amount",
    "cash_advance_amount",
    "days_past_due",
    "event_id",
    "occurred_at",
)
_SCORE_COLUMNS = (
    "statement_id",
    "customer_id",
    "model_version",
    "scoring_run",
    "delinquency_probability",
    "is_flagged",
    "scored_at",
    "features",
)


def _statements(first: int, count: int) -> list[CustomerActivityRecorded]:
    day = date(2025, 6, 28)
    return [
        CustomerActivityRecorded(
            occurred_at=datetime(2025, 6, 28, tzinfo=UTC) + timedelta(seconds=n),
            statement_id=f"b-{n}",
            customer_id=f"c-{n % 5000}",
            statement_date=day,
            balance=Decimal(n % 500_000) / 100,
            credit_limit=Decimal(3000),
            payment_amount=Decimal(n % 30_000) / 100,
            minimum_due=Decimal(n % 20_000) / 100,
            purchase_amount=Decimal(n % 90_000) / 100,
            cash_advance_amount=Decimal(0),
            days_past_due=n % 90,
        )
        for n in range(first, first + count)
    ]


def _scores(statements: Sequence[CustomerActivityRecorded]) -> list[CustomerScored]:
    now = datetime.now(UTC)
    return [
        CustomerScored(
            occurred_at=now,
            customer_id=s.customer_id,
            statement_id=s.statement_id,
            model_version="bench",
            delinquency_probability=0.25,
            is_flagged=False,
            scored_at=now,
        )
        for s in statements
    ]


def _vectors(count: int) -> list[list[float]]:
    width = len(DELINQUENCY_FEATURES)
    return [[(n * 7 + i) / 13.0 for i in range(width)] for n in range(count)]


async def _copy_activity(
    conn: asyncpg.Connection, statements: Sequence[CustomerActivityRecorded]
) -> int:
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS activity_in "
            "(LIKE customer_activity INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(
            "activity_in",
            columns=_ACTIVITY_COLUMNS,
            records=[
                (
                    a.statement_id,
                    a.customer_id,
                    a.statement_date,
                    a.balance,
                    a.credit_limit,
                    a.payment_amount,
                    a.minimum_due,
                    a.purchase_amount,
                    a.cash_advance_amount,
                    a.days_past_due,
                    a.event_id,
                    a.occurred_at,
                )
                for a in statements
            ],
        )
        columns = ", ".join(_ACTIVITY_COLUMNS)
        rows = await conn.fetch(
            f"INSERT INTO customer_activity ({columns}, ingested_at) "
            f"SELECT {columns}, clock_timestamp() FROM activity_in "
            "ON CONFLICT DO NOTHING RETURNING statement_id"
        )
    return len(rows)


async def _copy_scores(
    conn: asyncpg.Connection, scored: Sequence[CustomerScored], vectors: Sequence[Sequence[float]]
) -> None:
    async with conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS scores_in "
            "(LIKE customer_scores INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        await conn.copy_records_to_table(
            "scores_in",
            columns=_SCORE_COLUMNS,
            records=[
                (
                    s.statement_id,
                    s.customer_id,
                    s.model_version or "",
                    s.scoring_run or LIVE,
                    s.delinquency_probability,
                    s.is_flagged,
                    s.scored_at,
                    list(vector),
                )
                for s, vector in zip(scored, vectors, strict=True)
            ],
        )
        columns = ", ".join(_SCORE_COLUMNS)
        await conn.execute(
            f"INSERT INTO customer_scores ({columns}) SELECT {columns} "
            "FROM scores_in ON CONFLICT DO NOTHING"
        )


async def _timed(run: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await run()
    return time.perf_counter() - began


async def _measure(url: str) -> list[Figure]:
    conn = await asyncpg.connect(url, timeout=10)
    figures: list[Figure] = []
    first = 0
    try:
        for size in SIZES:
            times: dict[str, list[float]] = {
                "unnest": [],
                "copy": [],
                "scores_unnest": [],
                "scores_copy": [],
            }
            for _ in range(ROUNDS):
                for variant in ("unnest", "copy"):
                    statements = _statements(first, size)
                    first += size
                    scored, vectors = _scores(statements), _vectors(size)
                    if variant == "unnest":
                        activity = await _timed(lambda s=statements: store_activity(conn, s))
                        scores = await _timed(
                            lambda c=scored, v=vectors: store_customer_scores(conn, c, v)
                        )
                    else:
                        activity = await _timed(lambda s=statements: _copy_activity(conn, s))
                        scores = await _timed(lambda c=scored, v=vectors: _copy_scores(conn, c, v))
                    times[variant].append(activity)
                    times[f"scores_{variant}"].append(scores)
            median = {name: statistics.median(values) for name, values in times.items()}
            for table, unnest, copy in (
                ("activity", "unnest", "copy"),
                ("customer_scores", "scores_unnest", "scores_copy"),
            ):
                figures.append(Figure(f"sink_{table}_{size}_unnest_ms", median[unnest] * 1e3, "ms"))
                figures.append(Figure(f"sink_{table}_{size}_copy_ms", median[copy] * 1e3, "ms"))
                figures.append(
                    Figure(
                        f"sink_{table}_{size}_copy_vs_unnest", median[copy] / median[unnest], "x"
                    )
                )
    finally:
        await conn.close()
    return figures


def bench_sink_unnest_vs_copy(ctx: BenchContext) -> BenchResult:
    """Milliseconds per batch of 500-2000 statements (and their scores), unnest vs COPY."""
    with ctx.database("sink") as url:
        yield from asyncio.run(_measure(url))
