"""The scorer's expense features equal the trainer's, on the real PostgreSQL.

The scorer reads each batch's history from the store (lines near the window's edges, totals per
key in between); the trainer loads every line up to its cutoff. Both run schemas.features over
a window of days, so the same line must get the same values.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import numpy as np
import pandas as pd
import pytest

from schemas.base import ModelFamily
from schemas.bundles import ModelBundle, Scores
from schemas.expense_scored import ExpenseScored
from schemas.expense_sheet import ExpenseLine, ExpenseSheetSubmitted
from schemas.features import EXPENSE_FEATURES, FloatArray, expense_features
from streams.models import ModelHolder
from streams.scoring_frames import ExpenseHistoryQuery, LoadedModel, expense_frame
from streams.services.scoring import Scorer
from streams.store import sheets as sheet_store
from streams.store import sink
from trainer.datasets import Source, load_expenses
from trainer.settings import TrainerSettings

HISTORY_DAYS = 10
"""A short window keeps the data small: the stored lines span many windows."""
START = datetime(2026, 1, 1, tzinfo=UTC)
SHEETS = 700
HOURS_BETWEEN_SHEETS = 3
CATEGORIES = ("travel", "meals", "lodging", "office")


def _sheets(count: int, seed: int = 7) -> list[ExpenseSheetSubmitted]:
    """Sheets every few hours from 25 employees at 15 merchants, some receipts used twice."""
    rng = random.Random(seed)
    receipts: list[str] = []
    out = []
    for n in range(count):
        submitted = START + timedelta(hours=HOURS_BETWEEN_SHEETS * n)
        lines = []
        for i in range(rng.randint(3, 9)):
            if receipts and rng.random() < 0.05:
                receipt: str | None = rng.choice(receipts[-200:])
            elif rng.random() < 0.1:
                receipt = None
            else:
                receipt = f"r-{n}-{i}"
                receipts.append(receipt)
            lines.append(
                ExpenseLine(
                    expense_id=f"x-{n}-{i}",
                    amount=Decimal(rng.randint(100, 60_000)) / 100,
                    currency="EUR",
                    category=rng.choice(CATEGORIES),
                    merchant=f"m-{min(rng.randint(0, 20), 14)}",
                    expense_date=submitted.date() - timedelta(days=rng.randint(0, 5)),
                    description="",
                    receipt_ref=receipt,
                )
            )
        out.append(
            ExpenseSheetSubmitted(
                occurred_at=submitted,
                sheet_id=f"s-{n:04d}",
                employee_id=f"e-{rng.randint(0, 24)}",
                submitted_at=submitted,
                lines=lines,
            )
        )
    return out


@dataclass(frozen=True)
class RecordingBundle(ModelBundle):
    """Scores nothing; keeps each feature matrix the scorer hands it."""

    seen: list[FloatArray] = field(default_factory=list)

    def score(self, features: FloatArray) -> Scores:
        self.seen.append(features.copy())
        zeros = np.zeros(len(features))
        return Scores(zeros, zeros.astype(np.bool_))


@pytest.fixture
async def stored(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await sink.store_sheets(conn, _sheets(SHEETS))
    try:
        yield pool
    finally:
        await pool.close()


async def _scorer_features(pool: asyncpg.Pool, batch: list[ExpenseSheetSubmitted]) -> np.ndarray:
    """The features the live scorer scores `batch` with, in the batch's line order."""
    bundle = RecordingBundle(ModelFamily.EXPENSE_FRAUD, {}, EXPENSE_FEATURES, 0.5)
    holder = ModelHolder()
    holder.swap(LoadedModel(ModelFamily.EXPENSE_FRAUD, "recording", bundle))

    async def the_pool() -> asyncpg.Pool:
        return pool

    async def emitted(_scores: list[ExpenseScored]) -> None:
        return None

    pooled: Callable[[], Awaitable[asyncpg.Pool]] = the_pool
    scorer = Scorer(holder, pooled, approval_limit=500.0, history_days=HISTORY_DAYS)
    result = await scorer.score_sheets(batch, emitted)
    assert result.scored == sum(len(s.lines) for s in batch)
    [matrix] = bundle.seen
    return matrix


async def _trainer_features(url: str) -> pd.DataFrame:
    """Every stored line's features as the trainer computes them for a training set."""
    settings = TrainerSettings(expense_history_days=HISTORY_DAYS)
    data = await load_expenses(Source(url), datetime.now(UTC), settings)
    features = expense_features(
        data.expenses,
        approval_limit=settings.approval_limit,
        history_days=settings.expense_history_days,
    )
    return features.set_index("expense_id").loc[:, list(EXPENSE_FEATURES)]


@pytest.mark.parametrize(
    "batch_sheets",
    [40, 120],
    ids=["batch-within-the-window", "batch-longer-than-the-window"],
)
async def test_the_scorers_features_equal_the_trainers_for_every_line(
    stored: asyncpg.Pool, fresh_database_url: str, batch_sheets: int
) -> None:
    sheets = _sheets(SHEETS)
    batch = sheets[-batch_sheets:]
    lines = expense_frame(batch)
    span = ExpenseHistoryQuery.of(lines, HISTORY_DAYS).span
    # The first case reads the middle of the window as totals, the second only as lines.
    assert (span.summary_until_us > span.summary_since_us) == (batch_sheets == 40)

    scored = await _scorer_features(stored, batch)
    trained = (await _trainer_features(fresh_database_url)).loc[lines["expense_id"]].to_numpy()
    for column, name in enumerate(EXPENSE_FEATURES):
        np.testing.assert_allclose(
            scored[:, column],
            trained[:, column],
            rtol=1e-9,
            atol=1e-9,
            equal_nan=True,
            err_msg=name,
        )


async def test_a_history_cut_at_a_line_count_differs_from_the_trainers(
    stored: asyncpg.Pool, fresh_database_url: str
) -> None:
    """What the comparison above catches: the old scorer kept only the newest lines."""
    sheets = _sheets(SHEETS)
    batch = expense_frame(sheets[-40:])
    async with stored.acquire() as conn:
        rows = await conn.fetch(
            sheet_store.EXPENSE_LINES
            + "WHERE NOT expense_id = ANY($1) ORDER BY submitted_at DESC LIMIT 300",
            list(batch["expense_id"]),
        )
    newest = pd.DataFrame([tuple(r) for r in rows], columns=list(batch.columns))
    capped = expense_features(pd.concat([newest, batch]), history_days=HISTORY_DAYS)
    capped_matrix = capped.set_index("expense_id").loc[batch["expense_id"], list(EXPENSE_FEATURES)]
    trained = (await _trainer_features(fresh_database_url)).loc[batch["expense_id"]]
    same = np.isclose(
        capped_matrix.to_numpy(), trained.to_numpy(), rtol=1e-9, atol=1e-9, equal_nan=True
    )
    assert not same.all(axis=1).all()
