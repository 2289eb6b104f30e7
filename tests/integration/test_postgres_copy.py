"""The real PostgreSQL takes 100,000 rows through asyncpg COPY and gives them back unchanged."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

ROWS = 100_000


def _rows() -> list[tuple[int, str, Decimal, datetime]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        (
            i,
            hashlib.sha1(str(i).encode(), usedforsecurity=False).hexdigest(),
            Decimal(i % 100_000) / 100,
            start + timedelta(seconds=i),
        )
        for i in range(ROWS)
    ]


async def test_copy_100k_rows_and_read_back(db: asyncpg.Connection) -> None:
    await db.execute(
        "CREATE TABLE copy_check (id bigint PRIMARY KEY, digest text NOT NULL, "
        "amount numeric(12, 2) NOT NULL, at timestamptz NOT NULL)"
    )
    rows = _rows()
    status = await db.copy_records_to_table(
        "copy_check", records=rows, columns=["id", "digest", "amount", "at"]
    )
    assert status == f"COPY {ROWS}"
    back = await db.fetch("SELECT id, digest, amount, at FROM copy_check ORDER BY id")
    assert [tuple(r) for r in back] == rows
    server_sum = await db.fetchval("SELECT sum(amount) FROM copy_check")
    assert server_sum == sum(r[2] for r in rows)
    await db.execute("DROP TABLE copy_check")
