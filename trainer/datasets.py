"""Training data from PostgreSQL, point-in-time: binary COPY into Arrow, then pandas.

Every query keeps only rows that happened (event time) and, by default, were stored
(ingested_at) at or before the request's data cutoff. Rows travel through the ADBC PostgreSQL
driver, which reads results with COPY (FORMAT binary) into Arrow columns: no text to parse and
no Python object per row. The driver blocks, so queries run on a worker thread and the event
loop stays free.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol, TypeVar

import adbc_driver_manager
import numpy as np
import pandas as pd
import pyarrow as pa
from adbc_driver_postgresql import dbapi as adbc

from schemas.features import labelled_by_day
from trainer.errors import TrainerError
from trainer.selection import CustomerSelection, customer_rows, select_customers
from trainer.settings import TrainerSettings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")


class Blocking(Protocol):
    """Runs a blocking call off the event loop and awaits its result (a thread, an executor)."""

    def __call__(self, call: Callable[[], T], /) -> Awaitable[T]: ...


_UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")
"""Connection failures, server shutting down or starting, too many connections: try later."""


def day_number(moment: datetime) -> int:
    """Whole days since 1970-01-01 of the UTC date of `moment`."""
    return (moment.astimezone(UTC).date() - EPOCH.date()).days


class LoadUnavailable(ConnectionError):
    """PostgreSQL could not be reached for a load (retried like any other outage)."""


class LoadFailed(TrainerError):
    """PostgreSQL refused a load query (not an outage: retrying would not help)."""


@dataclass(frozen=True)
class Loaded:
    """One loaded frame with how long it took."""

    frame: pd.DataFrame
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.frame)


def arrow_table(dsn: str, query: str) -> pa.Table:
    """Run `query` on a new ADBC connection (blocking) and return its rows as one Arrow table."""
    try:
        with adbc.connect(dsn) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetch_arrow_table()
    except adbc_driver_manager.Error as exc:
        state = exc.sqlstate or ""
        unreachable = isinstance(exc, adbc_driver_manager.OperationalError) and (
            not state or state.startswith(_UNAVAILABLE_SQLSTATES)
        )
        if unreachable or isinstance(exc, adbc_driver_manager.InterfaceError):
            raise LoadUnavailable(f"PostgreSQL unavailable for a load: {exc}") from exc
        raise LoadFailed(f"load query failed: {exc}") from exc


def as_frame(tables: list[pa.Table], dtypes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Arrow tables (parts of one result, in order) as one pandas frame.

    Text comes out as pandas' string dtype, float8 as float64; `dtypes` then fixes the rest
    (integer widths, booleans) so frames look as the features expect.
    """
    frame: pd.DataFrame = pa.concat_tables(tables).to_pandas()
    return frame.astype(dict(dtypes)) if dtypes else frame


async def _in_thread(call: Callable[[], T]) -> T:
    return await asyncio.to_thread(call)


LOAD_PARTS = max(1, min(4, os.cpu_count() or 1))
"""At most this many connections read one large table at once (one per core): PostgreSQL
runs each on its own backend, so the casts and the encoding of the rows share the cores."""
PAGES_PER_PART = 1_000
"""A part is worth its own connection from about this many table pages (8 MB) on."""


