"""Scores as stored, and the statement history scoring reads: the SQL of the live scorer and of
re-scoring. Expense lines come from `streams.store.sheets`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import asyncpg

from schemas.base import ModelFamily
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored

LIVE = "live"
"""The scoring_run stored for live scores (a re-score stores its own run id)."""

# Feature vectors travel as array literals (text) and are cast per row: unnest flattens a
# two-dimensional array into its elements, and the rows' vectors may be missing (NULL).
_STORE_EXPENSE_SCORES = """
INSERT INTO expense_scores (expense_id, sheet_id, model_version, scoring_run, anomaly_score,
                            fraud_probability, is_flagged, scored_at, features)
SELECT e, s, v, r, a, p, f, t, x::real[]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
            $7::bool[], $8::timestamptz[], $9::text[]) AS u(e, s, v, r, a, p, f, t, x)
ON CONFLICT DO NOTHING
"""

_STORE_CUSTOMER_SCORES = """
INSERT INTO customer_scores (statement_id, customer_id, model_version, scoring_run,
                             delinquency_probability, is_flagged, scored_at, features)
SELECT st, c, v, r, p, f, t, x::real[]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bool[],
            $7::timestamptz[], $8::text[]) AS u(st, c, v, r, p, f, t, x)
ON CONFLICT DO NOTHING
"""

# Statements in the columns of `schemas.features.ACTIVITY_COLUMNS`, before a WHERE clause.
_STATEMENTS = """
SELECT statement_id, customer_id, statement_date, balance::float8, credit_limit::float8,
       payment_amount::float8, minimum_due::float8, purchase_amount::float8,
       cash_advance_amount::float8, days_past_due
FROM customer_activity
"""
# Every earlier statement of the batch's customers: months on book counts them all.
_OTHER_STATEMENTS = _STATEMENTS + (
    "WHERE customer_id = ANY($1::text[]) AND NOT statement_id = ANY($2::text[])"
)
_OF_CUSTOMERS = _STATEMENTS + "WHERE customer_id = ANY($1::text[])"
_HISTORY_UNTIL = _STATEMENTS + "WHERE customer_id = ANY($1::text[]) AND statement_date <= $2"
_BY_ID = _STATEMENTS + "WHERE statement_id = ANY($1::text[])"

# Profiles in the columns of `schemas.features.PROFILE_COLUMNS`.
_PROFILES = """
SELECT customer_id, age, annual_income::float8, tenure_months, employment_status
FROM customers WHERE customer_id = ANY($1::text[])
"""


def _array_literal(vector: Sequence[float]) -> str:
    """A PostgreSQL array literal of `vector`; NaN and infinities keep their meaning."""
    return "{" + ",".join(_real(v) for v in vector) + "}"


def _real(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(float(value))


def _vectors(count: int, features: Sequence[Sequence[float]] | None) -> list[str | None]:
    if features is None:
        return [None] * count
    if len(features) != count:
        raise ValueError(f"{len(features)} feature vectors for {count} scores")
    return [_array_literal(row) for row in features]


async def store_expense_scores(
    conn: asyncpg.Connection,
    scored: Sequence[ExpenseScored],
    features: Sequence[Sequence[float]] | None = None,
) -> None:
    """Store the scores, each with the feature vector it was computed from (when given, one per
    score, in the version's feature order)."""
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
        _vectors(len(scored), features),
    )


async def store_customer_scores(
    conn: asyncpg.Connection,
    scored: Sequence[CustomerScored],
    features: Sequence[Sequence[float]] | None = None,
) -> None:
    """Store the scores, each with the feature vector it was computed from (when given)."""
    await conn.execute(
        _STORE_CUSTOMER_SCORES,
        [s.statement_id for s in scored],
        [s.customer_id for s in scored],
        [s.model_version or "" for s in scored],
        [s.scoring_run or LIVE for s in scored],
        [s.delinquency_probability for s in scored],
        [s.is_flagged for s in scored],
        [s.scored_at for s in scored],
        _vectors(len(scored), features),
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


async def other_statements(
    conn: asyncpg.Connection, customers: Sequence[str], statement_ids: Sequence[str]
) -> list[asyncpg.Record]:
    """Every stored statement of these customers except `statement_ids`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        _OTHER_STATEMENTS, list(customers), list(statement_ids)
    )
    return rows


async def statements_of(conn: asyncpg.Connection, customers: Sequence[str]) -> list[asyncpg.Record]:
    """Every stored statement of these customers."""
    rows: list[asyncpg.Record] = await conn.fetch(_OF_CUSTOMERS, list(customers))
    return rows


async def statements_until(
    conn: asyncpg.Connection, customers: Sequence[str], last: date
) -> list[asyncpg.Record]:
    """Every stored statement of these customers dated `last` or earlier."""
    rows: list[asyncpg.Record] = await conn.fetch(_HISTORY_UNTIL, list(customers), last)
    return rows


async def statements_by_id(
    conn: asyncpg.Connection, statement_ids: Sequence[str]
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_BY_ID, list(statement_ids))
    return rows


async def customer_profiles(
    conn: asyncpg.Connection, customers: Sequence[str]
) -> list[asyncpg.Record]:
    """The stored profile of each of these customers that has one."""
    rows: list[asyncpg.Record] = await conn.fetch(_PROFILES, list(customers))
    return rows
