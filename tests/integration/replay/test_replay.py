"""Replay and rebuild on the real broker and PostgreSQL, over 100k simulated events.

Losing the worker's consumer group and its table state, then replaying from the beginning and
rebuilding the state, leaves PostgreSQL as it was, the counters at the truth, and asks for no
retraining; a replay from a timestamp takes exactly the messages at or after it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from retrainer.simulator.events import UPSTREAM_TOPICS
from schemas.codec import Codec
from schemas.errors import DecodeError
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams.rebuild import rebuild_state
from streams.replay import ReplayOptions, replay
from tests.factories import ROOT, customer, publish, sheet, statement, wait_until
from tests.integration.replay.conftest import Bulk, database, drop_database, table_checksums
from tests.integration.streams.conftest import Workers

NEW_CUSTOMERS = 30  # below the threshold of 50: no retraining is due
NEW_SHEETS = 5  # below the threshold of 10
LINES_PER_SHEET = 6

ROW_TABLES = {
    "expense-sheet": "sheets",
    "customer-created": "customers",
    "customer-activity": "customer_activity",
    "expense-label": "expense_labels",
}


def _rows(database_url: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            counts = {
                topic: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                for topic, table in ROW_TABLES.items()
            }
            counts["expenses"] = int(await conn.fetchval("SELECT count(*) FROM expenses"))
            return counts
        finally:
            await conn.close()

    return asyncio.run(count())


def _fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url, timeout=10)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def _cli(bulk: Bulk, *args: str) -> dict[str, Any]:
    """Run `retrainer <args> --json` as an operator would, with the module's settings."""
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args, "--json"],
        env=bulk.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(result, dict)
    return result


def _trained_models(database_url: str) -> dict[str, str]:
    """What the trainer leaves after training both families on everything stored so far."""
    versions = {
        "expense-fraud": f"ef-{uuid.uuid4().hex[:6]}",
        "delinquency": f"dq-{uuid.uuid4().hex[:6]}",
    }
    for family, version in versions.items():
        _fetch(
            database_url,
            "WITH cut AS (SELECT clock_timestamp() AS t), "
            "v AS (INSERT INTO model_versions (version, family, status, data_cutoff, code_version,"
            " promoted_at, samples) SELECT $1, $2, 'champion', t, 'test', t, 100 FROM cut) "
            "INSERT INTO model_retraining_log (retrain_date, model_version, trigger_reason, family,"
            " request_id, status, promoted, data_cutoff) "
            "SELECT t, $1, 'test', $2, $3, 'promoted', true, t FROM cut",
            version,
            family,
            uuid.uuid4(),
        )
    return versions


def _message_count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"count-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def _lose_state(bulk: Bulk) -> None:
    """An operator's bad day: no consumer group, no table changelog or signals, no mirror."""
    admin = AdminClient({"bootstrap.servers": bulk.stack.bootstrap})

    def group_deleted(group: str) -> bool:
        future = admin.delete_consumer_groups([group], request_timeout=10)[group]
        try:
            future.result(timeout=15)
        except KafkaException as exc:
            # A worker that just left may still be listed until the broker notices.
            return "GROUP_ID_NOT_FOUND" in str(exc)
        return True

    for group in (bulk.app_id, f"{bulk.app_id}-upstream"):
        wait_until(lambda g=group: group_deleted(g), 60, f"consumer group {group} to be deleted")
    # The table's changelog and the signals it was folded from (old ones would otherwise teach
    # a new worker the state again, until retention removes them).
    internal = [f"{bulk.app_id}-policy-state-changelog", bulk.topic("policy-signals")]
    for future in admin.delete_topics(internal, operation_timeout=30).values():
        future.result(timeout=60)

    def deleted() -> bool:
        return not set(internal) & set(admin.list_topics(timeout=10).topics)

    wait_until(deleted, 60, "the internal topics to be deleted")
    _fetch(bulk.database_url, "DELETE FROM policy_state")


