"""Scores as stored, and the statement history scoring reads: the SQL of the live scorer and of
re-scoring. Expense lines come from `streams.store.sheets`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import asyncpg
import numpy as np

from schemas.base import ModelFamily
from schemas.bundles import FloatArray
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored

LIVE = "live"
"""The scoring_run stored for live scores (a re-score stores its own run id)."""

# Feature vectors travel as one flat real[] in binary, each row's vector sliced from it by the
# row's number; a batch with a value whose text form PostgreSQL would read otherwise than the
# binary cast (see `_flat_reals`) sends them as array literals instead, cast per row (unnest
# flattens a two-dimensional array into its elements). Either way the rows may have no vectors.
_EXPENSE_SCORE_COLUMNS = """
INSERT INTO expense_scores (expense_id, sheet_id, model_version, scoring_run, anomaly_score,
                            fraud_probability, is_flagged, scored_at, features)
"""
_STORE_EXPENSE_SCORES = (
    _EXPENSE_SCORE_COLUMNS
    + """
SELECT e, s, v, r, a, p, f, t, ($9::real[])[(n - 1) * $10::int + 1 : n * $10::int]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
            $7::bool[], $8::timestamptz[]) WITH ORDINALITY AS u(e, s, v, r, a, p, f, t, n)
ON CONFLICT DO NOTHING
"""
)
_STORE_EXPENSE_SCORES_AS_TEXT = (
    _EXPENSE_SCORE_COLUMNS
    + """
SELECT e, s, v, r, a, p, f, t, x::real[]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::float8[],
            $7::bool[], $8::timestamptz[], $9::text[]) AS u(e, s, v, r, a, p, f, t, x)
ON CONFLICT DO NOTHING
"""
)

_CUSTOMER_SCORE_COLUMNS = """
INSERT INTO customer_scores (statement_id, customer_id, model_version, scoring_run,
                             delinquency_probability, is_flagged, scored_at, features)
"""
_STORE_CUSTOMER_SCORES = (
    _CUSTOMER_SCORE_COLUMNS
    + """
SELECT st, c, v, r, p, f, t, ($8::real[])[(n - 1) * $9::int + 1 : n * $9::int]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bool[],
            $7::timestamptz[]) WITH ORDINALITY AS u(st, c, v, r, p, f, t, n)
ON CONFLICT DO NOTHING
"""
)
_STORE_CUSTOMER_SCORES_AS_TEXT = (
    _CUSTOMER_SCORE_COLUMNS
    + """
SELECT st, c, v, r, p, f, t, x::real[]
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::float8[], $6::bool[],
            $7::timestamptz[], $8::text[]) AS u(st, c, v, r, p, f, t, x)
ON CONFLICT DO NOTHING
"""
)

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


Vectors = FloatArray | Sequence[Sequence[float]]
"""Feature vectors, one row a score: a two-dimensional array or rows of floats."""

_SMALLEST_NORMAL_REAL = float(np.finfo(np.float32).tiny)
_LARGEST_REAL = float(np.finfo(np.float32).max)
# A double whose 29 bits below a real's precision are exactly 1000…0 lies halfway between two
# reals: the binary cast rounds it to the even one, its shortest text may lie on either side.
_BELOW_REAL_PRECISION = np.uint64((1 << 29) - 1)
_HALFWAY = np.uint64(1 << 28)
_NAN_REAL = np.float32(np.nan)


def _flat_reals(matrix: FloatArray) -> list[float] | None:
    """The rows of `matrix` as one list of real (float4) values, each the value PostgreSQL reads
    from the text the literal path sends (`repr` of the double): the double rounded to the
    nearest real, NaN as PostgreSQL's own NaN. None when a value might be read otherwise: a
    double halfway between two reals, or one PostgreSQL would refuse or read as a subnormal (a
    nonzero magnitude below the smallest normal real or above the largest real)."""
    magnitude = np.abs(matrix)
    with np.errstate(invalid="ignore"):
        nonzero = np.isfinite(matrix) & (magnitude != 0)
        outside = (magnitude < _SMALLEST_NORMAL_REAL) | (magnitude > _LARGEST_REAL)
    if np.any(nonzero & outside):
        return None
    halfway = (matrix.view(np.uint64) & _BELOW_REAL_PRECISION) == _HALFWAY
    if np.any(nonzero & halfway):
        return None
    reals = matrix.astype(np.float32)
    reals[np.isnan(reals)] = _NAN_REAL
    flat: list[float] = reals.ravel().tolist()
    return flat


def _vector_arguments(
    count: int, features: Vectors | None
) -> tuple[list[float] | None, int] | None:
    """The binary path's two arguments (the flat reals, the width of a vector), or None when the
    batch's vectors go as text."""
    if features is None:
        return None, 0
    matrix = np.asarray(features, dtype=np.float64)
    if len(matrix) != count:
        raise ValueError(f"{len(matrix)} feature vectors for {count} scores")
    if count == 0:
        return [], 0
    matrix = np.ascontiguousarray(matrix.reshape(count, -1))
    flat = _flat_reals(matrix)
    return None if flat is None else (flat, matrix.shape[1])


def _vectors(count: int, features: Vectors | None) -> list[str | None]:
    if features is None:
        return [None] * count
    if len(features) != count:
        raise ValueError(f"{len(features)} feature vectors for {count} scores")
    return [_array_literal(row) for row in features]


async def store_expense_scores(
    conn: asyncpg.Connection, scored: Sequence[ExpenseScored], features: Vectors | None = None
) -> None:
    """Store the scores, each with the feature vector it was computed from (when given, one per
    score, in the version's feature order)."""
    columns = (
        [s.expense_id for s in scored],
        [s.sheet_id for s in scored],
        [s.model_version or "" for s in scored],
        [s.scoring_run or LIVE for s in scored],
        [s.anomaly_score for s in scored],
        [s.fraud_probability for s in scored],
        [s.is_flagged for s in scored],
        [s.scored_at for s in scored],
    )
    binary = _vector_arguments(len(scored), features)
    if binary is not None:
        await conn.execute(_STORE_EXPENSE_SCORES, *columns, *binary)
    else:
        await conn.execute(_STORE_EXPENSE_SCORES_AS_TEXT, *columns, _vectors(len(scored), features))


async def store_customer_scores(
    conn: asyncpg.Connection, scored: Sequence[CustomerScored], features: Vectors | None = None
) -> None:
    """Store the scores, each with the feature vector it was computed from (when given)."""
    columns = (
        [s.statement_id for s in scored],
        [s.customer_id for s in scored],
        [s.model_version or "" for s in scored],
        [s.scoring_run or LIVE for s in scored],
        [s.delinquency_probability for s in scored],
        [s.is_flagged for s in scored],
        [s.scored_at for s in scored],
    )
    binary = _vector_arguments(len(scored), features)
    if binary is not None:
        await conn.execute(_STORE_CUSTOMER_SCORES, *columns, *binary)
    else:
        await conn.execute(
            _STORE_CUSTOMER_SCORES_AS_TEXT, *columns, _vectors(len(scored), features)
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
