"""kill -9 of workers while partitions move: every upstream message ends stored or dead-lettered.

Workers are killed again and again while the stream flows, each time just as a new worker joins
(so the group is mid-rebalance), and the test then accounts for every (topic, partition, offset)
that was produced: its event is stored exactly once, or its bytes are in dead-letter.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections import Counter
from collections.abc import Iterator

import asyncpg
import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.customer_created import CustomerCreated
from schemas.dead_letter import DeadLettered
from schemas.expense_sheet import ExpenseSheetSubmitted
from tests.factories import CODEC, customer, new_prefix, publish, sheet, wait_until
from tests.integration.streams.conftest import Workers

CUSTOMERS_PER_TICK = 20
SHEETS_PER_TICK = 3
TICK_S = 0.1
MALFORMED_EVERY = 97  # every 97th customer-created message is garbage
KILLS = 6


def _scalar(dsn: str, sql: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def _ids(dsn: str, sql: str) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            return [str(r[0]) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(run())


def _messages(bootstrap: str, topic: str) -> list[tuple[int, int, bytes | None, bytes]]:
    """(partition, offset, key, value) of every message now in `topic`."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"audit-{new_prefix()}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        out: list[tuple[int, int, bytes | None, bytes]] = []
        left = {p for p, end in ends.items() if end > 0}

        def drained() -> bool:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error():
                    continue
                partition, offset = message.partition() or 0, message.offset() or 0
                out.append((partition, offset, message.key(), message.value() or b""))
                if offset + 1 >= ends[partition]:
                    left.discard(partition)
            return not left

        wait_until(drained, 90, f"reading {topic} to its end")
        return out
    finally:
        consumer.close()


def _customer_stream(prefix: str) -> Iterator[tuple[bytes, bytes]]:
    for n in itertools.count():
        if n % MALFORMED_EVERY == 0:
            yield f"bad-{n}".encode(), b'{"not": "a customer", "n": ' + str(n).encode() + b"}"
        else:
            event = customer(n, prefix)
            yield CODEC.key_of(event), CODEC.encode(event)


