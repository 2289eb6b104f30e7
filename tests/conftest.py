"""Session fixtures over the real local stack: unique topics and a private database per run."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import asyncpg
import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from retrainer.stack import manager
from retrainer.stack.errors import StackError
from retrainer.stack.settings import StackSettings

# Fits use every core through OpenMP (XGBoost, scikit-learn). With several test processes on
# few cores, OpenMP threads that spin while they wait take the cores the other processes need:
# a one-second XGBoost fit took 10 to 30 s on a loaded 2-core machine. Passive waiting changes
# how idle threads wait, not what is computed. The runtime reads this when it loads, so it is
# set here, before any test module imports it (nothing above does); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TIERS = ("tests/integration/", "tests/faults/", "tests/e2e/", "tests/unit/")
"""The order xdist hands test files to its processes: the files that start services (long, few
tests each) first, the many quick unit files last, so both processes run out of work together
instead of one waiting alone for a slow file that came last."""


def _tier(item: pytest.Item) -> int:
    path = item.nodeid
    return next((rank for rank, tier in enumerate(TIERS) if path.startswith(tier)), len(TIERS))


def pytest_configure(config: pytest.Config) -> None:
    # xdist's default sorts files by their number of tests, which puts the slow one-test files
    # at the very end; the tier order below is kept instead.
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, run the tiers in TIERS order (a stable sort: files keep their order)."""
    if hasattr(config, "workerinput"):
        items.sort(key=_tier)


@dataclass(frozen=True)
class Stack:
    """Addresses of the running broker and database server."""

    bootstrap: str
    dsn: str
    session_id: str


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The running stack, started when needed; a stack that cannot start fails the tests."""
    settings = StackSettings()
    try:
        manager.up(settings)
    except StackError as exc:
        pytest.fail(f"the local stack is not available: {exc}", pytrace=False)
    return Stack(settings.bootstrap, settings.dsn, uuid.uuid4().hex[:10])


TopicFactory = Callable[..., str]


@pytest.fixture(scope="session")
def make_topic(stack: Stack) -> Iterator[TopicFactory]:
    """Create topics named uniquely for this test session; all are deleted at its end."""
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    created: list[str] = []

    def create(name: str, partitions: int = 4, config: dict[str, str] | None = None) -> str:
        full = f"test-{stack.session_id}-{name}-{len(created)}"
        futures = admin.create_topics(
            [NewTopic(full, num_partitions=partitions, replication_factor=1, config=config or {})]
        )
        for future in futures.values():
            future.result(timeout=30)
        created.append(full)
        return full

    yield create
    if created:
        for future in admin.delete_topics(created, operation_timeout=30).values():
            future.result(timeout=60)


@pytest.fixture(scope="session")
def database_url(stack: Stack) -> Iterator[str]:
    """A database private to this test session (not migrated), dropped at its end."""
    from retrainer.harness import create_database, drop_database

    name = f"retrainer_test_{stack.session_id}"
    yield asyncio.run(create_database(stack.dsn, name, migrated=False))
    asyncio.run(drop_database(stack.dsn, name))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the session's private database."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """The session's private database with every migration applied."""
    from edge.migrations import migrate

    asyncio.run(migrate(database_url))
    return database_url


@pytest.fixture
async def fresh_database_url(stack: Stack) -> AsyncIterator[str]:
    """A migrated database of its own for one test, dropped afterwards."""
    from retrainer.harness import create_database, drop_database

    name = f"retrainer_t_{stack.session_id}_{uuid.uuid4().hex[:6]}"
    yield await create_database(stack.dsn, name)
    await drop_database(stack.dsn, name)
