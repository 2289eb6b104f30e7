"""Trainer benchmarks: delinquency training wall time (seed size, 100k, 1M samples) split into
load / features+labels / fit / refit, and load rates; each next to the way it was done before
(COPY as CSV parsed by pandas, features sorted by string keys) on the same data in the same run."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import pandas as pd

from edge.migrations import migrate
from schemas.base import ModelFamily
from schemas.features import labelled_delinquency_features
from schemas.retrain_requested import RetrainReason, RetrainRequested
from schemas.training_outcome import OutcomeStatus
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.integration.trainer.seed import seed
from tests.unit.trainer import features_reference
from tests.unit.trainer.factories import frames, world
from trainer import datasets
from trainer.service import Trainer, TrainingDetail
from trainer.settings import TrainerSettings

T = TypeVar("T")
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


_PROFILE_SELECT = """
    SELECT c.customer_id, c.age, c.annual_income::float8 AS annual_income,
           c.tenure_months, c.employment_status
    FROM customers c
"""
_PROFILE_TYPES = {
    "customer_id": "str",
    "age": "float64",
    "annual_income": "float64",
    "tenure_months": "float64",
    "employment_status": "str",
}


async def csv_copy_frame(
    conn: asyncpg.Connection, query: str, dtypes: dict[str, str] | None = None
) -> pd.DataFrame:
    """The trainer's load before binary COPY: COPY (…) TO STDOUT as CSV, parsed by pandas."""
    buffer = io.BytesIO()
    await conn.copy_from_query(query, output=buffer, format="csv", header=True)
    buffer.seek(0)
    return pd.read_csv(
        buffer, dtype=dtypes or {}, engine="c", true_values=["t"], false_values=["f"]
    )


async def _previous_way(url: str, cutoff: datetime, settings: TrainerSettings) -> list[Figure]:
    """The same reads and features+labels as the trainer's, the way they were done before, on
    the same rows: the before side of the split (reads only: the selection is not timed)."""
    at = datasets.at_literal(cutoff)
    activity_query = (
        f"{datasets._ACTIVITY_SELECT} WHERE a.statement_date <= ({at} AT TIME ZONE 'UTC')::date "
        f"AND a.occurred_at <= {at} AND {datasets._stored('a', settings, at)}"
    )
    profile_query = (
        f"{_PROFILE_SELECT} WHERE c.created_at <= {at} AND {datasets._stored('c', settings, at)}"
    )
    candidate_query = f"""
        SELECT c.customer_id FROM customers c
        WHERE c.created_at <= {at} AND {datasets._stored("c", settings, at)} AND EXISTS (
            SELECT 1 FROM customer_activity a WHERE a.customer_id = c.customer_id
              AND a.statement_date <= ({at} AT TIME ZONE 'UTC')::date
                  - {settings.delinquency_horizon_days}
              AND a.occurred_at <= {at} AND {datasets._stored("a", settings, at)})
    """
    source = datasets.Source(url)
    conn = await asyncpg.connect(url)
    csv_seconds, arrow_seconds = float("inf"), float("inf")
    try:
        for _ in range(2):  # the ways take turns; the faster time of each counts
            # Before: candidates, statements and profiles as CSV, one after the other.
            began = time.perf_counter()
            await csv_copy_frame(conn, candidate_query)
            activity = await csv_copy_frame(conn, activity_query, datasets.ACTIVITY_TYPES)
            profiles = await csv_copy_frame(conn, profile_query, _PROFILE_TYPES)
            csv_seconds = min(csv_seconds, time.perf_counter() - began)
            # After: the trainer's two queries (statements in page ranges, customers) at once.
            began = time.perf_counter()
            arrow_activity, _ = await asyncio.gather(
                source.frame(
                    activity_query,
                    datasets.ACTIVITY_TYPES,
                    split=("customer_activity", "a"),
                ),
                source.frame(datasets.customers_query(at, settings), datasets.CUSTOMER_TYPES),
            )
            arrow_seconds = min(arrow_seconds, time.perf_counter() - began)
    finally:
        await conn.close()
    pd.testing.assert_frame_equal(arrow_activity.frame, activity)
    datasets.to_date(activity, "statement_date")
    cutoff_day = datasets.day_number(cutoff)

    def built(by_strings: bool) -> tuple[float, pd.DataFrame]:
        began = time.perf_counter()
        if by_strings:
            features = features_reference.delinquency_features(activity, profiles)
            features_reference.delinquency_labels(activity, cutoff_day=cutoff_day)
        else:
            features = labelled_delinquency_features(
                activity, profiles, cutoff_day=cutoff_day
            ).features
        return time.perf_counter() - began, features

    reference_seconds, reference = built(by_strings=True)
    vectorised_seconds, vectorised = built(by_strings=False)
    pd.testing.assert_frame_equal(vectorised, reference)
    return [
        Figure("trainer_delinquency_1m_load_csv_before", csv_seconds, "s"),
        Figure("trainer_delinquency_1m_load_arrow_after", arrow_seconds, "s"),
        Figure("trainer_delinquency_1m_load_arrow_vs_csv_ratio", csv_seconds / arrow_seconds, "x"),
        Figure("trainer_delinquency_1m_features_labels_before", reference_seconds, "s"),
        Figure("trainer_delinquency_1m_features_labels_after", vectorised_seconds, "s"),
        Figure(
            "trainer_delinquency_1m_features_labels_ratio",
            reference_seconds / vectorised_seconds,
            "x",
        ),
    ]