def _status_after(workers: Workers, since: datetime, version: str) -> dict[str, Any] | None:
    """Both families' status once the running worker's policy has mirrored the learnt state."""
    rows = _fetch(
        workers.database_url,
        "SELECT family, model_version, updated_at FROM policy_state",
    )
    fresh = {r["family"] for r in rows if r["updated_at"] > since and r["model_version"]}
    if len(fresh) < 2:
        return None
    status: dict[str, Any] = workers.get("/retraining/status?family=delinquency")
    if status["model_version"] != version or status["new_customers_count"] != NEW_CUSTOMERS:
        return None
    fraud = status["families"]["expense-fraud"]
    if fraud["new_sheets_count"] != NEW_SHEETS:
        return None
    return status


def test_losing_group_and_state_then_replay_and_rebuild_changes_nothing(
    bulk: Bulk, tmp_path: Path
) -> None:
    truth = bulk.truth
    # A new deployment backfills everything published so far, and hands the worker group the
    # offsets it stopped at so the worker does not read it all again.
    settings = bulk.settings()
    first = asyncio.run(replay(settings, ReplayOptions(commit_group=f"{bulk.app_id}-upstream")))
    assert first.consumed == truth.total
    assert first.new == sum(truth.valid.values())
    assert first.present == 0
    assert first.dead_lettered == truth.bad
    assert first.skipped == 0
    assert _rows(bulk.database_url) == {**truth.valid, "expenses": truth.expense_lines}
    assert _message_count(bulk.stack.bootstrap, bulk.topic("dead-letter")) == truth.bad

    # The trainer trains both families on all of it; a few events arrive afterwards.
    versions = _trained_models(bulk.database_url)
    settings = bulk.settings()
    rebuilt = asyncio.run(rebuild_state(settings))
    assert rebuilt.mirror_written
    assert not rebuilt.worker_running
    assert rebuilt.signal_partitions_reset == settings.partitions
    assert {f.record.family.value: f.record.version for f in rebuilt.families} == versions
    assert all(f.signalled and f.decision is not None for f in rebuilt.families)
    assert {f.decision.reason_text for f in rebuilt.families if f.decision} == {
        "No training needed"
    }
    newcomers = [customer(i, bulk.prefix) for i in range(NEW_CUSTOMERS)]
    publish(bulk.stack.bootstrap, bulk.topic("customer-created"), newcomers)
    publish(
        bulk.stack.bootstrap,
        bulk.topic("customer-activity"),
        [statement(c.customer_id, 0) for c in newcomers],
    )
    publish(
        bulk.stack.bootstrap,
        bulk.topic("expense-sheet"),
        [sheet(i, LINES_PER_SHEET, bulk.prefix) for i in range(NEW_SHEETS)],
    )
    delta = 2 * NEW_CUSTOMERS + NEW_SHEETS

    workers = bulk.workers(tmp_path)
    try:
        began = datetime.now(UTC)
        workers.start()
        before = wait_until(
            lambda: _status_after(workers, began, versions["delinquency"]),
            90,
            "the worker to learn the rebuilt state and count the new events",
        )
        assert isinstance(before, dict)
        workers.stop_all()
        checksums = asyncio.run(table_checksums(bulk.database_url))
        assert _message_count(bulk.stack.bootstrap, bulk.topic("retrain-requested")) == 0

        _lose_state(bulk)
        again = _cli(
            bulk, "replay", "--from-beginning", "--commit-group", f"{bulk.app_id}-upstream"
        )
        assert again["consumed"] == truth.total + delta
        assert again["newly_stored"] == 0
        assert again["already_present"] == sum(truth.valid.values()) + delta
        assert again["dead_lettered"] == truth.bad
        assert asyncio.run(table_checksums(bulk.database_url)) == checksums

        state = _cli(bulk, "rebuild-state")
        assert state["mirror_written"] is True
        assert {f["family"]: f["model_version"] for f in state["families"]} == versions
        began = datetime.now(UTC)
        workers.start()
        after = wait_until(
            lambda: _status_after(workers, began, versions["delinquency"]),
            90,
            "the worker to relearn its state after the loss",
        )
        assert isinstance(after, dict)
    finally:
        workers.stop_all()

    def policy_view(status: dict[str, Any]) -> dict[str, Any]:
        fraud = status["families"]["expense-fraud"]
        return {
            "delinquency": (status["model_version"], status["data_cutoff"], status["counters"]),
            "expense-fraud": (fraud["model_version"], fraud["data_cutoff"], fraud["counters"]),
            "needed": (status["retraining_needed"], fraud["retraining_needed"]),
        }

    # The counters equal the truth: only what arrived after the models' data cutoff is new.
    assert policy_view(after) == policy_view(before)
    assert after["counters"]["new_customers"] == NEW_CUSTOMERS
    assert after["counters"]["new_statements"] == NEW_CUSTOMERS
    fraud = after["families"]["expense-fraud"]["counters"]
    assert (fraud["new_sheets"], fraud["new_expenses"], fraud["new_labels"]) == (
        NEW_SHEETS,
        NEW_SHEETS * LINES_PER_SHEET,
        0,
    )
    assert not after["retraining_needed"]
    assert after["in_flight"] is None
    assert _message_count(bulk.stack.bootstrap, bulk.topic("retrain-requested")) == 0
    assert _fetch(bulk.database_url, "SELECT request_id FROM retrain_requests") == []


