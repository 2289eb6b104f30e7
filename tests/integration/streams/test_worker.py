"""The worker on the real broker and PostgreSQL: idempotent ingest, the policy, dead letters."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import asyncpg

from schemas.codec import Codec
from schemas.dead_letter import DeadLettered
from schemas.retrain_requested import RetrainReason, RetrainRequested
from tests.factories import CODEC, customer, publish, sheet, statement, wait_until
from tests.integration.streams.conftest import Workers, read_all


def _count(dsn: str, sql: str) -> int:
    async def run() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def _requests(workers: Workers) -> list[RetrainRequested]:
    raw = read_all(workers.stack.bootstrap, workers.topic("retrain-requested"))
    return [Codec().decode_as(RetrainRequested, value) for _, value in raw]


def _stored_present(workers: Workers, topic: str) -> float:
    total = 0.0
    for port in workers.ports:
        for line in workers.get("/metrics", port).splitlines():
            if (
                line.startswith("retrainer_events_stored_total{")
                and f'topic="{topic}"' in line
                and 'outcome="present"' in line
            ):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_sixty_customers_request_once_and_a_replay_changes_nothing(workers: Workers) -> None:
    workers.extra_env["RETRAINER_POLICY_DEBOUNCE_S"] = "2"
    workers.create_topics()
    customers = [customer(i, workers.prefix) for i in range(60)]
    # A year of statements, every 6th customer 45 days past due in month 4: enough labelled
    # observations of both classes before the holdout for the minimum data (schemas.minimums).
    statements = [
        statement(c.customer_id, month, 45 if n % 6 == 0 and month == 4 else 0)
        for n, c in enumerate(customers)
        for month in range(12)
    ]
    publish(workers.stack.bootstrap, workers.topic("customer-activity"), statements)
    publish(workers.stack.bootstrap, workers.topic("customer-created"), customers)
    # Two workers in one group share the four partitions of every topic.
    workers.start_together(2)

    requests = wait_until(lambda: _requests(workers), 90, "a retrain request")
    assert isinstance(requests, list)
    assert len(requests) == 1
    request = requests[0]
    assert request.family.value == "delinquency"
    assert request.reason is RetrainReason.NEW_CUSTOMERS
    assert request.reason_text == "New customers: 60"
    assert request.counters["new_customers"] == 60

    # The same 60 customers again: stored as "already present", counted once, no new request.
    publish(workers.stack.bootstrap, workers.topic("customer-created"), customers)
    wait_until(lambda: _stored_present(workers, "customer-created") >= 60, 60, "the replay")
    marker = time.time()

    def policy_saw_replay() -> bool:
        status = workers.get("/retraining/status?family=delinquency")
        state_time = _count(
            workers.database_url,
            "SELECT extract(epoch FROM updated_at)::bigint FROM policy_state "
            "WHERE family = 'delinquency'",
        )
        return bool(state_time >= int(marker) and status["new_customers_count"] == 60)

    wait_until(policy_saw_replay, 60, "the policy to evaluate after the replay")
    assert _count(workers.database_url, "SELECT count(*) FROM customers") == 60
    assert len(_requests(workers)) == 1
    status = workers.get("/retraining/status")
    assert status["new_customers_count"] == 60
    assert status["threshold"] == 50
    assert status["in_flight"]["request_id"] == str(request.request_id)
    assert status["reason"] == "Training in progress: New customers: 60"


def test_ten_sheets_request_an_expense_fraud_retraining(workers: Workers) -> None:
    workers.create_topics()
    publish(
        workers.stack.bootstrap,
        workers.topic("expense-sheet"),
        [sheet(i, lines=6, prefix=workers.prefix) for i in range(10)],
    )
    workers.start()
    requests = wait_until(lambda: _requests(workers), 90, "a retrain request")
    assert isinstance(requests, list)
    assert [(r.family.value, r.reason_text) for r in requests] == [
        ("expense-fraud", "New sheets: 10")
    ]
    assert _count(workers.database_url, "SELECT count(*) FROM expenses") == 60


def _malformed(prefix: str) -> list[tuple[bytes, bytes, str]]:
    """Bad customer messages of every kind, each with the reason the codec must give."""
    base = json.loads(CODEC.encode(customer(9999, prefix)))
    cases: list[tuple[bytes, str]] = [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (
            json.dumps({k: v for k, v in base.items() if k != "customer_id"}).encode(),
            "missing_field",
        ),
        (json.dumps({**base, "schema_version": 9}).encode(), "unknown_schema_version"),
        (json.dumps({**base, "customer_id": 42}).encode(), "wrong_type"),
        (
            json.dumps({**base, "profile": {**base["profile"], "annual_income": "-5"}}).encode(),
            "negative_amount",
        ),
        (json.dumps({**base, "created_at": "2999-01-01T00:00:00Z"}).encode(), "date_in_future"),
        (json.dumps({**base, "surprise": 1}).encode(), "unknown_field"),
        (json.dumps({**base, "customer_id": "x" * 5000}).encode(), "string_too_long"),
    ]
    return [(f"bad-{i}".encode(), value, reason) for i, (value, reason) in enumerate(cases)]


def test_malformed_messages_go_to_dead_letter_and_valid_ones_are_stored(
    workers: Workers,
) -> None:
    workers.create_topics()
    valid = [customer(i, workers.prefix) for i in range(180)]
    bad = _malformed(workers.prefix)
    # About 5 % malformed, spread through the stream.
    messages: list[tuple[bytes, bytes]] = []
    expected: dict[bytes, str] = {}
    for i, event in enumerate(valid):
        messages.append((CODEC.key_of(event), CODEC.encode(event)))
        if i % 20 == 0 and bad:
            key, value, reason = bad.pop()
            messages.append((key, value))
            expected[key] = reason
    assert not bad
    publish(workers.stack.bootstrap, workers.topic("customer-created"), messages)
    workers.start()

    wait_until(
        lambda: _count(workers.database_url, "SELECT count(*) FROM customers") == len(valid),
        90,
        "every valid customer stored",
    )
    letters = wait_until(
        lambda: (
            (found := read_all(workers.stack.bootstrap, workers.topic("dead-letter")))
            and len(found) >= len(expected)
            and found
        ),
        60,
        "every malformed message in dead-letter",
    )
    assert isinstance(letters, list)
    decoded = [CODEC.decode_as(DeadLettered, value) for _, value in letters]
    got = {base64.b64decode(d.key_b64 or ""): d for d in decoded}
    assert {k: d.reason for k, d in got.items()} == expected
    originals = dict(messages)
    for key, letter in got.items():
        assert base64.b64decode(letter.value_b64) == originals[key]
        assert letter.source_topic == workers.topic("customer-created")
        assert letter.stage == "decode"
    # Every reason's series exists from the start at 0: the counts themselves must match.
    for reason in set(expected.values()):
        counted = workers.metric(
            "retrainer_dead_letters_total", topic="customer-created", stage="decode", reason=reason
        )
        assert counted == list(expected.values()).count(reason), reason


def test_a_killed_worker_loses_nothing_and_stores_nothing_twice(workers: Workers) -> None:
    workers.create_topics()
    customers = [customer(i, workers.prefix) for i in range(4000)]
    statements = [statement(c.customer_id, 0) for c in customers]
    workers.start()

    def produce() -> None:
        for start in range(0, len(customers), 250):
            publish(
                workers.stack.bootstrap,
                workers.topic("customer-created"),
                customers[start : start + 250],
            )
            publish(
                workers.stack.bootstrap,
                workers.topic("customer-activity"),
                statements[start : start + 250],
            )

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(
        lambda: _count(workers.database_url, "SELECT count(*) FROM customers") > 300,
        90,
        "the worker to be mid-stream",
    )
    workers.kill(0)
    stored_at_kill = _count(workers.database_url, "SELECT count(*) FROM customers")
    producer.join(timeout=120)
    assert stored_at_kill < len(customers), "the kill came too late to prove anything"
    workers.start()
    wait_until(
        lambda: (
            _count(workers.database_url, "SELECT count(*) FROM customers") == len(customers)
            and _count(workers.database_url, "SELECT count(*) FROM customer_activity")
            == len(statements)
        ),
        120,
        "every event stored after the restart",
    )
    assert _count(workers.database_url, "SELECT count(DISTINCT event_id) FROM customers") == len(
        customers
    )
    assert _count(workers.database_url, "SELECT count(*) FROM customer_training_status") == len(
        customers
    )

    def counters_match() -> bool:
        status = workers.get("/retraining/status")
        counters = status["counters"]
        return bool(
            status["new_customers_count"] == len(customers)
            and counters["new_statements"] == len(statements)
        )

    wait_until(counters_match, 60, "the counters to equal the truth")
