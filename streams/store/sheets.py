"""Sheets and expense lines as stored: the one expense-line query and the web's sheet lookups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg


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
_NEWEST = EXPENSE_LINES + "ORDER BY submitted_at DESC LIMIT $1"
_BEFORE = EXPENSE_LINES + "WHERE submitted_at < $1 ORDER BY submitted_at DESC LIMIT $2"


async def lines_of_sheets(db: Queryable, sheet_ids: Sequence[str]) -> list[asyncpg.Record]:
    """Every stored line of these sheets, oldest submission first."""
    rows: list[asyncpg.Record] = await db.fetch(_OF_SHEETS, list(sheet_ids))
    return rows


async def newest_lines(db: Queryable, limit: int) -> list[asyncpg.Record]:
    """The `limit` most recently submitted lines, newest first."""
    rows: list[asyncpg.Record] = await db.fetch(_NEWEST, limit)
    return rows


async def lines_before(db: Queryable, before: datetime | None, limit: int) -> list[asyncpg.Record]:
    """The `limit` newest lines submitted before `before` (none when it is None), newest first."""
    rows: list[asyncpg.Record] = await db.fetch(_BEFORE, before, limit)
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