def _timestamps(bulk: Bulk) -> list[tuple[str, int, bytes]]:
    """(default topic, timestamp ms, value) of every message on the module's upstream topics."""
    consumer = Consumer(
        {
            "bootstrap.servers": bulk.stack.bootstrap,
            "group.id": f"stamps-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    logical = {bulk.topic(t): t for t in UPSTREAM_TOPICS}
    try:
        assigned: list[TopicPartition] = []
        for name in logical:
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if high > low:
                    assigned.append(TopicPartition(name, p, low))
        consumer.assign(assigned)
        out: list[tuple[str, int, bytes]] = []
        ended: set[tuple[str, int]] = set()
        deadline = time.monotonic() + 120
        while len(ended) < len(assigned):
            assert time.monotonic() < deadline, "reading the topics took too long"
            for message in consumer.consume(5000, timeout=1):
                error = message.error()
                key = (message.topic() or "", message.partition() or 0)
                if error is not None:
                    ended.add(key)
                    continue
                out.append((logical[key[0]], message.timestamp()[1], message.value() or b""))
        return out
    finally:
        consumer.close()


def test_a_replay_from_a_timestamp_takes_exactly_the_messages_at_or_after_it(bulk: Bulk) -> None:
    messages = _timestamps(bulk)
    stamps = sorted(stamp for _, stamp, _ in messages)
    middle = stamps[len(stamps) // 2]
    at = datetime.fromtimestamp(middle / 1000, tz=UTC)
    later = Counter(topic for topic, stamp, _ in messages if stamp >= middle)
    earlier = Counter(topic for topic, stamp, _ in messages if stamp < middle)
    assert sum(later.values()) >= len(messages) // 2 > 0

    codec = Codec()
    valid_later: Counter[str] = Counter()
    for topic, stamp, value in messages:
        if stamp < middle:
            continue
        try:
            event = codec.decode(topic, value)
        except DecodeError:
            continue
        valid_later[topic] += 1
        if isinstance(event, ExpenseSheetSubmitted):
            valid_later["expenses"] += len(event.lines)

    name = f"retrainer_replay_at_{uuid.uuid4().hex[:8]}"
    target = database(bulk.stack, name)
    try:
        settings = bulk.settings(database_url=target)
        from_there = asyncio.run(replay(settings, ReplayOptions(from_time=at, notify_policy=False)))
        assert {
            t: tally.consumed for t, tally in from_there.topics.items() if tally.consumed
        } == dict(later)
        assert from_there.skipped == 0
        assert _rows(target) == {t: valid_later.get(t, 0) for t in (*ROW_TABLES, "expenses")}

        # The rest: from the beginning up to (not including) the first message at `at`.
        up_to = asyncio.run(replay(settings, ReplayOptions(to_time=at, notify_policy=False)))
        assert {t: tally.consumed for t, tally in up_to.topics.items() if tally.consumed} == dict(
            earlier
        )
        assert from_there.consumed + up_to.consumed == len(messages)
        assert up_to.present == 0  # the two ranges do not overlap
    finally:
        drop_database(bulk.stack, name)