@dataclass(frozen=True)
class Source:
    """Where loads read from: a DSN, and how blocking driver calls are kept off the loop."""

    dsn: str
    run: Blocking = _in_thread

    async def frame(
        self,
        query: str,
        dtypes: Mapping[str, str] | None = None,
        *,
        split: tuple[str, str] | None = None,
    ) -> Loaded:
        """The rows of `query` as pandas.

        With `split` = (table, alias), `query` must be a plain SELECT … WHERE … over that table:
        a large table is then read in contiguous page ranges on parallel connections (TID range
        scans), and the parts are put back together in page order, the order of one scan.
        """
        began = time.perf_counter()
        queries = [query] if split is None else await self._parts(query, *split)
        tables = await asyncio.gather(
            *(self.run(partial(arrow_table, self.dsn, q)) for q in queries)
        )
        frame = await self.run(partial(as_frame, list(tables), dtypes))
        return Loaded(frame, time.perf_counter() - began)

    async def _parts(self, query: str, table: str, alias: str) -> list[str]:
        size = f"pg_relation_size('{table}'::regclass) / current_setting('block_size')::bigint"
        counted = await self.run(partial(arrow_table, self.dsn, f"SELECT {size} AS pages"))
        pages = int(counted.column("pages")[0].as_py())
        parts = max(1, min(LOAD_PARTS, pages // PAGES_PER_PART))
        if parts == 1:
            return [query]
        step = -(-pages // parts)
        bounds = [f"{alias}.ctid >= '({i * step},0)'::tid" for i in range(parts)]
        # Each part ends where the next begins; the last is open, for pages added meanwhile.
        ends = [f" AND {alias}.ctid < '({(i + 1) * step},0)'::tid" for i in range(parts - 1)]
        return [f"{query} AND {bound}{end}" for bound, end in zip(bounds, [*ends, ""], strict=True)]


def at_literal(moment: datetime) -> str:
    """A cutoff as an SQL literal. The driver reads results by COPY, which takes no bind
    parameters, so values are rendered here, from typed values only."""
    if moment.tzinfo is None:
        raise TypeError(f"a cutoff must be an aware datetime, not {moment!r}")
    return f"'{moment.astimezone(UTC).isoformat()}'::timestamptz"


def _stored(alias: str, settings: TrainerSettings, param: str) -> str:
    """The ingestion condition, when point-in-time also means "stored by the cutoff"."""
    if not settings.point_in_time_ingestion:
        return "TRUE"
    return f"{alias}.ingested_at <= {param}"


def _us(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


def _to_utc(frame: pd.DataFrame, column: str) -> None:
    frame[column] = pd.to_datetime(frame[column].to_numpy(dtype=np.int64), unit="us", utc=True)


def to_date(frame: pd.DataFrame, column: str) -> None:
    frame[column] = pd.to_datetime(frame[column].to_numpy(dtype=np.int64), unit="D")


# --- delinquency -----------------------------------------------------------------------------


def customers_query(at: str, settings: TrainerSettings, where: str = "TRUE") -> str:
    """Customers known by the cutoff (and meeting `where`, over `c`): their profiles, and
    whether (included_in_training) and since when (first_seen, µs) they count as trained as of
    the cutoff, decided from when each was first trained on, so a rerun at a past cutoff sees the
    past."""
    return f"""
        SELECT c.customer_id, c.age, c.annual_income::float8 AS annual_income,
               c.tenure_months, c.employment_status,
               coalesce(s.first_trained <= {at}, false) AS included_in_training,
               {_us("coalesce(s.first_seen, c.created_at)")} AS first_seen
        FROM customers c
        LEFT JOIN customer_training_status s USING (customer_id)
        WHERE c.created_at <= {at} AND {_stored("c", settings, at)} AND {where}
    """  # noqa: S608 - every interpolated part is a constant of this module or a typed value


def customer_candidates(
    customers: pd.DataFrame, statements: pd.DataFrame, cutoff_day: int, horizon_days: int
) -> pd.DataFrame:
    """The customers with at least one statement old enough to label (dated `horizon_days` or
    more before the cutoff's day), from the loaded customers and statements.

    Columns: customer_id, included_in_training, first_seen (UTC).
    """
    day = statements["statement_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)
    old_enough = set(
        statements["customer_id"].to_numpy(dtype=object)[day <= cutoff_day - horizon_days]
    )
    frame = customers.loc[
        customer_rows(customers["customer_id"], old_enough),
        ["customer_id", "included_in_training", "first_seen"],
    ].reset_index(drop=True)
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


def activity_query(at: str, settings: TrainerSettings, where: str = "TRUE") -> str:
    """Statements dated and recorded by the cutoff (and meeting `where`, over `a`)."""
    return (
        f"{_ACTIVITY_SELECT} WHERE a.statement_date <= ({at} AT TIME ZONE 'UTC')::date "
        f"AND a.occurred_at <= {at} AND {_stored('a', settings, at)} AND {where}"
    )


ACTIVITY_TYPES = {
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

CUSTOMER_TYPES = {
    "customer_id": "str",
    "age": "float64",
    "annual_income": "float64",
    "tenure_months": "float64",
    "employment_status": "str",
    "included_in_training": "bool",
    "first_seen": "int64",
}
PROFILE_FIELDS = ("customer_id", "age", "annual_income", "tenure_months", "employment_status")


async def load_delinquency(
    source: Source,
    cutoff: datetime,
    settings: TrainerSettings,
    max_customers: int | None = None,
) -> DelinquencyData:
    """Every statement and customer as of the cutoff, then the selected customers' ones.

    The candidates and the selection (trainer.selection) need the statements themselves (which
    customers have one old enough to label, each one's labelled observations), so both queries
    read whole tables, at once.
    """
    began = time.perf_counter()
    at = at_literal(cutoff)
    cap = settings.max_customers if max_customers is None else max_customers
    activity, customers = await asyncio.gather(
        source.frame(
            activity_query(at, settings),
            dtypes=ACTIVITY_TYPES,
            split=("customer_activity", "a"),
        ),
        source.frame(customers_query(at, settings), dtypes=CUSTOMER_TYPES),
    )
    # The rest is pandas work on a million rows: off the loop too.
    return await source.run(
        partial(
            _selected,
            activity.frame,
            customers.frame,
            cutoff,
            settings,
            cap,
            rows=activity.rows + customers.rows,
            began=began,
        )
    )


def _selected(
    statements: pd.DataFrame,
    customers: pd.DataFrame,
    cutoff: datetime,
    settings: TrainerSettings,
    cap: int,
    *,
    rows: int,
    began: float,
) -> DelinquencyData:
    """The candidates among the loaded customers, the selection, and its rows."""
    to_date(statements, "statement_date")
    candidates = customer_candidates(
        customers, statements, day_number(cutoff), settings.delinquency_horizon_days
    )
    profiles = customers.loc[:, list(PROFILE_FIELDS)]
    # Only a cap that leaves candidates out can top the set up, which needs the observations.
    observations = (
        labelled_by_day(
            statements,
            cutoff_day=day_number(cutoff),
            horizon_days=settings.delinquency_horizon_days,
            delinquent_days_past_due=settings.delinquent_days_past_due,
        )
        if 0 < cap < len(candidates)
        else None
    )
    selection = select_customers(
        candidates,
        cap,
        seed=cutoff.astimezone(UTC).isoformat(),
        observations=observations,
        minimums=settings.minimums(),
    )
    chosen = set(selection.customer_ids)
    kept_statements = statements.loc[customer_rows(statements["customer_id"], chosen)]
    kept_profiles = profiles.loc[customer_rows(profiles["customer_id"], chosen)]
    return DelinquencyData(
        activity=kept_statements.reset_index(drop=True),
        profiles=kept_profiles.reset_index(drop=True),
        selection=selection,
        rows=rows,
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


async def load_expenses(source: Source, cutoff: datetime, settings: TrainerSettings) -> ExpenseData:
    """Every expense submitted by the cutoff, and each one's latest label given by then."""
    began = time.perf_counter()
    at = at_literal(cutoff)
    expenses_query = source.frame(
        f"""
        SELECT e.expense_id, e.sheet_id, e.employee_id, e.amount::float8 AS amount,
               e.category, e.merchant, (e.expense_date - DATE '1970-01-01') AS expense_date,
               e.receipt_ref, {_us("e.submitted_at")} AS submitted_at
        FROM expenses e
        WHERE e.submitted_at <= {at} AND {_stored("e", settings, at)}
        """,  # noqa: S608 - every interpolated part is a constant of this module or a typed value
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
        split=("expenses", "e"),
    )
    labels_query = source.frame(
        f"""
        SELECT DISTINCT ON (l.expense_id) l.expense_id, l.is_fraud
        FROM expense_labels l
        WHERE l.labelled_at <= {at} AND {_stored("l", settings, at)}
        ORDER BY l.expense_id, l.labelled_at DESC, l.ingested_at DESC
        """,  # noqa: S608 - every interpolated part is a constant of this module or a typed value
        dtypes={"expense_id": "str", "is_fraud": "bool"},
    )
    expenses, labels = await asyncio.gather(expenses_query, labels_query)
    frame = expenses.frame
    to_date(frame, "expense_date")
    _to_utc(frame, "submitted_at")
    return ExpenseData(
        expenses=frame,
        labels=labels.frame,
        rows=expenses.rows + labels.rows,
        seconds=time.perf_counter() - began,
    )