def wall_and_split(name: str, wall: float, detail: TrainingDetail) -> list[Figure]:
    """A training's wall time and its split: load, features+labels, fit, refit and the rest."""
    split = {
        "load": detail.load_seconds,
        "features_labels": detail.build_seconds,
        "fit": detail.fit_seconds,
        "refit": detail.refit_seconds,
    }
    split["other"] = wall - sum(split.values())
    return [Figure(f"{name}_wall", wall, "s")] + [
        Figure(f"{name}_{k}", v, "s") for k, v in split.items()
    ]


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
        detail = result.detail
        assert detail is not None
        samples = int(detail.training_set.summary["observations"])
        label = "seed" if max_customers else ("1m" if samples >= 500_000 else "100k")
        figures += wall_and_split(f"trainer_delinquency_{label}", wall, detail)
        figures.append(Figure(f"trainer_delinquency_{label}_samples", samples, "rows"))
        figures.append(
            Figure(f"trainer_delinquency_{label}_auc", result.outcome.metrics["auc"], "auc")
        )
        if label == "1m":
            figures += await _previous_way(url, cutoff, settings)
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
    FROM customer_activity a WHERE TRUE
"""
ROUNDS = 3
"""Each way is timed this many times, the ways taking turns; the fastest time counts."""


async def _load_rates(dsn: str) -> list[Figure]:
    sim = frames(world(seed=22, customers=25_000, sheets=10))
    figures: list[Figure] = []
    async with _database(dsn) as url:
        await seed(url, sim)
        source = datasets.Source(url)
        conn = await asyncpg.connect(url)
        try:
            await conn.fetchval("SELECT count(*) FROM customer_activity")  # a warm cache for all
            seconds: dict[str, float] = {}

            async def timed(way: str, work: Awaitable[T]) -> T:
                began = time.perf_counter()
                result = await work
                took = time.perf_counter() - began
                seconds[way] = min(seconds.get(way, took), took)
                return result

            stalls: list[float] = []
            for _ in range(ROUNDS):
                copied = await timed("csv", csv_copy_frame(conn, _QUERY))
                arrow = await timed("arrow", source.frame(_QUERY))
                split, stall_ms = await timed(
                    "arrow_parts",
                    _with_loop_stall(source.frame(_QUERY, split=("customer_activity", "a"))),
                )
                stalls.append(stall_ms)
            pd.testing.assert_frame_equal(arrow.frame, split.frame)
            copy_seconds, arrow_seconds = seconds["csv"], seconds["arrow"]
            began = time.perf_counter()
            records = await conn.fetch(_QUERY)
            fetched = pd.DataFrame.from_records(
                [tuple(r) for r in records], columns=list(records[0].keys())
            )
            fetch_seconds = time.perf_counter() - began
        finally:
            await conn.close()
        figures.append(
            Figure(
                "trainer_load_adbc_parts_rows_per_s", arrow.rows / seconds["arrow_parts"], "rows/s"
            )
        )
        figures.append(
            Figure(
                "trainer_load_parts_vs_csv_copy_ratio", copy_seconds / seconds["arrow_parts"], "x"
            )
        )
        figures.append(Figure("trainer_load_adbc_loop_stall_max", max(stalls), "ms"))
        # The same ticker over a loop with nothing else to do: the machine's own share.
        _, idle_ms = await _with_loop_stall(asyncio.sleep(seconds["arrow_parts"]))
        figures.append(Figure("trainer_load_idle_loop_stall_max", idle_ms, "ms"))
        rows = len(copied)
        assert len(fetched) == rows == arrow.rows
        figures.append(Figure("trainer_load_adbc_arrow_rows_per_s", rows / arrow_seconds, "rows/s"))
        figures.append(
            Figure("trainer_load_arrow_vs_csv_copy_ratio", copy_seconds / arrow_seconds, "x")
        )
        copy_rate = rows / copy_seconds
        figures.append(Figure("trainer_load_asyncpg_copy_csv_rows_per_s", copy_rate, "rows/s"))
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


async def _with_loop_stall(work: Awaitable[T]) -> tuple[T, float]:
    """`work`'s result and the longest the event loop went without running a 1 ms ticker
    meanwhile (beyond its own sleep), in ms: what a blocking driver call would cost the loop."""
    done = False
    longest = 0.0

    async def tick() -> None:
        nonlocal longest
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            longest = max(longest, time.perf_counter() - before - 0.001)

    ticker = asyncio.create_task(tick())
    try:
        result = await work
    finally:
        done = True
        await ticker
    return result, longest * 1000


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
    """Rows/s of the trainer's binary COPY → Arrow → pandas load next to other ways (COPY as
    CSV, asyncpg records, pandas.read_sql), on one table, one run."""
    yield from asyncio.run(_load_rates(ctx.dsn))
