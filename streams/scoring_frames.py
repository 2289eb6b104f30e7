"""The pure side of scoring: batches as feature frames, frames as scores, scores as events.

Features come from schemas.features, the code the trainer used, over the batch plus the history
it needs: the stored expense lines of the window that share a key with the batch's lines (those
far from the window's edges as totals per key), and each customer's earlier statements and
profile. The rows come from `streams.store`; nothing here talks to PostgreSQL, Kafka or Faust.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from schemas.base import ModelFamily, new_event_ids
from schemas.bundles import RANDOM_FOREST, FloatArray, ModelBundle, Scores
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.fast_decode import built, check_buildable
from schemas.features import (
    ACTIVITY_COLUMNS,
    EXPENSE_COLUMNS,
    PROFILE_COLUMNS,
    SUMMARY_COLUMNS,
    HistorySpan,
    HistorySummary,
    delinquency_features,
    expense_features,
    feature_matrix,
    microseconds,
)
from streams.statement_history import statement_row


@dataclass(frozen=True)
class LoadedModel:
    """A verified, warmed-up version ready to score."""

    family: ModelFamily
    version: str
    bundle: ModelBundle
    request_id: str | None = None


def expense_frame(sheets: Sequence[ExpenseSheetSubmitted]) -> pd.DataFrame:
    """The lines of `sheets` in the expenses table's shape."""
    rows = [
        (
            line.expense_id,
            sheet.sheet_id,
            sheet.employee_id,
            float(line.amount),
            line.category,
            line.merchant,
            line.expense_date,
            line.receipt_ref,
            sheet.submitted_at,
        )
        for sheet in sheets
        for line in sheet.lines
    ]
    return pd.DataFrame(rows, columns=list(EXPENSE_COLUMNS))


def activity_frame(statements: Sequence[CustomerActivityRecorded]) -> pd.DataFrame:
    rows = [statement_row(s) for s in statements]
    return pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS))