@pytest.mark.timeout(900)
def test_kill_9_during_rebalances_loses_nothing(workers: Workers) -> None:
    workers.extra_env.update(
        {
            "RETRAINER_SESSION_TIMEOUT_S": "6",
            # Small batches: many commits, so kills and rebalances land between and inside them.
            "RETRAINER_BATCH_SIZE": "100",
            "RETRAINER_BATCH_WITHIN_S": "0.1",
        }
    )
    workers.create_topics()
    stored_sql = "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM sheets)"

    def stored() -> int:
        return _scalar(workers.database_url, stored_sql)

    stop = threading.Event()
    made = Counter[str]()
    failure: list[BaseException] = []

    def produce() -> None:
        # A steady stream for as long as the kills go on: a kill always lands mid-stream.
        customers = _customer_stream(workers.prefix)
        try:
            while not stop.is_set():
                chunk = [next(customers) for _ in range(CUSTOMERS_PER_TICK)]
                publish(workers.stack.bootstrap, workers.topic("customer-created"), chunk)
                start = made["sheets"]
                publish(
                    workers.stack.bootstrap,
                    workers.topic("expense-sheet"),
                    [
                        sheet(n, lines=3, prefix=workers.prefix)
                        for n in range(start, start + SHEETS_PER_TICK)
                    ],
                )
                made["customers"] += CUSTOMERS_PER_TICK
                made["sheets"] += SHEETS_PER_TICK
                stop.wait(TICK_S)  # the stream's pace, not a wait for a condition
        except (RuntimeError, OSError) as exc:  # the main thread reports it
            failure.append(exc)

    rng = random.Random(1581)
    workers.start_together(2)
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()

    alive = [0, 1]
    for kill in range(1, KILLS + 1):
        before = stored()
        wait_until(lambda b=before: stored() > b + 200, 120, "the workers to make progress")
        # A new member joins (a rebalance starts), and at once an old one dies without leaving.
        workers.start()
        alive.append(len(workers.procs) - 1)
        victim = alive.pop(rng.randrange(len(alive) - 1))
        workers.kill(victim)
        print(f"kill {kill}: worker {victim} at {stored()} stored, {made.total()} made", flush=True)
    stop.set()
    producer.join(timeout=120)
    assert not failure, failure
    produced_customers, produced_sheets = made["customers"], made["sheets"]
    valid_customers = produced_customers - len(range(0, produced_customers, MALFORMED_EVERY))
    total_valid = valid_customers + produced_sheets

    # Every event stored, every malformed message dead-lettered: by partition and offset.
    def settled() -> bool:
        # All stored, or nothing moved for a while: then the audit names what is missing.
        now = stored()
        history.append(now)
        return now >= total_valid or (len(history) > 100 and history[-100] == now)

    history: list[int] = []
    wait_until(settled, 300, "the workers to store what they can")
    audit: dict[str, Counter[str]] = {}
    stored_customers = set(_ids(workers.database_url, "SELECT customer_id FROM customers"))
    stored_sheets = set(_ids(workers.database_url, "SELECT sheet_id FROM sheets"))
    letters = [
        CODEC.decode_as(DeadLettered, value)
        for _, _, _, value in _messages(workers.stack.bootstrap, workers.topic("dead-letter"))
    ]
    lettered = Counter((letter.source_topic, letter.partition, letter.offset) for letter in letters)
    missing: list[tuple[str, int, int]] = []
    kinds: tuple[tuple[str, set[str], type[CustomerCreated] | type[ExpenseSheetSubmitted]], ...] = (
        ("customer-created", stored_customers, CustomerCreated),
        ("expense-sheet", stored_sheets, ExpenseSheetSubmitted),
    )
    for name, known, kind in kinds:
        topic = workers.topic(name)
        tally: Counter[str] = Counter()
        for partition, offset, _key, value in _messages(workers.stack.bootstrap, topic):
            tally["produced"] += 1
            if (topic, partition, offset) in lettered:
                tally["dead-lettered"] += 1
                continue
            event = CODEC.decode_as(kind, value)
            entity = event.customer_id if isinstance(event, CustomerCreated) else event.sheet_id
            if entity in known:
                tally["stored"] += 1
            else:
                missing.append((topic, partition, offset))
        audit[name] = tally
    assert not missing, f"lost (topic, partition, offset): {missing[:20]} of {len(missing)}"
    assert audit["customer-created"]["produced"] == produced_customers
    assert audit["customer-created"]["dead-lettered"] == produced_customers - valid_customers
    assert audit["expense-sheet"]["stored"] == produced_sheets
    # Stored once: the rows are keyed by id, and nothing arrived that was not produced.
    assert len(stored_customers) == valid_customers
    assert _scalar(workers.database_url, "SELECT count(DISTINCT event_id) FROM customers") == (
        valid_customers
    )
    assert _scalar(workers.database_url, "SELECT count(*) FROM expenses") == produced_sheets * 3

    # The upstream group committed everything: nothing is left for a restart to find.
    def committed_to_end() -> bool:
        consumer = Consumer(
            {
                "bootstrap.servers": workers.stack.bootstrap,
                "group.id": f"{workers.prefix}-worker-upstream",
            }
        )
        try:
            for name in ("customer-created", "expense-sheet"):
                topic = workers.topic(name)
                parts = [TopicPartition(topic, p) for p in range(4)]
                for tp in consumer.committed(parts, timeout=10):
                    high = consumer.get_watermark_offsets(tp, timeout=10)[1]
                    if tp.offset != high:
                        return False
            return True
        finally:
            consumer.close()

    wait_until(committed_to_end, 60, "the upstream group to commit to the end")
    redelivered_letters = sum(n - 1 for n in lettered.values() if n > 1)
    print(  # the figures for the closing note (pytest -s)
        f"KILL-AUDIT kills={KILLS} "
        f"customers={dict(audit['customer-created'])} sheets={dict(audit['expense-sheet'])} "
        f"lost=0 stored_twice=0 dead_letters_resent={redelivered_letters}"
    )
