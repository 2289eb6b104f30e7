"""Trainer benchmarks: delinquency training wall time (seed size, 100k, 1M samples), load rates."""

from __future__ import annotations

import asyncio
import importlib.util
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pandas as pd

from edge.migrations import migrate
from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainReason, RetrainRequested
from schemas.training_outcome import OutcomeStatus
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import frames, world
from trainer import datasets
from trainer.service import Trainer
from trainer.settings import TrainerSettings

LABELLED_PER_CUSTOMER = 9  # 12 statements, the last 3 wait for their horizon


@asynccontextmanager
async def _database(dsn: str) -> AsyncIterator[str]:
    name = f"bench_trainer_{uuid.uuid4().hex[:8]}"
    head = dsn.rpartition("/")[0]
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = f"{head}/{name}"
    try:
        await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _request(cutoff: datetime) -> RetrainRequested:
    return RetrainRequested(
        occurred_at=datetime.now(UTC),
        request_id=uuid.uuid4(),
        family=ModelFamily.DELINQUENCY,
        reason=RetrainReason.MANUAL,
        reason_text="bench",
        counters={},
        data_cutoff=cutoff,
        force=True,
        requested_by="bench",
    )


async def _train_once(dsn: str, customers: int, max_customers: int) -> list[Figure]:
    sim = frames(world(seed=21, customers=customers, sheets=60))
    cutoff = datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)
    figures: list[Figure] = []
    async with _database(dsn) as url:
        await seed(url, sim)
        settings = TrainerSettings(database_url=url, max_customers=max_customers)  # type: ignore[arg-type]
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            with ThreadPoolExecutor(max_workers=1) as executor:
                trainer = Trainer(settings, pool, executor)
                began = time.perf_counter()
                result = await trainer.handle(_request(cutoff))
                wall = time.perf_counter() - began
        finally:
            await pool.close()
    assert result.status is OutcomeStatus.PROMOTED, result.outcome.reason
    assert result.detail is not None
    samples = int(result.detail.training_set.summary["observations"])
    label = "seed" if max_customers else ("1m" if samples >= 500_000 else "100k")
    figures.append(Figure(f"trainer_delinquency_{label}_wall", wall, "s"))
    figures.append(Figure(f"trainer_delinquency_{label}_fit", result.detail.fit_seconds, "s"))
    figures.append(Figure(f"trainer_delinquency_{label}_samples", samples, "rows"))
    figures.append(Figure(f"trainer_delinquency_{label}_auc", result.outcome.metrics["auc"], "auc"))
    return figures


def bench_trainer_delinquency_seed_size(ctx: BenchContext) -> BenchResult:
    """200 customers (~1,450 labelled statements): the seed took 245 s."""
    yield from asyncio.run(_train_once(ctx.dsn, customers=1000, max_customers=200))


def bench_trainer_delinquency_100k(ctx: BenchContext) -> BenchResult:
    yield from asyncio.run(
        _train_once(ctx.dsn, customers=100_000 // LABELLED_PER_CUSTOMER + 1, max_customers=0)
    )


def bench_trainer_delinquency_1m(ctx: BenchContext) -> BenchResult:
    yield from asyncio.run(
        _train_once(ctx.dsn, customers=1_000_000 // LABELLED_PER_CUSTOMER + 1, max_customers=0)
    )


_QUERY = """
    SELECT statement_id, customer_id, statement_date, balance::float8 AS balance,
           credit_limit::float8 AS credit_limit, payment_amount::float8 AS payment_amount,
           minimum_due::float8 AS minimum_due, days_past_due
    FROM customer_activity
"""


async def _load_rates(dsn: str) -> list[Figure]:
    sim = frames(world(seed=22, customers=25_000, sheets=10))
    figures: list[Figure] = []
    async with _database(dsn) as url:
        await seed(url, sim)
        conn = await asyncpg.connect(url)
        try:
            began = time.perf_counter()
            copied = await datasets.copy_frame(conn, _QUERY)
            copy_seconds = time.perf_counter() - began
            began = time.perf_counter()
            records = await conn.fetch(_QUERY)
            fetched = pd.DataFrame.from_records(
                [tuple(r) for r in records], columns=list(records[0].keys())
            )
            fetch_seconds = time.perf_counter() - began
        finally:
            await conn.close()
        rows = copied.rows
        assert len(fetched) == rows
        copy_rate = rows / copy_seconds
        figures.append(Figure("trainer_load_asyncpg_copy_rows_per_s", copy_rate, "rows/s"))
        figures.append(
            Figure("trainer_load_asyncpg_fetch_records_rows_per_s", rows / fetch_seconds, "rows/s")
        )
        read_sql = _read_sql_seconds(url)
        if read_sql is not None:
            figures.append(
                Figure("trainer_load_pandas_read_sql_rows_per_s", rows / read_sql, "rows/s")
            )
            figures.append(
                Figure("trainer_load_copy_vs_read_sql_ratio", read_sql / copy_seconds, "x")
            )
        else:
            print("# pandas.read_sql not measured: neither SQLAlchemy nor psycopg is installed")
        figures.append(
            Figure("trainer_load_copy_vs_fetch_ratio", fetch_seconds / copy_seconds, "x")
        )
    return figures


def _read_sql_seconds(url: str) -> float | None:
    """pandas.read_sql on the same query, through whichever PostgreSQL driver is installed."""
    if importlib.util.find_spec("sqlalchemy") is not None:
        import sqlalchemy

        driver = "psycopg" if importlib.util.find_spec("psycopg") else "psycopg2"
        engine = sqlalchemy.create_engine(url.replace("postgresql://", f"postgresql+{driver}://"))
        began = time.perf_counter()
        with engine.connect() as connection:
            pd.read_sql(sqlalchemy.text(_QUERY), connection)
        return time.perf_counter() - began
    return None


def bench_trainer_load_rates(ctx: BenchContext) -> Iterator[Figure]:
    """Rows/s of the trainer's COPY → pandas load next to other ways, on one table, one run."""
    yield from asyncio.run(_load_rates(ctx.dsn))
