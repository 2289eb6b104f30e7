"""streams.store.sheets against the real PostgreSQL: the one expense-line query and the lookups."""

from __future__ import annotations

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


async def test_newest_lines_and_lines_before_a_moment(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        newest = await store.newest_lines(conn, 5)
        before = await store.lines_before(conn, START + timedelta(hours=2), 100)
        nothing = await store.lines_before(conn, None, 100)
    assert {r["sheet_id"] for r in newest} == {"s-3", "s-2"}
    assert len(newest) == 5
    assert {r["sheet_id"] for r in before} == {"s-1"}
    assert nothing == []


async def test_sheet_lookups(pool: asyncpg.Pool) -> None:
    assert await store.count_stored(pool, ["s-1", "s-3", "s-404"]) == 2
    assert await store.is_stored(pool, "s-2")
    assert not await store.is_stored(pool, "s-404")
    # The factories' sheets were submitted in January 2026: inside ten years, not inside a day.
    assert await store.recent_sheet_ids(pool, 3650, 2) == ["s-3", "s-2"]
    assert await store.recent_sheet_ids(pool, 1, 10) == []
    assert await store.stored_up_to(pool, None) == 3
    assert await store.stored_up_to(pool, START) == 0
