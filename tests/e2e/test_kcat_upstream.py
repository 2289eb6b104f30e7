"""kcat as the upstream producer: JSON lines from files → stored → retrained → models promoted."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import Counter
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Consumer, TopicPartition

from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
from retrainer.simulator.scenario import Scenario
from schemas.base import ModelFamily
from schemas.codec import Codec
from schemas.model_updated import ModelUpdated
from tests.e2e.conftest import require_program
from tests.factories import wait_until
from tests.integration.streams.conftest import Workers, read_all

pytestmark = pytest.mark.e2e

CODEC = Codec()


def export_for_kcat(services: Workers, out: Path) -> dict[str, tuple[Path, int]]:
    """Simulated upstream traffic as one `key<TAB>json` file per topic, in time order.

    150 customers with a year of statements (enough delinquent ones to train on) and 30 expense
    sheets with their auditors' labels, ids prefixed so they are this test's own.
    """
    scenario = Scenario(
        ScenarioConfig(
            seed=7,
            id_prefix=services.prefix,
            customers=CustomerConfig(customers=150, statements_per_customer=12),
            expenses=ExpenseConfig(sheets=30),
        )
    )
    out.mkdir(parents=True, exist_ok=True)
    handles = {}
    counts: Counter[str] = Counter()
    try:
        for message in scenario.messages():
            if message.topic not in handles:
                handles[message.topic] = (out / f"{message.topic}.kv").open("wb")
            assert b"\t" not in message.key
            assert b"\n" not in message.value
            handles[message.topic].write(message.key + b"\t" + message.value + b"\n")
            counts[message.topic] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return {topic: (out / f"{topic}.kv", count) for topic, count in counts.items()}


def kcat_produce(bootstrap: str, topic: str, path: Path) -> None:
    """`kcat -P`: one message per line of `path`, the key before the tab, the value after."""
    kcat = require_program("kcat")
    done = subprocess.run(
        [kcat, "-P", "-b", bootstrap, "-t", topic, "-K", "\\t", "-l", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"kcat failed on {topic}: {done.stderr.decode()[-2000:]}"


def messages_in(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4()}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        )
    finally:
        consumer.close()


def promotions(services: Workers) -> dict[ModelFamily, ModelUpdated]:
    """The latest model-updated event of each family on this test's topic."""
    latest: dict[ModelFamily, ModelUpdated] = {}
    for _, value in read_all(services.stack.bootstrap, services.topic("model-updated")):
        update = CODEC.decode_as(ModelUpdated, value)
        latest[update.family] = update
    return latest


def champions(database_url: str) -> dict[str, tuple[str, str | None]]:
    """Family → (champion version, the retraining log's trigger reason for it)."""

    async def read() -> dict[str, tuple[str, str | None]]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT v.family, v.version, l.trigger_reason FROM model_versions v "
                "LEFT JOIN model_retraining_log l ON l.request_id = v.request_id "
                "WHERE v.status = 'champion'"
            )
        finally:
            await conn.close()
        return {row["family"]: (row["version"], row["trigger_reason"]) for row in rows}

    return asyncio.run(read())


def assert_scorers_serve(services: Workers, update: ModelUpdated) -> None:
    """Everything the running workers show once `update` has been promoted.

    The test calls this for each promoted family; checks of the scorers belong here too
    (the reload counted, `retrainer_model_info` at the new version, scores carrying it).
    """

    def adopted() -> bool:
        status = services.get(f"/retraining/status?family={update.family.value}")
        return bool(status["model_version"] == update.version)

    wait_until(adopted, 60, f"the workers' policy to count from {update.version}")

    family = update.family.value

    def reloaded() -> bool:
        current = services.get("/models")["loaded"][family]["version"]
        return bool(
            current == update.version
            and services.metric("retrainer_model_info", family=family, version=update.version) == 1
            and services.metric("retrainer_model_reloads_total", family=family, outcome="loaded")
            >= 1
        )

    wait_until(reloaded, 60, f"the scorers to reload {update.version}")


def test_kcat_upstream_files_lead_to_promoted_models(services: Workers, tmp_path: Path) -> None:
    bootstrap = services.stack.bootstrap
    files = export_for_kcat(services, tmp_path / "upstream")
    assert set(files) == {"customer-created", "customer-activity", "expense-sheet", "expense-label"}
    services.create_topics()
    services.start_with_trainer()

    def stored(topic: str, count: int) -> bool:
        return services.metric("retrainer_events_stored_total", topic=topic) >= count

    # History first (statements, labels), then what the triggers count: customers and sheets.
    for topic in ("customer-activity", "expense-label", "customer-created", "expense-sheet"):
        path, count = files[topic]
        kcat_produce(bootstrap, services.topic(topic), path)
        assert messages_in(bootstrap, services.topic(topic)) == count
        wait_until(partial(stored, topic, count), 60, f"all {count} {topic} stored")
    assert services.metric("retrainer_dead_letters_total") == 0

    updates = wait_until(
        lambda: (found := promotions(services)) and len(found) == 2 and found,
        150,
        "model-updated for both families",
    )
    assert isinstance(updates, dict)
    registry = champions(services.database_url)
    delinquency = updates[ModelFamily.DELINQUENCY]
    assert registry["delinquency"][0] == delinquency.version
    assert registry["delinquency"][1] is not None
    assert registry["delinquency"][1].startswith("New customers: ")
    assert registry["expense-fraud"][0] == updates[ModelFamily.EXPENSE_FRAUD].version
    assert (registry["expense-fraud"][1] or "").startswith("New sheets: ")
    assert delinquency.samples > 0
    assert 0.5 < delinquency.metrics["auc"] <= 1

    for update in updates.values():
        assert_scorers_serve(services, update)
