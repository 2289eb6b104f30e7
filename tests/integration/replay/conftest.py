"""100k simulated events on topics and in a database private to this module, with their truth."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from retrainer.harness import create_database
from retrainer.harness import drop_database as drop
from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.publish import PublishOptions, run_publish
from retrainer.simulator.scenario import Scenario
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams.bootstrap import ensure_topics
from streams.settings import StreamsSettings
from tests.conftest import Stack
from tests.factories import new_prefix
from tests.services import Workers, delete_prefixed_topics

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
    folder: Path

    def workers(self, logs: Path) -> Workers:
        """Workers of this module's topics and database, logging to `logs`."""
        return Workers(self.stack, self.database_url, logs, prefix=self.prefix)

    @property
    def app_id(self) -> str:
        return f"{self.prefix}-worker"

    def env(self, port: int = 0) -> dict[str, str]:
        """The environment a worker of this module (or a command run for it) gets."""
        return self.workers(self.folder).env(port)

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def settings(self, database_url: str | None = None) -> StreamsSettings:
        """The settings a worker of this module runs with, for in-process code."""
        workers = self.workers(self.folder)
        if database_url is not None:
            workers.database_url = database_url
        return workers.settings()


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


def database(stack: Stack, name: str) -> str:
    """A migrated database `name` on the stack's server; returns its address."""
    return asyncio.run(create_database(stack.dsn, name))


def drop_database(stack: Stack, name: str) -> None:
    asyncio.run(drop(stack.dsn, name))


@pytest.fixture(scope="module")
def bulk(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bulk]:
    prefix = new_prefix()
    name = f"retrainer_replay_{stack.session_id}_{uuid.uuid4().hex[:6]}"
    url = database(stack, name)
    folder = tmp_path_factory.mktemp("replay")
    bulk = Bulk(stack, prefix, url, truth_of(Scenario(SCENARIO)), folder)
    try:
        ensure_topics(bulk.settings())
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
