"""Training data from PostgreSQL, point-in-time: COPY … TO STDOUT straight into pandas.

Every query keeps only rows that happened (event time) and, by default, were stored
(ingested_at) at or before the request's data cutoff. Rows travel as CSV through COPY and are
parsed by pandas' C reader: no Python object per row.
"""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import numpy as np
import pandas as pd

from schemas.features import labelled_by_day
from trainer.selection import CustomerSelection, select_customers
from trainer.settings import TrainerSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def day_number(moment: datetime) -> int:
    """Whole days since 1970-01-01 of the UTC date of `moment`."""
    return (moment.astimezone(UTC).date() - EPOCH.date()).days


@dataclass(frozen=True)
class Loaded:
    """One loaded frame with how long it took."""

    frame: pd.DataFrame
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.frame)


async def copy_frame(
    conn: asyncpg.Connection,
    query: str,
    *args: object,
    dtypes: Mapping[str, str] | None = None,
) -> Loaded:
    """Run `query` as COPY (…) TO STDOUT (FORMAT csv, HEADER) and parse it with pandas."""
    began = time.perf_counter()
    buffer = io.BytesIO()
    await conn.copy_from_query(query, *args, output=buffer, format="csv", header=True)
    buffer.seek(0)
    # PostgreSQL writes booleans as t/f in CSV.
    frame = pd.read_csv(
        buffer, dtype=dict(dtypes or {}), engine="c", true_values=["t"], false_values=["f"]
    )
    return Loaded(frame, time.perf_counter() - began)


def _stored(alias: str, settings: TrainerSettings, param: str) -> str:
    """The ingestion condition, when point-in-time also means "stored by the cutoff"."""
    if not settings.point_in_time_ingestion:
        return "TRUE"
    return f"{alias}.ingested_at <= {param}"


