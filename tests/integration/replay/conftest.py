"""100k simulated events on topics and in a database private to this module, with their truth."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from retrainer.migrate import migrate
from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.publish import PublishOptions, run_publish
from retrainer.simulator.scenario import Scenario
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams.bootstrap import ensure_topics
from streams.settings import StreamsSettings
from tests.conftest import Stack
from tests.factories import new_prefix, worker_env
from tests.integration.streams.conftest import delete_prefixed_topics

# 7,000 customers with 12 statements each, 3,000 sheets and their late labels: 100,442 events.
SCENARIO = ScenarioConfig.of(seed=11, customers=7000, sheets=3000, bad_rate=0.002)

# The seed's tables and everything the sink, scorers and trainer write; policy_state is left
# out on purpose (it is the state that is lost and rebuilt).
TABLES: tuple[str, ...] = (
    "sheets",
    "expenses",
    "expense_labels",
    "customers",
    "customer_activity",
    "customer_training_status",
    "expense_scores",
    "customer_scores",
    "retrain_requests",
    "model_versions",
    "model_artifacts",
    "model_retraining_log",
)


@dataclass(frozen=True)
class Truth:
    """What the published scenario must leave in PostgreSQL."""

    published: dict[str, int]
    """Messages per default topic name, malformed ones included."""
    valid: dict[str, int]
    bad: int
    expense_lines: int

    @property
    def total(self) -> int:
        return sum(self.published.values())


@dataclass(frozen=True)
class Bulk:
    """The module's topics (behind `prefix`), database and the truth of what was published."""

    stack: Stack
    prefix: str
    database_url: str
    truth: Truth

    @property
    def app_id(self) -> str:
        return f"{self.prefix}-worker"

    def env(self, port: int = 0) -> dict[str, str]:
        return worker_env(self.stack.bootstrap, self.database_url, self.prefix, port)

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @contextmanager
    def environment(self, database_url: str | None = None) -> Iterator[StreamsSettings]:
        """RETRAINER_* set as a worker of this module sees them (settings read the environment)."""
        env = self.env()
        if database_url is not None:
            env["RETRAINER_DATABASE_URL"] = database_url
        saved = dict(os.environ)
        os.environ.update({k: v for k, v in env.items() if k.startswith("RETRAINER_")})
        try:
            yield StreamsSettings()
        finally:
            os.environ.clear()
            os.environ.update(saved)


def truth_of(scenario: Scenario) -> Truth:
    spoiled = {bad.position for bad in scenario.bad_messages}
    valid: Counter[str] = Counter()
    expense_ids: set[str] = set()
    for position, event in enumerate(scenario.events()):
        if position in spoiled:
            continue
        valid[event.TOPIC] += 1
        if isinstance(event, ExpenseSheetSubmitted):
            expense_ids.update(line.expense_id for line in event.lines)
    return Truth(scenario.counts(), dict(valid), len(spoiled), len(expense_ids))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def database(stack: Stack, name: str) -> str:
    head, _, _ = stack.dsn.rpartition("/")
    asyncio.run(_admin(stack.dsn, f'CREATE DATABASE "{name}"'))
    url = f"{head}/{name}"
    asyncio.run(migrate(url))
    return url


def drop_database(stack: Stack, name: str) -> None:
    asyncio.run(_admin(stack.dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def bulk(stack: Stack) -> Iterator[Bulk]:
    prefix = new_prefix()
    name = f"retrainer_replay_{stack.session_id}_{uuid.uuid4().hex[:6]}"
    url = database(stack, name)
    bulk = Bulk(stack, prefix, url, truth_of(Scenario(SCENARIO)))
    try:
        with bulk.environment() as settings:
            ensure_topics(settings)
        summary = run_publish(
            PublishOptions(
                scenario=SCENARIO,
                bootstrap=stack.bootstrap,
                topic_overrides={topic: bulk.topic(topic) for topic in UPSTREAM_TOPICS},
            )
        )
        assert summary.ok, summary.failure_samples
        assert summary.total_sent == bulk.truth.total >= 100_000
        yield bulk
    finally:
        delete_prefixed_topics(stack.bootstrap, prefix)
        drop_database(stack, name)
        for path in Path(tempfile.gettempdir()).glob(f"retrainer-{prefix}-*"):
            shutil.rmtree(path, ignore_errors=True)


async def table_checksums(database_url: str) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent digest of every row, per table."""
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        out: dict[str, tuple[int, str]] = {}
        for table in TABLES:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, "
                "coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') AS digest "
                f"FROM {table} t"
            )
            out[table] = (int(row["n"]), str(row["digest"]))
        return out
    finally:
        await conn.close()
