"""Migrations apply to an empty database, then are a no-op; the seed's tables keep their shape."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from edge.migrations import MigrationError, discover, migrate, pending
from tests.conftest import Stack

SEED_COLUMNS = {
    "model_retraining_log": [
        "retrain_id",
        "retrain_date",
        "customers_trained",
        "samples_trained",
        "auc_score",
        "precision_score",
        "recall_score",
        "f1_score",
        "model_version",
        "trigger_reason",
        "training_duration_seconds",
    ],
    "customer_training_status": [
        "customer_id",
        "first_seen",
        "last_trained",
        "included_in_training",
    ],
    "customers": ["customer_id", "created_at"],
}


@pytest.fixture
async def empty_database(stack: Stack) -> str:
    name = f"retrainer_mig_{stack.session_id}"
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return stack.dsn.rpartition("/")[0] + "/" + name


async def _columns(conn: asyncpg.Connection, table: str) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        table,
    )
    return [(r["column_name"], r["data_type"]) for r in rows]


async def test_migrations_apply_once_and_keep_seed_columns(empty_database: str) -> None:
    first = await migrate(empty_database)
    assert [m.version for m in first] == [m.version for m in discover()]
    assert len(first) >= 2
    second = await migrate(empty_database)
    assert second == []

    conn = await asyncpg.connect(empty_database)
    try:
        recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
        assert recorded == len(first)
        for table, seed in SEED_COLUMNS.items():
            columns = await _columns(conn, table)
            assert [name for name, _ in columns[: len(seed)]] == seed, table
        status = dict(await _columns(conn, "customer_training_status"))
        assert status["customer_id"] == "text"
        assert status["included_in_training"] == "boolean"
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
        assert {
            "sheets",
            "expenses",
            "expense_labels",
            "customer_activity",
            "expense_scores",
            "customer_scores",
            "model_versions",
            "model_artifacts",
            "retrain_requests",
        } <= tables
    finally:
        await conn.close()


async def test_an_edited_migration_is_refused(empty_database: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE edited_check (id int);")
    assert len(await migrate(empty_database, tmp_path)) == 1
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE edited_check (id bigint);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(empty_database, tmp_path)


def test_badly_named_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_snake_name"):
        discover(tmp_path)


async def test_pending_lists_what_the_worker_start_refuses_until_migrated(
    empty_database: str,
) -> None:
    from streams.bootstrap import SchemaBehind, check_schema

    every = [m.version for m in discover()]
    assert [m.version for m in await pending(empty_database)] == every
    with pytest.raises(SchemaBehind, match="retrainer db migrate"):
        await asyncio.to_thread(check_schema, empty_database)
    await migrate(empty_database)
    assert await pending(empty_database) == []
    await asyncio.to_thread(check_schema, empty_database)
