"""The versioned SQL migrations in schemas/migrations: applied in order, each exactly once, by
`retrainer db migrate`; the services check at start that none is pending."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

import schemas

MIGRATIONS = Path(schemas.__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every process that migrates.
_LOCK_KEY = 0x7265747261696E  # "retrain"


class MigrationError(Exception):
    """A migration file is malformed, or an applied one was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: its version number, name, text and checksum."""

    version: int
    name: str
    sql: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(folder: Path = MIGRATIONS) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


async def migrate(dsn: str, folder: Path = MIGRATIONS) -> list[Migration]:
    """Apply pending migrations; returns those applied now (empty when up to date)."""
    migrations = discover(folder)
    conn = await asyncpg.connect(dsn, timeout=30)
    try:
        # Several services may start at once; one migrates while the others wait.
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, sha256 char(64) NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            applied = {
                row["version"]: row["sha256"]
                for row in await conn.fetch("SELECT version, sha256 FROM schema_migrations")
            }
            done: list[Migration] = []
            for migration in migrations:
                if migration.version in applied:
                    if applied[migration.version] != migration.sha256:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead of editing it"
                        )
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        migration.sha256,
                    )
                done.append(migration)
            return done
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def pending(dsn: str, folder: Path = MIGRATIONS) -> list[Migration]:
    """The migrations this code has that the database has not applied (all of them on an empty
    database); the database is only read."""
    migrations = discover(folder)
    conn = await asyncpg.connect(dsn, timeout=15)
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return migrations
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
    finally:
        await conn.close()
    return [migration for migration in migrations if migration.version not in applied]
