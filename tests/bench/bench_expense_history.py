"""Expense history costs: windowed features over a million lines (the trainer), and one scoring
batch's history read from PostgreSQL plus its features (the live scorer)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pandas as pd

from schemas.features import DEFAULT_HISTORY_DAYS, EXPENSE_COLUMNS, expense_features
from streams.services.scoring import expense_features_of
from tests.bench.harness import BenchContext, BenchResult, Figure

US_PER_DAY = 86_400_000_000
START_US = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
CATEGORIES = np.array(["travel", "meals", "lodging", "office", "fuel", "phone", "training", "misc"])
LINES_PER_SHEET = 7
BATCH_LINES = 500


def synthetic_lines(lines: int, days: int, seed: int = 3) -> pd.DataFrame:
    """`lines` expense lines over `days` days: ~7 per sheet, 500 per employee, merchants as
    popular as a Zipf law says, 3 % of receipts used again, 5 % missing."""
    rng = np.random.default_rng(seed)
    sheets = max(lines // LINES_PER_SHEET, 1)
    sheet = np.sort(rng.integers(0, sheets, lines))
    sheet_time = START_US + np.sort(rng.integers(0, days * US_PER_DAY, sheets))
    employee_of_sheet = rng.integers(0, max(lines // 500, 1), sheets)
    submitted = pd.to_datetime(sheet_time[sheet], unit="us", utc=True)
    receipt_number = np.arange(lines)
    reused = rng.random(lines) < 0.03
    receipt_number[reused] = (rng.random(reused.sum()) * np.flatnonzero(reused)).astype(np.int64)
    receipts = pd.Series("r" + pd.Series(receipt_number).astype(str), dtype=object)
    receipts[rng.random(lines) < 0.05] = None
    return pd.DataFrame(
        {
            "expense_id": "x" + pd.Series(np.arange(lines)).astype(str),
            "sheet_id": "s" + pd.Series(sheet).astype(str),
            "employee_id": "e" + pd.Series(employee_of_sheet[sheet]).astype(str),
            "amount": np.round(rng.lognormal(3.5, 1.0, lines), 2),
            "category": CATEGORIES[rng.integers(0, len(CATEGORIES), lines)],
            "merchant": "m" + pd.Series(np.minimum(rng.zipf(1.5, lines), 3000)).astype(str),
            "expense_date": (submitted - pd.to_timedelta(rng.integers(0, 10, lines), unit="D"))
            .tz_localize(None)
            .normalize()
            .date,
            "receipt_ref": receipts,
            "submitted_at": submitted,
        }
    ).loc[:, list(EXPENSE_COLUMNS)]


def bench_expense_features_1m(ctx: BenchContext) -> BenchResult:
    """What the trainer spends building expense features for a million lines over two years."""
    lines = synthetic_lines(1_000_000, days=730)
    runs = []
    for _ in range(3):
        began = time.perf_counter()
        expense_features(lines, history_days=DEFAULT_HISTORY_DAYS)
        runs.append(time.perf_counter() - began)
    yield Figure("expense_features_1m_lines_seconds", statistics.median(runs), "s")


async def _store(dsn: str, lines: pd.DataFrame) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        first = lines.drop_duplicates("sheet_id")
        counts = lines.groupby("sheet_id", sort=False).size()
        await conn.copy_records_to_table(
            "sheets",
            columns=[
                "sheet_id",
                "employee_id",
                "submitted_at",
                "line_count",
                "event_id",
                "occurred_at",
            ],
            records=[
                (s, e, t.to_pydatetime(), int(counts[s]), uuid.uuid4(), t.to_pydatetime())
                for s, e, t in zip(
                    first["sheet_id"], first["employee_id"], first["submitted_at"], strict=True
                )
            ],
        )
        await conn.copy_records_to_table(
            "expenses",
            columns=[*EXPENSE_COLUMNS, "currency"],
            records=[
                (*row[:8], row[8].to_pydatetime(), "EUR")
                for row in lines.itertuples(index=False, name=None)
            ],
        )
        await conn.execute("VACUUM ANALYZE expenses")
    finally:
        await conn.close()


async def _time_batches(dsn: str, batches: list[pd.DataFrame]) -> list[float]:
    conn = await asyncpg.connect(dsn)
    try:
        seconds = []
        for batch in batches:
            began = time.perf_counter()
            await expense_features_of(
                conn, batch, approval_limit=500.0, history_days=DEFAULT_HISTORY_DAYS
            )
            seconds.append(time.perf_counter() - began)
        return seconds
    finally:
        await conn.close()


def bench_scoring_expense_history(ctx: BenchContext) -> Iterator[Figure]:
    """A 500-line batch's features with its history read from a year of 200,000 stored lines."""
    lines = synthetic_lines(200_000, days=365)
    # The newest lines make the batches, as the live scorer meets them (stored, then scored).
    batches = [
        lines.iloc[len(lines) - (k + 1) * BATCH_LINES : len(lines) - k * BATCH_LINES]
        .reset_index(drop=True)
        .copy()
        for k in range(10)
    ]
    with ctx.database("history") as dsn:
        asyncio.run(_store(dsn, lines))
        asyncio.run(_time_batches(dsn, batches[:2]))  # warm the caches
        seconds = asyncio.run(_time_batches(dsn, batches))
    median = statistics.median(seconds)
    yield Figure("scoring_fraud_history_batch_ms", median * 1000, "ms")
    yield Figure("scoring_fraud_history_lines_per_s", BATCH_LINES / median, "lines/s")
