"""The pure side of scoring: features of a batch from rows the store read, no database needed."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from schemas.features import ACTIVITY_COLUMNS, EXPENSE_COLUMNS
from streams.scoring_frames import (
    ExpenseHistoryQuery,
    activity_frame,
    batch_expense_features,
    expense_frame,
    statement_features,
)
from tests.factories import customer, sheet, statement


def _rows(frame_rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [tuple(row) for row in frame_rows]


def test_a_statement_counts_the_customers_earlier_statements_given_as_rows() -> None:
    earlier = activity_frame([statement("c-1", m) for m in range(3)])
    batch = activity_frame([statement("c-2", 0), statement("c-1", 3)])
    profile = customer(1).profile
    profiles = [
        (f"c-{n}", profile.age, float(profile.annual_income), profile.tenure_months, "employed")
        for n in (1, 2)
    ]
    history = _rows(list(earlier[list(ACTIVITY_COLUMNS)].itertuples(index=False)))
    features = statement_features(batch, history, profiles)
    assert list(features["statement_id"]) == ["c-2-s0", "c-1-s3"]
    assert list(features["months_on_book"]) == [0.0, 3.0]
    alone = statement_features(batch, [], profiles)
    assert list(alone["months_on_book"]) == [0.0, 0.0]


def test_a_batch_is_featured_against_the_rows_the_store_read_in_the_batchs_order() -> None:
    stored = expense_frame([sheet(1), sheet(2)])
    batch = expense_frame([sheet(3, lines=3)]).iloc[::-1].reset_index(drop=True)
    batch.loc[0, "receipt_ref"] = None
    query = ExpenseHistoryQuery.of(batch, history_days=30)
    assert query.receipts == ["r-3-0", "r-3-1"]
    assert query.expense_ids == sorted(batch["expense_id"])
    assert query.span.until_us - query.span.since_us == 30 * 86_400_000_000
    since, _, _, until = query.moments
    assert until == sheet(3).submitted_at
    assert until - since == timedelta(days=30)
    rows = _rows(list(stored[list(EXPENSE_COLUMNS)].itertuples(index=False)))
    features = batch_expense_features(batch, query, rows, [], approval_limit=500.0, history_days=30)
    assert list(features["expense_id"]) == list(batch["expense_id"])
    alone = batch_expense_features(batch, query, [], [], approval_limit=500.0, history_days=30)
    # merchant-1 had lines in both stored sheets; without them the batch's line is its first.
    first_line = features["expense_id"] == "s-3-1"
    assert features.loc[first_line, "merchant_history"].item() == pytest.approx(np.log1p(2))
    assert alone.loc[first_line, "merchant_history"].item() == 0.0
