"""The minimum interval between automatic trainings, on a real worker under steady ingest.

The test plays the trainer: it answers every request on retrain-requested at once with a
training-outcome (rejected by the gate, so a model was trained and the cutoff moves), which is
what made a worker under steady ingest ask for a training every ten sheets.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainReason, RetrainRequested
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from tests.factories import CODEC, new_prefix, publish, sheet, wait_until
from tests.integration.streams.conftest import Workers

INTERVAL_S = 8.0
TICK_S = 1.0
THRESHOLD = 10
STEADY_S = 36.0
FRAUD = ModelFamily.EXPENSE_FRAUD.value


def _scalar(dsn: str, sql: str) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


@dataclass
class FakeTrainer:
    """Answers each retrain request once, at once, and keeps what it saw."""

    workers: Workers
    seen: list[RetrainRequested] = field(default_factory=list)
    answered: set[str] = field(default_factory=set)
    failures: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self) -> list[RetrainRequested]:
        with self.lock:
            return list(self.seen)

    def run(self) -> None:
        topic = self.workers.topic("retrain-requested")
        consumer = Consumer(
            {
                "bootstrap.servers": self.workers.stack.bootstrap,
                "group.id": f"fake-trainer-{new_prefix()}",
                "enable.auto.commit": False,
            }
        )
        producer = Producer({"bootstrap.servers": self.workers.stack.bootstrap})
        try:
            # Right after the worker made the topic, the broker's metadata may not list all its
            # partitions yet: a partition missed here would hide its requests for good.
            wanted = self.workers.settings().partitions

            def listed() -> list[int] | None:
                found = consumer.list_topics(topic, timeout=10).topics.get(topic)
                ids = sorted(found.partitions) if found is not None else []
                return ids if len(ids) >= wanted else None

            partitions = wait_until(listed, 60, f"every partition of {topic} in the metadata")
            consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
            while not self.stop.is_set():
                message = consumer.poll(0.2)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"reading {topic}: {error}")
                request = CODEC.decode_as(RetrainRequested, message.value() or b"")
                with self.lock:
                    self.seen.append(request)
                if str(request.request_id) in self.answered:
                    continue
                self.answered.add(str(request.request_id))
                outcome = TrainingOutcome(
                    occurred_at=request.occurred_at,
                    request_id=request.request_id,
                    family=request.family,
                    status=OutcomeStatus.REJECTED,
                    reason="the challenger is not better than the champion",
                    metrics={},
                    samples=0,
                    data_cutoff=request.data_cutoff,
                    duration_seconds=0.0,
                )
                producer.produce(
                    self.workers.topic("training-outcome"),
                    key=CODEC.key_of(outcome),
                    value=CODEC.encode(outcome),
                )
                if producer.flush(30) != 0:
                    raise AssertionError("the outcome was not delivered")
        except BaseException as exc:  # handed to the test, which re-raises it
            self.failures.append(exc)
            raise
        finally:
            consumer.close()


@pytest.fixture
def trainer(workers: Workers) -> Iterator[FakeTrainer]:
    workers.extra_env.update(
        {
            "RETRAINER_MIN_TRAINING_INTERVAL_S": str(INTERVAL_S),
            "RETRAINER_POLICY_TICK_S": str(TICK_S),
            "RETRAINER_NEW_SHEETS_THRESHOLD": str(THRESHOLD),
        }
    )
    workers.create_topics()
    fake = FakeTrainer(workers)
    thread = threading.Thread(target=fake.run, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        thread.join(timeout=30)
    assert fake.failures == []


def _automatic(trainer: FakeTrainer) -> list[RetrainRequested]:
    """The policy's own requests, once each (a re-sent request is the same training)."""
    first: dict[str, RetrainRequested] = {}
    for request in trainer.requests():
        if request.requested_by == "policy":
            first.setdefault(str(request.request_id), request)
    return sorted(first.values(), key=lambda r: r.occurred_at)


def _stored_sheets(workers: Workers) -> int:
    return int(_scalar(workers.database_url, "SELECT count(*) FROM sheets"))


def _fraud_status(workers: Workers) -> dict[str, Any]:
    status: dict[str, Any] = workers.get(f"/retraining/status?family={FRAUD}")
    return status


def _settled(workers: Workers, trainer: FakeTrainer) -> bool:
    """Every request answered, and the policy has nothing due, held or in flight."""
    status = _fraud_status(workers)
    answered = all(str(r.request_id) in trainer.answered for r in trainer.requests())
    return answered and status["in_flight"] is None and status["decision"] == "none"


def _held(workers: Workers) -> datetime | None:
    """Until when the status says the fraud trigger is held; None while it is not."""
    status = _fraud_status(workers)
    if status["decision"] != "held":
        return None
    assert status["retraining_needed"] is True
    assert status["reason"].startswith(f"New sheets: {status['new_sheets_count']}; ")
    assert "by the minimum interval between automatic trainings" in status["reason"]
    found = re.search(r"held until (\S+) ", status["reason"])
    assert found is not None, status["reason"]
    return datetime.fromisoformat(found.group(1))


