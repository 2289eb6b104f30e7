"""Score micro-batches of expense lines and statements with the model a family holds now.

Features come from schemas.features, the code the trainer used, over the batch plus the history
it needs: recent expense lines (habits, receipts already seen) kept in memory and refreshed from
PostgreSQL, and each customer's previous statements and profile read per batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pandas as pd

from schemas.base import ModelFamily
from schemas.bundles import RANDOM_FOREST, ModelBundle, Scores
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.features import (
    ACTIVITY_COLUMNS,
    EXPENSE_COLUMNS,
    PROFILE_COLUMNS,
    delinquency_features,
    expense_features,
    feature_matrix,
)
from streams.store.sheets import newest_lines

LIVE = "live"


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
    rows = [
        (
            s.statement_id,
            s.customer_id,
            s.statement_date,
            float(s.balance),
            float(s.credit_limit),
            float(s.payment_amount),
            float(s.minimum_due),
            float(s.purchase_amount),
            float(s.cash_advance_amount),
            s.days_past_due,
        )
        for s in statements
    ]
    return pd.DataFrame(rows, columns=list(ACTIVITY_COLUMNS))


class ExpenseContext:
    """The recent expense lines a batch's features are computed against.

    Bounded: the newest `max_lines` lines, reloaded from PostgreSQL every so often (so every
    worker sees lines from every partition) and extended with each scored batch in between.
    """

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.lines = pd.DataFrame(columns=list(EXPENSE_COLUMNS))

    async def refresh(self, conn: asyncpg.Connection) -> None:
        rows = await newest_lines(conn, self.max_lines)
        self.lines = pd.DataFrame([tuple(r) for r in rows], columns=list(EXPENSE_COLUMNS))

    def features(self, batch: pd.DataFrame, approval_limit: float) -> pd.DataFrame:
        """Features of the batch's lines, in the batch's order."""
        history = self.lines[~self.lines["expense_id"].isin(batch["expense_id"])]
        combined = pd.concat([history, batch], ignore_index=True) if len(history) else batch
        features = expense_features(combined, approval_limit=approval_limit)
        return features.set_index("expense_id").loc[batch["expense_id"]].reset_index()

    def remember(self, batch: pd.DataFrame) -> None:
        kept = self.lines[~self.lines["expense_id"].isin(batch["expense_id"])]
        merged = pd.concat([kept, batch], ignore_index=True) if len(kept) else batch.copy()
        if len(merged) > self.max_lines:
            merged = merged.sort_values("submitted_at", kind="stable").iloc[-self.max_lines :]
        self.lines = merged.reset_index(drop=True)


# Every earlier statement of the batch's customers: months on book counts them all.
_PREVIOUS_STATEMENTS = """
SELECT statement_id, customer_id, statement_date, balance::float8, credit_limit::float8,
       payment_amount::float8, minimum_due::float8, purchase_amount::float8,
       cash_advance_amount::float8, days_past_due
