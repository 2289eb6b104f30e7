"""The pure side of scoring: features of a batch from rows the store read, no database needed."""

from __future__ import annotations

from schemas.features import ACTIVITY_COLUMNS, EXPENSE_COLUMNS
from streams.scoring_frames import ExpenseContext, activity_frame, expense_frame, statement_features
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


def test_the_context_starts_over_from_stored_rows_and_scores_in_the_batchs_order() -> None:
    stored = expense_frame([sheet(1), sheet(2)])
    context = ExpenseContext(max_lines=8)
    context.replace(_rows(list(stored[list(EXPENSE_COLUMNS)].itertuples(index=False))))
    assert list(context.lines["expense_id"]) == list(stored["expense_id"])
    batch = expense_frame([sheet(3, lines=3)]).iloc[::-1].reset_index(drop=True)
    features = context.features(batch, approval_limit=500.0)
    assert list(features["expense_id"]) == list(batch["expense_id"])
    context.remember(batch)
    assert len(context.lines) == 8
    assert set(batch["expense_id"]) <= set(context.lines["expense_id"])
