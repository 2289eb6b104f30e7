"""The service harness against the real stack: a run's database and topics come and go whole."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
from confluent_kafka.admin import AdminClient

from retrainer.harness import (
    TOPICS,
    Scope,
    create_database,
    delete_groups,
    delete_topics,
    drop_database,
)
from retrainer.harness.settings import streams_settings
from streams.bootstrap import ensure_topics, policy_changelog
from tests.conftest import Stack
from tests.factories import new_prefix, wait_until


async def _exists(dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def test_a_run_database_is_created_migrated_and_dropped(stack: Stack) -> None:
    name = f"retrainer_h_{uuid.uuid4().hex[:8]}"
    url = await create_database(stack.dsn, name)
    try:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            assert await conn.fetchval("SELECT to_regclass('model_retraining_log')") is not None
        finally:
            await conn.close()
    finally:
        await drop_database(stack.dsn, name)
    assert not await _exists(stack.dsn, name)
    await drop_database(stack.dsn, name)  # a second drop finds nothing to do


def test_a_runs_topics_are_made_as_the_worker_makes_them_and_deleted_whole(
    stack: Stack, tmp_path: Path
) -> None:
    scope = Scope(stack.bootstrap, stack.dsn, new_prefix(), tmp_path, "a-token-long-enough")
    settings = streams_settings(scope)
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    try:
        ensure_topics(settings)
        expected = {scope.topic(name) for name in TOPICS} | {policy_changelog(settings)}

        def made() -> set[str]:
            return {t for t in admin.list_topics(timeout=15).topics if t.startswith(scope.prefix)}

        # The broker acknowledges a creation before every connection's metadata lists the topic.
        wait_until(lambda: made() == expected, 30, "the run's topics in the metadata")
        # Every topic under the run's prefix, the policy changelog under the run's app id.
        assert made() == expected
        assert policy_changelog(settings).startswith(f"{scope.app_id}-")
    finally:
        problems = delete_topics(stack.bootstrap, scope.prefix)
    assert problems == []

    def gone() -> bool:
        # The broker acknowledges a deletion before its metadata stops listing the topic.
        topics = admin.list_topics(timeout=15).topics
        return not [t for t in topics if t.startswith(f"{scope.prefix}-")]

    wait_until(gone, 30, f"the topics {scope.prefix}-* to be gone")
    # Groups that never joined are nothing to delete, and no problem.
    assert delete_groups(stack.bootstrap, scope.groups) == []


def test_the_services_environment_and_the_in_process_settings_name_the_same_topics(
    stack: Stack, tmp_path: Path
) -> None:
    scope = Scope(stack.bootstrap, stack.dsn, new_prefix(), tmp_path, "a-token-long-enough")
    env = scope.env()
    topics = streams_settings(scope).topics
    for name in TOPICS:
        key = name.replace("-", "_")
        assert getattr(topics, key) == scope.topic(name)
        assert scope.topic(name) in env.values()