FROM customer_activity
WHERE customer_id = ANY($1::text[]) AND NOT statement_id = ANY($2::text[])
"""

_PROFILES = """
SELECT customer_id, age, annual_income::float8, tenure_months, employment_status
FROM customers WHERE customer_id = ANY($1::text[])
"""


async def statement_features(conn: asyncpg.Connection, batch: pd.DataFrame) -> pd.DataFrame:
    """Features of the batch's statements, given each customer's earlier statements."""
    customers = sorted(set(batch["customer_id"]))
    ids = list(batch["statement_id"])
    previous = await conn.fetch(_PREVIOUS_STATEMENTS, customers, ids)
    profiles = await conn.fetch(_PROFILES, customers)
    history = pd.DataFrame([tuple(r) for r in previous], columns=list(ACTIVITY_COLUMNS))
    combined = pd.concat([history, batch], ignore_index=True) if len(history) else batch
    profile_frame = pd.DataFrame([tuple(r) for r in profiles], columns=list(PROFILE_COLUMNS))
    features = delinquency_features(combined, profile_frame)
    return features.set_index("statement_id").loc[batch["statement_id"]].reset_index()


def score(model: LoadedModel, features: pd.DataFrame) -> Scores:
    return model.bundle.score(feature_matrix(features, model.bundle.feature_names))


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def expense_scores(
    lines: pd.DataFrame, model: LoadedModel | None, scores: Scores | None, run: str | None = None
) -> list[ExpenseScored]:
    """One ExpenseScored per line; without a model every line is scored as "no model"."""
    now = datetime.now(UTC)
    out: list[ExpenseScored] = []
    for i, (expense_id, sheet_id) in enumerate(
        zip(lines["expense_id"], lines["sheet_id"], strict=True)
    ):
        if model is None or scores is None:
            out.append(
                ExpenseScored(
                    occurred_at=now,
                    expense_id=expense_id,
                    sheet_id=sheet_id,
                    model_version=None,
                    anomaly_score=None,
                    fraud_probability=None,
                    is_flagged=False,
                    scored_at=now,
                    scoring_run=run,
                )
            )
            continue
        has_classifier = RANDOM_FOREST in model.bundle.models
        anomaly = scores.anomaly_score if scores.anomaly_score is not None else scores.score
        out.append(
            ExpenseScored(
                occurred_at=now,
                expense_id=expense_id,
                sheet_id=sheet_id,
                model_version=model.version,
                anomaly_score=_finite(anomaly[i]),
                fraud_probability=_probability(scores.score[i]) if has_classifier else None,
                is_flagged=bool(scores.flagged[i]),
                scored_at=now,
                scoring_run=run,
            )
        )
    return out


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
    out: list[CustomerScored] = []
    for i, (statement_id, customer_id) in enumerate(
        zip(statements["statement_id"], statements["customer_id"], strict=True)
    ):
        probability = None
        flagged = False
        if model is not None and scores is not None:
            probability = _probability(scores.score[i])
            flagged = bool(scores.flagged[i])
        out.append(
            CustomerScored(
                occurred_at=now,
                customer_id=customer_id,
                statement_id=statement_id,
                model_version=model.version if model is not None else None,
                delinquency_probability=probability,
                is_flagged=flagged,
                scored_at=now,
                scoring_run=run,
            )
        )
    return out


_STORE_EXPENSE_SCORES = """
INSERT INTO expense_scores (expense_id, sheet_id, model_version, scoring_run, anomaly_score,
                            fraud_probability, is_flagged, scored_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
                     $7::bool[], $8::timestamptz[])
ON CONFLICT DO NOTHING
"""

_STORE_CUSTOMER_SCORES = """
INSERT INTO customer_scores (statement_id, customer_id, model_version, scoring_run,
                             delinquency_probability, is_flagged, scored_at)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bool[],
                     $7::timestamptz[])
ON CONFLICT DO NOTHING
"""


async def store_expense_scores(conn: asyncpg.Connection, scored: Sequence[ExpenseScored]) -> None:
    await conn.execute(
        _STORE_EXPENSE_SCORES,
        [s.expense_id for s in scored],
        [s.sheet_id for s in scored],
        [s.model_version or "" for s in scored],
        [s.scoring_run or LIVE for s in scored],
        [s.anomaly_score for s in scored],
        [s.fraud_probability for s in scored],
        [s.is_flagged for s in scored],
        [s.scored_at for s in scored],
    )


async def store_customer_scores(conn: asyncpg.Connection, scored: Sequence[CustomerScored]) -> None:
    await conn.execute(
        _STORE_CUSTOMER_SCORES,
        [s.statement_id for s in scored],
        [s.customer_id for s in scored],
        [s.model_version or "" for s in scored],
        [s.scoring_run or LIVE for s in scored],
        [s.delinquency_probability for s in scored],
        [s.is_flagged for s in scored],
        [s.scored_at for s in scored],
    )


async def already_scored(
    conn: asyncpg.Connection, family: ModelFamily, ids: Sequence[str], run: str = LIVE
) -> set[str]:
    """Which of `ids` this run has scored before (a redelivery is not scored twice)."""
    if family is ModelFamily.EXPENSE_FRAUD:
        sql = (
            "SELECT expense_id FROM expense_scores WHERE scoring_run = $2 AND expense_id = ANY($1)"
        )
    else:
        sql = (
            "SELECT statement_id FROM customer_scores WHERE scoring_run = $2 "
            "AND statement_id = ANY($1)"
        )
    return {row[0] for row in await conn.fetch(sql, list(ids), run)}


def agreement(champion: Scores, shadow: Scores) -> tuple[float, np.ndarray]:
    """Share of rows flagged alike, and the absolute score differences."""
    same = float(np.mean(champion.flagged == shadow.flagged)) if len(champion.flagged) else 1.0
    return same, np.abs(champion.score - shadow.score)
