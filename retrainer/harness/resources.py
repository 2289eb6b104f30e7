"""A run's own database and topics on the stack's servers: created before, removed after."""

from __future__ import annotations

from collections.abc import Iterable


def with_database(dsn: str, name: str) -> str:
    """`dsn` pointing at the database `name` on the same server."""
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{name}"


async def create_database(admin_dsn: str, name: str, migrated: bool = True) -> str:
    """Create the database `name` on `admin_dsn`'s server (with every migration applied unless
    `migrated` is false); returns its address."""
    import asyncpg

    from edge.migrations import migrate

    conn = await asyncpg.connect(admin_dsn, timeout=15)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(admin_dsn, name)
    if migrated:
        await migrate(url)
    return url


async def drop_database(admin_dsn: str, name: str) -> None:
    """Drop the database `name`, closing its connections first; nothing if it is not there."""
    import asyncpg

    conn = await asyncpg.connect(admin_dsn, timeout=15)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def delete_topics(bootstrap: str, prefix: str) -> list[str]:
    """Delete every topic named `<prefix>-…` (Faust's internal ones too); returns the problems."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    names = [t for t in admin.list_topics(timeout=15).topics if t.startswith(f"{prefix}-")]
    problems: list[str] = []
    if names:
        for name, future in admin.delete_topics(names, operation_timeout=30).items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                problems.append(f"topic {name} not deleted: {exc}")
    return problems


def delete_groups(bootstrap: str, groups: Iterable[str]) -> list[str]:
    """Delete the consumer groups (one never joined is no problem); returns the problems."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 4})
    problems: list[str] = []
    for group, future in admin.delete_consumer_groups(list(groups), request_timeout=15).items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:
                problems.append(f"consumer group {group} not deleted: {exc}")
    return problems
