"""`retrainer publish` on the real broker: counts per topic, JSON Schema validity, idempotent loads.

The simulator lands what its scenario says on each topic; kcat reads a message of each and it
validates against the exported JSON Schema; loading the same export twice (`--from-file`) changes
nothing in PostgreSQL once ingested and asks for no second retraining.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import jsonschema
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.scenario import Scenario
from schemas.base import ModelFamily
from schemas.codec import Codec
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from streams.replay import group_members
from tests.conftest import Stack
from tests.factories import ROOT, new_prefix, publish, wait_until
from tests.integration.replay.conftest import table_checksums
from tests.integration.streams.conftest import Workers, read_all

SCHEMAS = ROOT / "schemas" / "json"
CODEC = Codec()
# kcat: the first message of the topic, its value only, then exit.
ONE_FROM_THE_START = ("-o", "beginning", "-c", "1", "-e", "-q", "-f", "%s\n")


def _run(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """A `retrainer` command with --json; its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def _message_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Messages in each topic, from the watermark offsets."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        counts: dict[str, int] = {}
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            counts[topic] = 0
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                counts[topic] += high - low
        return counts
    finally:
        consumer.close()


@pytest.fixture
def workers(stack: Stack, fresh_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes on topics and a database private to one test."""
    group = Workers(stack, fresh_database_url, tmp_path / "logs")
    (tmp_path / "logs").mkdir()
    yield group
    group.close()


def _idle(workers: Workers) -> bool:
    admin = AdminClient({"bootstrap.servers": workers.stack.bootstrap})
    return group_members(admin, f"{workers.prefix}-worker") == 0


@pytest.fixture
def prefixed_topics(stack: Stack) -> Iterator[str]:
    """The four upstream topics under a prefix private to one test; deleted afterwards."""
    prefix = f"{new_prefix()}-"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    names = [f"{prefix}{topic}" for topic in UPSTREAM_TOPICS]
    for future in admin.create_topics([NewTopic(n, 4, 1) for n in names]).values():
        future.result(timeout=30)
    yield prefix
    for future in admin.delete_topics(names, operation_timeout=30).values():
        future.result(timeout=60)


def test_publish_lands_the_scenario_and_kcat_reads_schema_valid_json(
    stack: Stack, prefixed_topics: str
) -> None:
    kcat = shutil.which("kcat")
    assert kcat is not None, "kcat is missing; `make setup` installs it"
    summary = _run(
        [
            "publish",
            "--customers",
            "1000",
            "--sheets",
            "500",
            "--seed",
            "7",
            "--bootstrap",
            stack.bootstrap,
            "--topic-prefix",
            prefixed_topics,
        ]
    )
    expected = Scenario(ScenarioConfig.of(seed=7, customers=1000, sheets=500)).counts()
    assert set(expected) == set(UPSTREAM_TOPICS)
    names = {topic: f"{prefixed_topics}{topic}" for topic in UPSTREAM_TOPICS}
    assert summary["sent"] == {names[t]: n for t, n in expected.items()}
    assert summary["delivery_failures"] == 0
    landed = _message_counts(stack.bootstrap, list(names.values()))
    assert landed == {names[t]: n for t, n in expected.items()}

    checker = jsonschema.FormatChecker()
    for topic, name in names.items():
        read = subprocess.run(
            [kcat, "-b", stack.bootstrap, "-C", "-t", name, *ONE_FROM_THE_START],
            capture_output=True,
            timeout=60,
            check=True,
        )
        payload = json.loads(read.stdout.decode().strip())
        schema = json.loads((SCHEMAS / f"{topic}.json").read_text())
        validator = jsonschema.validators.validator_for(schema)(schema, format_checker=checker)
        errors = [error.message for error in validator.iter_errors(payload)]
        assert errors == [], f"{topic}: {errors}"
        # The format checker really checks: a broken instant is refused.
        broken = {**payload, "occurred_at": "yesterday"}
        assert not validator.is_valid(broken), f"{topic}: the format checker let 'yesterday' pass"
        CODEC.decode(topic, read.stdout.strip())


def _requests(workers: Workers) -> list[RetrainRequested]:
    raw = read_all(workers.stack.bootstrap, workers.topic("retrain-requested"))
    return [CODEC.decode_as(RetrainRequested, value) for _, value in raw]


def _answer(workers: Workers, requests: list[RetrainRequested]) -> None:
    """What the trainer says after promoting a model for each request."""
    outcomes = [
        TrainingOutcome(
            occurred_at=datetime.now(UTC),
            request_id=request.request_id,
            family=request.family,
            status=OutcomeStatus.PROMOTED,
            version=f"{request.family.value}-{uuid.uuid4().hex[:6]}",
            reason="promoted",
            metrics={},
            samples=100,
            data_cutoff=request.data_cutoff,
            duration_seconds=1.0,
        )
        for request in requests
    ]
    publish(workers.stack.bootstrap, workers.topic("training-outcome"), outcomes)


def _policy_rows(database_url: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            return list(
                await conn.fetch(
                    "SELECT family, model_version, in_flight_request_id, decision, updated_at, "
                    "counters FROM policy_state"
                )
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def test_loading_the_same_export_twice_changes_nothing_and_retrains_once(
    workers: Workers, tmp_path: Path
) -> None:
    # The same events as files (an export): 60 customers and 12 sheets, so one retraining of
    # each family is due after the first load.
    exports = tmp_path / "export"
    written = _run(
        ["publish", "--customers", "60", "--sheets", "12", "--seed", "7", "--out", str(exports)]
    )
    assert written["total_sent"] > 0
    files = sorted(str(path) for path in exports.glob("*.jsonl"))
    assert len(files) == len(UPSTREAM_TOPICS)
    workers.create_topics()
    env = workers.env(0)
    load = ["publish", *[arg for f in files for arg in ("--from-file", f)]]
    load += ["--bootstrap", workers.stack.bootstrap, "--topic-prefix", f"{workers.prefix}-"]

    first = _run(load)
    assert first["total_rejected"] == 0
    ingest = ["replay", "--from-beginning", "--commit-group", f"{workers.prefix}-worker"]
    stored = _run(ingest, env)
    assert stored["newly_stored"] == first["total_sent"]
    workers.start()
    requests = wait_until(
        lambda: len(found := _requests(workers)) >= 2 and found, 90, "one request per family"
    )
    assert isinstance(requests, list)
    assert sorted((r.family.value, r.reason_text) for r in requests) == [
        ("delinquency", "New customers: 60"),
        ("expense-fraud", "New sheets: 12"),
    ]
    _answer(workers, requests)
    wait_until(
        lambda: (
            all(
                row["in_flight_request_id"] is None and row["model_version"]
                for row in _policy_rows(workers.database_url)
            )
            and len(_policy_rows(workers.database_url)) == 2
        ),
        60,
        "both families to take the new models",
    )
    workers.stop_all()
    wait_until(lambda: _idle(workers), 60, "the stopped worker to leave its group")
    before = asyncio.run(table_checksums(workers.database_url))

    # The same export again: every event is already there.
    second = _run(load)
    assert second["sent"] == first["sent"]
    again = _run(ingest, env)
    assert again["newly_stored"] == 0
    assert again["already_present"] == 2 * first["total_sent"]
    assert asyncio.run(table_checksums(workers.database_url)) == before

    began = datetime.now(UTC)
    workers.start()

    def evaluated() -> list[asyncpg.Record] | None:
        rows = _policy_rows(workers.database_url)
        fresh = [row for row in rows if row["updated_at"] > began]
        return rows if len(fresh) == 2 else None

    rows = wait_until(evaluated, 60, "the restarted worker's policy to evaluate")
    assert isinstance(rows, list)
    seen = {}
    for row in rows:
        counters = json.loads(row["counters"])
        main = "new_customers" if row["family"] == ModelFamily.DELINQUENCY else "new_sheets"
        seen[row["family"]] = (counters[main], row["decision"])
    assert seen == {"delinquency": (0, "none"), "expense-fraud": (0, "none")}
    assert len(_requests(workers)) == 2