def _us(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


def _to_utc(frame: pd.DataFrame, column: str) -> None:
    frame[column] = pd.to_datetime(frame[column].to_numpy(dtype=np.int64), unit="us", utc=True)


def _to_date(frame: pd.DataFrame, column: str) -> None:
    frame[column] = pd.to_datetime(frame[column].to_numpy(dtype=np.int64), unit="D")


# --- delinquency -----------------------------------------------------------------------------


async def customer_candidates(
    conn: asyncpg.Connection, cutoff: datetime, settings: TrainerSettings
) -> pd.DataFrame:
    """Customers known by the cutoff that have at least one statement old enough to label.

    Columns: customer_id, included_in_training (in a model promoted by the cutoff: decided from
    when the customer was first trained on, so a rerun at a past cutoff sees the past), first_seen
    (UTC).
    """
    query = f"""
        SELECT c.customer_id,
               coalesce(s.first_trained <= $1, false) AS included_in_training,
               {_us("coalesce(s.first_seen, c.created_at)")} AS first_seen
        FROM customers c
        LEFT JOIN customer_training_status s USING (customer_id)
        WHERE c.created_at <= $1 AND {_stored("c", settings, "$1")}
          AND EXISTS (
              SELECT 1 FROM customer_activity a
              WHERE a.customer_id = c.customer_id
                AND a.statement_date <= ($1 AT TIME ZONE 'UTC')::date - $2::integer
                AND a.occurred_at <= $1 AND {_stored("a", settings, "$1")})
    """  # noqa: S608 - every interpolated part is a constant of this module
    loaded = await copy_frame(
        conn,
        query,
        cutoff,
        settings.delinquency_horizon_days,
        dtypes={"customer_id": "str", "included_in_training": "bool", "first_seen": "int64"},
    )
    frame = loaded.frame
    _to_utc(frame, "first_seen")
    return frame


@dataclass(frozen=True)
class DelinquencyData:
    """Statements and profiles of the selected customers, as of the cutoff."""

    activity: pd.DataFrame
    profiles: pd.DataFrame
    selection: CustomerSelection
    rows: int
    seconds: float


_ACTIVITY_SELECT = """
    SELECT a.statement_id, a.customer_id,
           (a.statement_date - DATE '1970-01-01') AS statement_date,
           a.balance::float8 AS balance, a.credit_limit::float8 AS credit_limit,
           a.payment_amount::float8 AS payment_amount, a.minimum_due::float8 AS minimum_due,
           a.purchase_amount::float8 AS purchase_amount,
           a.cash_advance_amount::float8 AS cash_advance_amount, a.days_past_due
    FROM customer_activity a
"""

_ACTIVITY_TYPES = {
    "statement_id": "str",
    "customer_id": "str",
    "statement_date": "int64",
    "balance": "float64",
    "credit_limit": "float64",
    "payment_amount": "float64",
    "minimum_due": "float64",
    "purchase_amount": "float64",
    "cash_advance_amount": "float64",
    "days_past_due": "int64",
}

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


async def load_delinquency(
    conn: asyncpg.Connection,
    cutoff: datetime,
    settings: TrainerSettings,
    max_customers: int | None = None,
) -> DelinquencyData:
    """COPY every statement and profile as of the cutoff, then keep the selected customers.

    The selection (trainer.selection) needs each candidate's labelled observations, which come
    from the statements themselves; loading them all is one vectorised COPY.
    """
    began = time.perf_counter()
    candidates = await customer_candidates(conn, cutoff, settings)
    cap = settings.max_customers if max_customers is None else max_customers
    activity = await copy_frame(
        conn,
        f"{_ACTIVITY_SELECT} WHERE a.statement_date <= ($1 AT TIME ZONE 'UTC')::date "
        f"AND a.occurred_at <= $1 AND {_stored('a', settings, '$1')}",
        cutoff,
        dtypes=_ACTIVITY_TYPES,
    )
    profiles = await copy_frame(
        conn,
        f"{_PROFILE_SELECT} WHERE c.created_at <= $1 AND {_stored('c', settings, '$1')}",
        cutoff,
        dtypes=_PROFILE_TYPES,
    )
    statements = activity.frame
    _to_date(statements, "statement_date")
    observations = labelled_by_day(
        statements,
        cutoff_day=day_number(cutoff),
        horizon_days=settings.delinquency_horizon_days,
        delinquent_days_past_due=settings.delinquent_days_past_due,
    )
    selection = select_customers(
        candidates,
        cap,
        seed=cutoff.astimezone(UTC).isoformat(),
        observations=observations,
        minimums=settings.minimums(),
    )
    chosen = set(selection.customer_ids)
    return DelinquencyData(
        activity=statements.loc[statements["customer_id"].isin(chosen)].reset_index(drop=True),
        profiles=profiles.frame.loc[profiles.frame["customer_id"].isin(chosen)].reset_index(
            drop=True
        ),
        selection=selection,
        rows=activity.rows + profiles.rows + len(candidates),
        seconds=time.perf_counter() - began,
    )


# --- expense fraud ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpenseData:
    """Expense lines and their latest labels, as of the cutoff."""

    expenses: pd.DataFrame
    labels: pd.DataFrame
    rows: int
    seconds: float


async def load_expenses(
    conn: asyncpg.Connection, cutoff: datetime, settings: TrainerSettings
) -> ExpenseData:
    """Every expense submitted by the cutoff, and each one's latest label given by then."""
    began = time.perf_counter()
    expenses = await copy_frame(
        conn,
        f"""
        SELECT e.expense_id, e.sheet_id, e.employee_id, e.amount::float8 AS amount,
               e.category, e.merchant, (e.expense_date - DATE '1970-01-01') AS expense_date,
               e.receipt_ref, {_us("e.submitted_at")} AS submitted_at
        FROM expenses e
        WHERE e.submitted_at <= $1 AND {_stored("e", settings, "$1")}
        """,  # noqa: S608 - every interpolated part is a constant of this module
        cutoff,
        dtypes={
            "expense_id": "str",
            "sheet_id": "str",
            "employee_id": "str",
            "amount": "float64",
            "category": "str",
            "merchant": "str",
            "expense_date": "int64",
            "receipt_ref": "str",
            "submitted_at": "int64",
        },
    )
    labels = await copy_frame(
        conn,
        f"""
        SELECT DISTINCT ON (l.expense_id) l.expense_id, l.is_fraud
        FROM expense_labels l
        WHERE l.labelled_at <= $1 AND {_stored("l", settings, "$1")}
        ORDER BY l.expense_id, l.labelled_at DESC, l.ingested_at DESC
        """,  # noqa: S608 - every interpolated part is a constant of this module
        cutoff,
        dtypes={"expense_id": "str", "is_fraud": "bool"},
    )
    frame = expenses.frame
    _to_date(frame, "expense_date")
    _to_utc(frame, "submitted_at")
    return ExpenseData(
        expenses=frame,
        labels=labels.frame,
        rows=expenses.rows + labels.rows,
        seconds=time.perf_counter() - began,
    )
