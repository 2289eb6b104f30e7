"""streams.store.sheets against the real PostgreSQL: the one expense-line query and the lookups."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from schemas.features import EXPENSE_COLUMNS
from streams.store import sheets as store
from streams.store import sink
from tests.factories import START, sheet


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await sink.store_sheets(conn, [sheet(1, lines=3), sheet(2, lines=2), sheet(3, lines=4)])
    try:
        yield pool
    finally:
        await pool.close()


async def test_lines_of_sheets_come_in_the_feature_columns_oldest_first(
    pool: asyncpg.Pool,
) -> None:
    rows = await store.lines_of_sheets(pool, ["s-2", "s-1", "s-404"])
    assert list(rows[0].keys()) == list(EXPENSE_COLUMNS)
    assert [r["expense_id"] for r in rows] == ["s-1-0", "s-1-1", "s-1-2", "s-2-0", "s-2-1"]
    assert isinstance(rows[0]["amount"], float)


async def test_a_batchs_history_comes_as_lines_near_the_edges_and_totals_in_between(
    pool: asyncpg.Pool,
) -> None:
    # s-1 (3 lines, START + 1 h), s-2 (2 lines, + 2 h), s-3 (4 lines, + 3 h): employees e-1,
    # e-2, e-3; merchants merchant-0.. by line; categories travel, meals, lodging by line.
    hour = timedelta(hours=1)
    edges = [START, START + 1.5 * hour, START + 2.5 * hour, START + 3 * hour]
    keys = [["e-2"], ["merchant-3"], [], ["lodging"]]
    async with pool.acquire() as conn:
        found = await store.expense_history(conn, ["s-3-2"], keys, edges)
    # As lines: s-1 (its lodging line) and s-3 (e-3's lines share merchant-3 / lodging).
    assert sorted(row[0] for row in found.lines) == ["s-1-2", "s-3-3"]
    assert all(len(row) == len(EXPENSE_COLUMNS) for row in found.lines)
    # As totals: s-2's lines (employee e-2) by each key that reaches them.
    totals = {(row[0], row[1], row[2], row[3]): row[5] for row in found.totals}
    assert totals == {
        ("employee_category", "e-2", "travel", None): 1,
        ("employee_category", "e-2", "meals", None): 1,
        ("employee_merchant", "e-2", None, "merchant-0"): 1,
        ("employee_merchant", "e-2", None, "merchant-1"): 1,
    }
    log_sums = {row[2]: row[6] for row in found.totals if row[0] == "employee_category"}
    assert log_sums == pytest.approx({"travel": math.log1p(20.02), "meals": math.log1p(23.02)})


async def test_sheet_lookups(pool: asyncpg.Pool) -> None:
    assert await store.count_stored(pool, ["s-1", "s-3", "s-404"]) == 2
    assert await store.is_stored(pool, "s-2")
    assert not await store.is_stored(pool, "s-404")
    # The factories' sheets were submitted in January 2026: inside ten years, not inside a day.
    assert await store.recent_sheet_ids(pool, 3650, 2) == ["s-3", "s-2"]
    assert await store.recent_sheet_ids(pool, 1, 10) == []
    assert await store.stored_up_to(pool, None) == 3
    assert await store.stored_up_to(pool, START) == 0


_DAY_TOTALS_OF_LINES = """
SELECT k.key_kind,
       CASE WHEN k.key_kind = 'category' THEN '' ELSE merchant END AS merchant,
       CASE WHEN k.key_kind = 'merchant' THEN '' ELSE category END AS category,
       (submitted_at AT TIME ZONE 'UTC')::date AS day, count(*) AS lines
FROM expenses CROSS JOIN (VALUES ('category'), ('merchant'), ('merchant_category')) k (key_kind)
GROUP BY 1, 2, 3, 4
"""


async def test_day_totals_follow_the_stored_lines(pool: asyncpg.Pool) -> None:
    async def totals(conn: asyncpg.Connection) -> set[tuple[object, ...]]:
        rows = await conn.fetch(
            "SELECT key_kind, merchant, category, day, lines FROM expense_day_totals"
            " WHERE lines <> 0"
        )
        return {tuple(r) for r in rows}

    async with pool.acquire() as conn:
        await sink.store_sheets(conn, [sheet(30, lines=5), sheet(1, lines=3)])  # s-1 is stored
        assert await totals(conn) == {tuple(r) for r in await conn.fetch(_DAY_TOTALS_OF_LINES)}
        # Travel lines: the first and fourth of each sheet; s-1 (stored again) counts once.
        travel = {r[3]: r[4] for r in await totals(conn) if r[:3] == ("category", "", "travel")}
        assert travel == {START.date(): 4, START.date() + timedelta(days=1): 2}
        await conn.execute("DELETE FROM expenses WHERE sheet_id = 's-3'")
        assert await totals(conn) == {tuple(r) for r in await conn.fetch(_DAY_TOTALS_OF_LINES)}
        await conn.execute("TRUNCATE expenses")
        assert await totals(conn) == set()