@dataclass(frozen=True)
class ExpenseHistoryQuery:
    """What a batch's expense features need from the store: the batch's keys and its span.

    A line's features use the earlier lines of its window that share a key with it (employee,
    merchant, receipt, category), so those are all the store reads for a batch.
    """

    expense_ids: list[str]
    employees: list[str]
    merchants: list[str]
    receipts: list[str]
    categories: list[str]
    span: HistorySpan

    @classmethod
    def of(cls, batch: pd.DataFrame, history_days: int) -> ExpenseHistoryQuery:
        receipts = batch["receipt_ref"].dropna().astype(str)

        def distinct(values: Any) -> list[str]:
            return sorted({str(v) for v in values.tolist()})

        return cls(
            expense_ids=distinct(batch["expense_id"]),
            employees=distinct(batch["employee_id"]),
            merchants=distinct(batch["merchant"]),
            receipts=distinct(receipts[receipts != ""]),
            categories=distinct(batch["category"]),
            span=HistorySpan.of(microseconds(batch["submitted_at"]).tolist(), history_days),
        )

    @property
    def keys(self) -> tuple[list[str], list[str], list[str], list[str]]:
        return self.employees, self.merchants, self.receipts, self.categories

    @property
    def moments(self) -> tuple[datetime, datetime, datetime, datetime]:
        """The span's four times as UTC datetimes (microseconds kept exactly)."""
        span = self.span
        return (
            _moment(span.since_us),
            _moment(span.summary_since_us),
            _moment(span.summary_until_us),
            _moment(span.until_us),
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _moment(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def batch_expense_features(
    batch: pd.DataFrame,
    query: ExpenseHistoryQuery,
    lines: Sequence[Sequence[Any]],
    totals: Sequence[Sequence[Any]],
    *,
    approval_limit: float,
    history_days: int,
) -> pd.DataFrame:
    """Features of the batch's lines, in the batch's order, from the history the store read.

    `lines` are stored lines (EXPENSE_COLUMNS order) and `totals` the stored totals per key
    (key name, employee_id, category, merchant, receipt_ref, lines, log_amount_sum), both
    read for `query`. Earlier sheets of the batch are history for its later ones.
    """
    stored = pd.DataFrame([tuple(r) for r in lines], columns=list(EXPENSE_COLUMNS))
    stored = stored[~stored["expense_id"].isin(batch["expense_id"])]
    combined = pd.concat([stored, batch], ignore_index=True) if len(stored) else batch
    summed = pd.DataFrame(
        [tuple(r) for r in totals],
        columns=["key", "employee_id", "category", "merchant", "receipt_ref", *SUMMARY_COLUMNS],
    )
    summary = HistorySummary(
        query.span.summary_since_us,
        query.span.summary_until_us,
        {str(name): part for name, part in summed.groupby("key", sort=False)},
    )
    features = expense_features(
        combined, approval_limit=approval_limit, history_days=history_days, summary=summary
    )
    return features.set_index("expense_id").loc[batch["expense_id"]].reset_index()


def profile_frame(profiles: Sequence[Any]) -> pd.DataFrame:
    """Customer profile rows (in `PROFILE_COLUMNS` order) as the frame features are built from."""
    return pd.DataFrame([tuple(r) for r in profiles], columns=list(PROFILE_COLUMNS))


COUNTED_FEATURES: tuple[str, ...] = ("months_on_book", "tenure_months")
"""Delinquency features that count every earlier statement of the customer (tenure adds months
on book to the profile's tenure): what a history left out adds to them. Every other feature reads
at most `streams.statement_history.STATEMENT_LAGS` earlier statements."""


def statement_features(
    batch: pd.DataFrame,
    history: Sequence[Any],
    profiles: Sequence[Any],
    older: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Features of the batch's statements, in the batch's order.

    `history` holds the customers' other statements (rows in `ACTIVITY_COLUMNS` order) and
    `profiles` their profiles (rows in `PROFILE_COLUMNS` order). `older` counts, per customer,
    the stored statements before every one in `history` that it leaves out.
    """
    earlier = pd.DataFrame([tuple(r) for r in history], columns=list(ACTIVITY_COLUMNS))
    combined = pd.concat([earlier, batch], ignore_index=True) if len(earlier) else batch
    features = delinquency_features(combined, profile_frame(profiles))
    features = features.set_index("statement_id").loc[batch["statement_id"]].reset_index()
    if older:
        left_out = features["customer_id"].map(older).fillna(0).to_numpy(dtype=np.float64)
        for name in COUNTED_FEATURES:
            features[name] = features[name].to_numpy(dtype=np.float64) + left_out
    return features


def model_matrix(model: LoadedModel, features: pd.DataFrame) -> FloatArray:
    """The features as the version reads them: its feature_names' columns, in its order."""
    return feature_matrix(features, model.bundle.feature_names)


def score(model: LoadedModel, features: pd.DataFrame) -> Scores:
    return model.bundle.score(model_matrix(model, features))


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


# Scored events are built from values checked here (ids of validated events, a loaded version,
# finite scores, probabilities clamped to [0, 1], one aware UTC clock reading per batch): the
# pydantic models would check them again field by field, the dearest part of a batch's events.
check_buildable(ExpenseScored)
check_buildable(CustomerScored)
_SET_BY_SCORING: frozenset[str] = frozenset(ExpenseScored.model_fields) - {
    "event_id",
    "schema_version",
}
_SET_BY_CUSTOMER_SCORING: frozenset[str] = frozenset(CustomerScored.model_fields) - {
    "event_id",
    "schema_version",
}


def expense_scores(
    lines: pd.DataFrame, model: LoadedModel | None, scores: Scores | None, run: str | None = None
) -> list[ExpenseScored]:
    """One ExpenseScored per line; without a model every line is scored as "no model"."""
    now = datetime.now(UTC)
    expense_ids: list[str] = lines["expense_id"].tolist()
    sheet_ids: list[str] = lines["sheet_id"].tolist()
    count = len(expense_ids)
    version: str | None = None
    anomalies: list[float | None] = [None] * count
    probabilities: list[float | None] = [None] * count
    flagged: list[bool] = [False] * count
    if model is not None and scores is not None:
        version = model.version
        anomaly = scores.anomaly_score if scores.anomaly_score is not None else scores.score
        anomalies = [_finite(value) for value in anomaly.tolist()]
        if RANDOM_FOREST in model.bundle.models:
            probabilities = [_probability(value) for value in scores.score.tolist()]
        flagged = [bool(value) for value in scores.flagged.tolist()]
    version_code = ExpenseScored.SCHEMA_VERSION
    return [
        built(
            ExpenseScored,
            {
                "event_id": event_id,
                "occurred_at": now,
                "schema_version": version_code,
                "expense_id": expense_id,
                "sheet_id": sheet_id,
                "model_version": version,
                "anomaly_score": anomaly_score,
                "fraud_probability": probability,
                "is_flagged": is_flagged,
                "scored_at": now,
                "scoring_run": run,
            },
            set(_SET_BY_SCORING),
        )
        for event_id, expense_id, sheet_id, anomaly_score, probability, is_flagged in zip(
            new_event_ids(count),
            expense_ids,
            sheet_ids,
            anomalies,
            probabilities,
            flagged,
            strict=True,
        )
    ]


def _probability(value: float) -> float | None:
    finite = _finite(value)
    return None if finite is None else min(max(finite, 0.0), 1.0)


def customer_scores(
    statements: pd.DataFrame,
    model: LoadedModel | None,
    scores: Scores | None,
    run: str | None = None,
) -> list[CustomerScored]:
    now = datetime.now(UTC)
    statement_ids: list[str] = statements["statement_id"].tolist()
    customer_ids: list[str] = statements["customer_id"].tolist()
    count = len(statement_ids)
    version: str | None = None
    probabilities: list[float | None] = [None] * count
    flagged: list[bool] = [False] * count
    if model is not None:
        version = model.version
        if scores is not None:
            probabilities = [_probability(value) for value in scores.score.tolist()]
            flagged = [bool(value) for value in scores.flagged.tolist()]
    version_code = CustomerScored.SCHEMA_VERSION
    return [
        built(
            CustomerScored,
            {
                "event_id": event_id,
                "occurred_at": now,
                "schema_version": version_code,
                "customer_id": customer_id,
                "statement_id": statement_id,
                "model_version": version,
                "delinquency_probability": probability,
                "is_flagged": is_flagged,
                "scored_at": now,
                "scoring_run": run,
            },
            set(_SET_BY_CUSTOMER_SCORING),
        )
        for event_id, statement_id, customer_id, probability, is_flagged in zip(
            new_event_ids(count), statement_ids, customer_ids, probabilities, flagged, strict=True
        )
    ]


def agreement(champion: Scores, shadow: Scores) -> tuple[float, np.ndarray]:
    """Share of rows flagged alike, and the absolute score differences."""
    same = float(np.mean(champion.flagged == shadow.flagged)) if len(champion.flagged) else 1.0
    return same, np.abs(champion.score - shadow.score)
