"""Sheets and expense lines as stored: the lines of sheets, the history expense features read,
and the web's sheet lookups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from schemas.features import HISTORY_KEYS


class Queryable(Protocol):
    """An asyncpg pool (a connection per statement) or a connection the caller holds."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...

    async def execute(self, query: str, *args: Any) -> str: ...


EXPENSE_LINES = (
    "SELECT expense_id, sheet_id, employee_id, amount::float8 AS amount, category, merchant, "
    "expense_date, receipt_ref, submitted_at FROM expenses "
)
"""Expense lines in the columns of `schemas.features.EXPENSE_COLUMNS`, before a WHERE clause."""

_OF_SHEETS = EXPENSE_LINES + (
    "WHERE sheet_id = ANY($1::text[]) ORDER BY submitted_at, sheet_id, expense_id"
)

# The history of a batch's lines, in one round trip: $1 the batch's expense ids, $2..$5 its
# employees, merchants, receipts and categories, $6..$9 the times of a HistorySpan. Lines in
# [$6, $7) and [$8, $9] come as lines (those sharing a key with the batch), the whole days in
# [$7, $8) as totals per key (what HistorySummary holds): from the lines for employees and
# receipts, from expense_day_totals for the busy keys. Every interpolated part is a constant.
_KEY_FILTER = {"employee_id": "$2", "merchant": "$3", "receipt_ref": "$4", "category": "$5"}


def _is_one_of(column: str, table_column: str | None = None) -> str:
    """`column` among its parameter's values; free text through its md5 index (migration 0009)."""
    values = _KEY_FILTER[column]
    if column == "employee_id":
        return f"employee_id = ANY({values}::text[])"
    hashed = table_column or f"md5({column})::uuid"
    return (
        f"({hashed} = ANY(ARRAY(SELECT md5(v)::uuid FROM unnest({values}::text[]) v)) "  # noqa: S608
        f"AND {column} = ANY({values}::text[]))"
    )


_SHARING_A_KEY = "(" + " OR ".join(_is_one_of(column) for column in _KEY_FILTER) + ")"
_HISTORY_LINES = (
    "SELECT NULL::text AS totals_of, expense_id, sheet_id, employee_id, amount::float8, "  # noqa: S608
    "category, merchant, expense_date, receipt_ref, submitted_at, NULL::bigint AS lines, "
    "NULL::float8 AS log_amount_sum FROM expenses "
    "WHERE submitted_at >= {since} AND submitted_at {before} {until} "
    f"AND NOT expense_id = ANY($1::text[]) AND {_SHARING_A_KEY}"
)
_DAY_TOTALS = {"category", "merchant", "merchant_category"}
"""Keys whose totals expense_day_totals keeps (see migration 0009)."""


def _totals_of(name: str, columns: tuple[str, ...]) -> str:
    def key(column: str) -> str:
        return column if column in columns else "NULL::text"

    shown = (
        f"SELECT '{name}'::text, NULL::text, NULL::text, {key('employee_id')}, NULL::float8, "
        f"{key('category')}, {key('merchant')}, NULL::date, {key('receipt_ref')}, "
        "NULL::timestamptz, "
    )
    if name in _DAY_TOTALS:
        wanted = _is_one_of(columns[0], f"{columns[0]}_md5")
        return (
            shown + "sum(lines)::bigint, sum(log_amount_sum) FROM expense_day_totals "
            f"WHERE key_kind = '{name}' AND {wanted} AND day >= ($7 AT TIME ZONE 'UTC')::date "
            f"AND day < ($8 AT TIME ZONE 'UTC')::date GROUP BY {', '.join(columns)}"
        )
    wanted = _is_one_of(columns[0])
    return (
        shown + "count(*), sum(ln(1 + greatest(amount::float8, 0))) FROM expenses "
        f"WHERE {wanted} AND submitted_at >= $7 AND submitted_at < $8 "
        f"GROUP BY {', '.join(columns)}"
    )


_HISTORY = "\nUNION ALL\n".join(
    [
        _HISTORY_LINES.format(since="$6", before="<", until="$7"),
        _HISTORY_LINES.format(since="$8", before="<=", until="$9"),
        *(_totals_of(name, columns) for name, columns in HISTORY_KEYS.items()),
    ]
)


@dataclass(frozen=True)
class StoredHistory:
    """What `expense_history` read: lines (EXPENSE_COLUMNS order) and totals per key."""

    lines: list[tuple[Any, ...]]
    totals: list[tuple[Any, ...]]
    """(key name, employee_id, category, merchant, receipt_ref, lines, log_amount_sum)."""


async def expense_history(
    conn: asyncpg.Connection,
    expense_ids: Sequence[str],
    keys: Sequence[Sequence[str]],
    span: Sequence[datetime],
) -> StoredHistory:
    """The stored history of a batch: `keys` are its employees, merchants, receipts and
    categories, `span` the four times of its HistorySpan; the batch's own lines are left out."""
    employees, merchants, receipts, categories = (list(k) for k in keys)
    since, summary_since, summary_until, until = span
    # A statement of its own each time, planned for these keys and times: a cached one turns to
    # a generic plan after five runs, and that plan reads some ten times longer here.
    statement = await conn.prepare(_HISTORY)
    rows = await statement.fetch(
        list(expense_ids),
        employees,
        merchants,
        receipts,
        categories,
        since,
        summary_since,
        summary_until,
        until,
    )
    lines = [tuple(r)[1:10] for r in rows if r[0] is None]
    totals = [
        (r[0], r["employee_id"], r["category"], r["merchant"], r["receipt_ref"], *tuple(r)[10:])
        for r in rows
        if r[0] is not None
    ]
    return StoredHistory(lines, totals)


async def lines_of_sheets(db: Queryable, sheet_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Every stored line of these sheets, oldest submission first."""
    rows: list[asyncpg.Record] = await db.fetch(_OF_SHEETS, list(sheet_ids))
    return rows


async def count_stored(db: Queryable, sheet_ids: Sequence[str]) -> int:
    """How many of these sheets are stored."""
    found = await db.fetchval(
        "SELECT count(*) FROM sheets WHERE sheet_id = ANY($1::text[])", list(sheet_ids)
    )
    return int(found)


async def is_stored(db: Queryable, sheet_id: str) -> bool:
    found = await db.fetchval("SELECT 1 FROM sheets WHERE sheet_id = $1", sheet_id)
    return found is not None


async def recent_sheet_ids(db: Queryable, days: int, limit: int) -> list[str]:
    """Sheets submitted in the last `days` days, newest first, at most `limit`."""
    rows = await db.fetch(
        "SELECT sheet_id FROM sheets WHERE submitted_at > now() - make_interval(days => $1)"
        " ORDER BY submitted_at DESC LIMIT $2",
        days,
        limit,
    )
    return [str(r["sheet_id"]) for r in rows]


async def stored_up_to(db: Queryable, cutoff: datetime | None) -> int:
    """Sheets stored at or before `cutoff` (all of them when it is None)."""
    found = await db.fetchval(
        "SELECT count(*) FROM sheets WHERE ingested_at <= coalesce($1, now())", cutoff
    )
    return int(found)