def _next_request(trainer: FakeTrainer, after: int, what: str) -> RetrainRequested:
    def arrived() -> RetrainRequested | None:
        requests = trainer.requests()
        return requests[after] if len(requests) > after else None

    found = wait_until(arrived, INTERVAL_S + 60, what)
    assert isinstance(found, RetrainRequested)
    return found


FIRST_REQUEST_S = 180.0
"""How long the first crossing may take to be asked for: the policy table is recovered and its
partitions assigned after /health answers, which takes long on a machine running other workers."""


def _first_request(workers: Workers, trainer: FakeTrainer) -> None:
    try:
        wait_until(trainer.requests, FIRST_REQUEST_S, "the first automatic request")
    except AssertionError as missing:
        status = _fraud_status(workers)
        raise AssertionError(
            f"{missing}; the fraud status says {status['decision']}: {status['reason']} "
            f"(counters {status['counters']}, in flight {status['in_flight']})"
        ) from missing


def test_automatic_trainings_are_spaced_by_the_minimum_interval(
    workers: Workers, trainer: FakeTrainer
) -> None:
    port = workers.start()
    sent = 0

    def send(count: int) -> None:
        nonlocal sent
        batch = [sheet(sent + i, lines=6, prefix=workers.prefix) for i in range(count)]
        publish(workers.stack.bootstrap, workers.topic("expense-sheet"), batch)
        sent += count
        wait_until(lambda: _stored_sheets(workers) >= sent, 60, f"{sent} sheets stored")

    # The policy is known to be deciding once it asks for the first crossing: on a loaded
    # machine the worker's agents may be assigned their partitions well after /health answers.
    send(THRESHOLD)
    _first_request(workers, trainer)
    # Steady ingest: two sheets at a time, each pair once the previous one is stored.
    began = time.monotonic()
    while time.monotonic() - began < STEADY_S:
        send(2)
    steady = _automatic(trainer)
    # Without the interval this pace asks for a training every ten sheets.
    assert sent >= 4 * THRESHOLD, f"only {sent} sheets in {STEADY_S:.0f} s"
    assert len(steady) >= 3, [r.reason_text for r in steady]
    gaps = [
        (later.occurred_at - earlier.occurred_at).total_seconds()
        for earlier, later in itertools.pairwise(steady)
    ]
    assert min(gaps) >= INTERVAL_S, gaps
    # What arrived during a hold was counted, not dropped: the held request carries all of it.
    # Sheets come two at a time, so without a hold a request carries 10 or 11; one carrying
    # at least two more pairs was held while they arrived (how many pairs fit in a hold depends
    # on the machine's pace, so no more is asked).
    assert max(r.counters["new_sheets"] for r in steady) >= THRESHOLD + 4, [
        r.reason_text for r in steady
    ]
    for request in steady:
        assert request.reason is RetrainReason.NEW_SHEETS
        assert request.reason_text == f"New sheets: {request.counters['new_sheets']:.0f}"

    # Whatever was held when the ingest stopped goes out on the timer; then all is quiet.
    wait_until(lambda: _settled(workers, trainer), INTERVAL_S + 60, "the policy to settle")
    # One more training, so that the next crossing comes right after one.
    seen = len(trainer.requests())
    send(THRESHOLD)
    previous = _next_request(trainer, seen, "a request for the new sheets")
    wait_until(lambda: _settled(workers, trainer), INTERVAL_S + 60, "the request answered")

    # The threshold crossed again at once: held, and the status says until when.
    send(THRESHOLD)
    held_until = wait_until(lambda: _held(workers), 30, "the status to show the held trigger")
    assert isinstance(held_until, datetime)
    count = len(trainer.requests())
    # No event arrives any more: the timer sends the held request soon after the interval.
    released = _next_request(trainer, count, "the held request")
    assert released.requested_by == "policy"
    assert released.reason_text == f"New sheets: {THRESHOLD}"
    assert (released.occurred_at - previous.occurred_at).total_seconds() >= INTERVAL_S
    assert held_until <= released.occurred_at <= held_until + timedelta(seconds=TICK_S + 10)
    wait_until(lambda: _settled(workers, trainer), 60, "the held request answered")

    # A manual trigger is not held back by the interval.
    send(THRESHOLD)
    held_until = wait_until(lambda: _held(workers), 30, "the next held trigger")
    assert isinstance(held_until, datetime)
    count = len(trainer.requests())
    trigger = urllib.request.Request(
        f"http://127.0.0.1:{port}/retraining/trigger",
        data=json.dumps({"family": FRAUD}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {workers.env(port)['RETRAINER_API_TOKEN']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(trigger, timeout=30) as response:  # noqa: S310 - loopback
        assert response.status == 202
    manual = _next_request(trainer, count, "the manual request")
    assert manual.reason is RetrainReason.MANUAL
    assert manual.occurred_at < held_until
