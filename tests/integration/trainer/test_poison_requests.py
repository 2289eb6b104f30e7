"""A running trainer process meets every kind of bad request: each one is dead-lettered with its
reason, the valid ones around them are answered exactly once, and the process stays up."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from edge.settings import TopicNames
from retrainer.harness import topic_env
from schemas.base import ModelFamily
from schemas.codec import Codec
from schemas.dead_letter import KEPT_KEY_BYTES, KEPT_VALUE_BYTES, DeadLettered
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from tests.conftest import Stack, TopicFactory
from tests.factories import ROOT
from tests.integration.trainer.kafka_helpers import read_until, request
from trainer.bootstrap import build
from trainer.errors import DependencyUnavailable
from trainer.publisher import Outgoing, Publisher
from trainer.runner import RequestConsumer
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration

CODEC = Codec()
BIG_TOPIC = {"max.message.bytes": str(4 * 1024 * 1024)}
"""The request topic takes messages past the codec's 1 MiB limit, so one can be sent."""


def trainer_env(settings: TrainerSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env["RETRAINER_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    env["RETRAINER_TRAINER_GROUP_ID"] = settings.trainer_group_id
    env.update(
        topic_env(
            retrain_requested=settings.topics.retrain_requested,
            model_updated=settings.topics.model_updated,
            training_outcome=settings.topics.training_outcome,
            dead_letter=settings.topics.dead_letter,
        )
    )
    env["RETRAINER_DATABASE_URL"] = settings.dsn
    env["RETRAINER_TRAINER_METRICS_PORT"] = "0"
    env["RETRAINER_RETRY_ATTEMPTS"] = "2"
    return env


class TrainerProcess:
    """`retrainer trainer` as operators run it, in a process of its own."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "retrainer.cli", "trainer"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            self.process.wait(60)

    def while_alive(
        self, condition: Callable[[list[bytes]], bool]
    ) -> Callable[[list[bytes]], bool]:
        """`condition`, failing at once (with the log) if the trainer died meanwhile."""

        def check(values: list[bytes]) -> bool:
            assert self.alive(), f"the trainer died:\n{self.log.read_text()[-3000:]}"
            return condition(values)

        return check


@pytest.fixture
def settings(stack: Stack, make_topic: TopicFactory, fresh_database_url: str) -> TrainerSettings:
    return TrainerSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=fresh_database_url,  # type: ignore[arg-type]
        topics=TopicNames(
            retrain_requested=make_topic("retrain", partitions=1, config=BIG_TOPIC),
            model_updated=make_topic("model-updated", partitions=1),
            training_outcome=make_topic("outcome", partitions=1),
            dead_letter=make_topic("dead-letter", partitions=1),
        ),
        trainer_group_id=f"trainer-{uuid.uuid4().hex[:8]}",
    )


@pytest.fixture
def trainer(settings: TrainerSettings, tmp_path: Path) -> Iterator[TrainerProcess]:
    process = TrainerProcess(trainer_env(settings), tmp_path / "trainer.log")
    try:
        yield process
    finally:
        process.stop()


def send(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 4 * 1024 * 1024})
    failures: list[str] = []
    for key, value in messages:
        producer.produce(
            topic,
            key=key,
            value=value,
            on_delivery=lambda err, _msg: failures.append(str(err)) if err else None,
        )
    assert producer.flush(60) == 0
    assert failures == []


def as_json(event: RetrainRequested, **changes: Any) -> bytes:
    return json.dumps({**json.loads(CODEC.encode(event)), **changes}).encode()


def answers(values: list[bytes]) -> list[TrainingOutcome]:
    return [CODEC.decode_as(TrainingOutcome, value) for value in values]


def answered(request_id: uuid.UUID, count: int = 1) -> Callable[[list[bytes]], bool]:
    return lambda values: sum(o.request_id == request_id for o in answers(values)) >= count


def read_all(bootstrap: str, topic: str) -> list[bytes]:
    """Every value of a one-partition topic, up to its end when called."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"all-{uuid.uuid4().hex}"})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[bytes] = []
        position = 0
        deadline = time.monotonic() + 60
        while position < end:
            assert time.monotonic() < deadline, f"read {position} of {end} messages of {topic}"
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
                position = (message.offset() or 0) + 1
        return values
    finally:
        consumer.close()


def letters(values: list[bytes]) -> list[DeadLettered]:
    return [CODEC.decode_as(DeadLettered, value) for value in values]


async def test_a_burst_of_bad_requests_goes_to_dead_letter_and_the_trainer_goes_on(
    settings: TrainerSettings, trainer: TrainerProcess, fresh_database_url: str
) -> None:
    now = datetime.now(UTC)
    # On an empty database every admitted request ends skipped (not enough data): quick.
    first = request(ModelFamily.EXPENSE_FRAUD, now)
    last = request(ModelFamily.DELINQUENCY, now)
    template = request(ModelFamily.DELINQUENCY, now)
    huge_key = b"K" * 900_000
    bad: list[tuple[bytes, bytes | None, str]] = [
        (b"bad-not-json", b"{oops", "invalid_json"),
        (b"bad-empty", b"", "invalid_json"),
        (b"bad-null", None, "invalid_json"),
        (b"bad-types", as_json(template, force="yes", counters=[1]), "wrong_type"),
        (b"bad-family", as_json(template, family="churn"), "invalid_value"),
        (b"bad-version", as_json(template, schema_version=7), "unknown_schema_version"),
        (b"bad-900kb", as_json(template, reason_text="x" * 900_000), "string_too_long"),
        (b"bad-1500kb", as_json(template, reason_text="y" * 1_500_000), "payload_too_large"),
        (huge_key, b"{}", "missing_field"),
        (
            b"bad-future",
            as_json(template, data_cutoff="2999-01-01T00:00:00Z"),
            "data_cutoff_in_future",
        ),
    ]
    reuse = first.model_copy(update={"event_id": uuid.uuid4(), "family": ModelFamily.DELINQUENCY})
    messages: list[tuple[bytes, bytes | None]] = [(key, value) for key, value, _ in bad]
    messages += [
        (CODEC.key_of(first), CODEC.encode(first)),
        (CODEC.key_of(first), CODEC.encode(first)),  # a true redelivery
        (b"bad-reuse", CODEC.encode(reuse)),
        (CODEC.key_of(last), CODEC.encode(last)),
    ]
    expected = {key[:KEPT_KEY_BYTES]: reason for key, _, reason in bad}
    expected[b"bad-reuse"] = "request_id_reused"
    originals = {key[:KEPT_KEY_BYTES]: value or b"" for key, value in messages}

    send(settings.kafka_bootstrap, settings.topics.retrain_requested, messages)
    trainer.start()
    read_until(
        settings.kafka_bootstrap,
        settings.topics.training_outcome,
        trainer.while_alive(answered(last.request_id)),
        timeout=120,
    )
    found = letters(
        read_until(
            settings.kafka_bootstrap,
            settings.topics.dead_letter,
            trainer.while_alive(lambda values: len(values) >= len(expected)),
            timeout=60,
        )
    )
    assert trainer.alive()

    by_key = {letter.partition_key(): letter for letter in found}
    assert {key: letter.reason for key, letter in by_key.items()} == expected
    assert len(found) == len(expected)
    for key, letter in by_key.items():
        original = originals[key]
        assert letter.source_topic == settings.topics.retrain_requested
        assert letter.value_size == len(original)
        assert letter.value_sha256 == hashlib.sha256(original).hexdigest()
        kept = base64.b64decode(letter.value_b64)
        if len(original) > KEPT_VALUE_BYTES or key == huge_key[:KEPT_KEY_BYTES]:
            assert letter.truncated, key[:20]
            assert kept == original[:KEPT_VALUE_BYTES]
        else:
            assert not letter.truncated
            assert kept == original
    assert by_key[huge_key[:KEPT_KEY_BYTES]].key_size == len(huge_key)
    assert "2999-01-01" in by_key[b"bad-future"].error
    assert by_key[b"bad-future"].stage == "admit"
    assert "family delinquency (first expense-fraud)" in by_key[b"bad-reuse"].error

    # Restarted, the trainer starts after everything it handled: nothing is set aside or
    # answered twice, and a new request is answered.
    trainer.stop()
    sentinel = request(ModelFamily.EXPENSE_FRAUD, datetime.now(UTC))
    send(
        settings.kafka_bootstrap,
        settings.topics.retrain_requested,
        [(CODEC.key_of(sentinel), CODEC.encode(sentinel))],
    )
    trainer.start()
    outcomes = answers(
        read_until(
            settings.kafka_bootstrap,
            settings.topics.training_outcome,
            trainer.while_alive(answered(sentinel.request_id)),
            timeout=120,
        )
    )
    assert trainer.alive()
    skipped_fraud = (ModelFamily.EXPENSE_FRAUD, OutcomeStatus.SKIPPED)
    assert [(o.family, o.status) for o in outcomes if o.request_id == first.request_id] == [
        skipped_fraud,
        skipped_fraud,
    ]
    assert [o.status for o in outcomes if o.request_id == last.request_id] == [
        OutcomeStatus.SKIPPED
    ]
    assert len(outcomes) == 4, outcomes
    assert len(read_all(settings.kafka_bootstrap, settings.topics.dead_letter)) == len(expected)

    conn = await asyncpg.connect(fresh_database_url)
    try:
        logged = {
            r["request_id"]: r["family"]
            for r in await conn.fetch("SELECT request_id, family FROM model_retraining_log")
        }
        bound = await conn.fetchval(
            "SELECT family FROM request_identities WHERE request_id = $1", first.request_id
        )
    finally:
        await conn.close()
    assert logged == {
        first.request_id: "expense-fraud",
        last.request_id: "delinquency",
        sentinel.request_id: "expense-fraud",
    }
    assert bound == "expense-fraud"


async def test_letters_and_outcomes_that_kafka_refuses_do_not_stop_the_trainer(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str, tmp_path: Path
) -> None:
    """A dead-letter topic that takes only small messages, an outcome topic that takes none."""
    settings = TrainerSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=fresh_database_url,  # type: ignore[arg-type]
        topics=TopicNames(
            retrain_requested=make_topic("retrain", partitions=1),
            model_updated=make_topic("model-updated", partitions=1),
            training_outcome=make_topic(
                "outcome-tiny", partitions=1, config={"max.message.bytes": "200"}
            ),
            dead_letter=make_topic(
                "dead-letter-small", partitions=1, config={"max.message.bytes": "4096"}
            ),
        ),
        trainer_group_id=f"trainer-{uuid.uuid4().hex[:8]}",
    )
    trainer = TrainerProcess(trainer_env(settings), tmp_path / "trainer.log")
    template = request(ModelFamily.DELINQUENCY, datetime.now(UTC))
    big = as_json(template, reason_text="z" * 100_000)
    valid = [request(family, datetime.now(UTC)) for family in ModelFamily]
    send(
        settings.kafka_bootstrap,
        settings.topics.retrain_requested,
        [(b"bad-100kb", big), *((CODEC.key_of(r), CODEC.encode(r)) for r in valid)],
    )
    trainer.start()
    try:
        found = letters(
            read_until(
                settings.kafka_bootstrap,
                settings.topics.dead_letter,
                trainer.while_alive(lambda values: len(values) >= 3),
                timeout=120,
            )
        )
        assert trainer.alive()
    finally:
        trainer.stop()
    assert [letter.reason for letter in found] == ["string_too_long", *["outcome_rejected"] * 2]

    # Its full letter (~133 KB) was refused; the one without the bytes still finds them.
    bare = found[0]
    assert bare.truncated
    assert (bare.value_b64, bare.key_b64) == ("", "")
    assert (bare.value_size, bare.value_sha256) == (len(big), hashlib.sha256(big).hexdigest())
    assert bare.key_sha256 == hashlib.sha256(b"bad-100kb").hexdigest()

    # The requests were trained and logged; only their outcomes could not be published.
    for request_, letter in zip(valid, found[1:], strict=True):
        assert letter.stage == "publish"
        assert "MSG_SIZE_TOO_LARGE" in letter.error
        assert CODEC.decode_as(RetrainRequested, base64.b64decode(letter.value_b64)) == request_
    conn = await asyncpg.connect(fresh_database_url)
    try:
        logged = await conn.fetch("SELECT request_id, status FROM model_retraining_log")
    finally:
        await conn.close()
    assert {(r["request_id"], r["status"]) for r in logged} == {
        (r.request_id, "skipped") for r in valid
    }


class OutageOnDeadLetters(Publisher):
    """The real publisher, except that Kafka seems down for the first few dead letters."""

    def __init__(self, settings: TrainerSettings, codec: Codec, failures: int) -> None:
        super().__init__(settings, codec)
        self.failures = failures
        self.refused = 0

    async def send(self, messages: Sequence[Outgoing]) -> None:
        if self.refused < self.failures and any(
            m.topic == self._settings.topics.dead_letter for m in messages
        ):
            self.refused += 1
            raise DependencyUnavailable("publishing to Kafka failed after 2 attempts (outage)")
        await super().send(messages)


async def test_a_dead_letter_that_cannot_be_published_yet_is_retried_not_dropped(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    settings = TrainerSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=fresh_database_url,  # type: ignore[arg-type]
        topics=TopicNames(
            retrain_requested=make_topic("retrain", partitions=1),
            model_updated=make_topic("model-updated", partitions=1),
            training_outcome=make_topic("outcome", partitions=1),
            dead_letter=make_topic("dead-letter", partitions=1),
        ),
        trainer_group_id=f"trainer-{uuid.uuid4().hex[:8]}",
        trainer_metrics_port=0,
        retry_base_delay_s=0.05,
    )
    app = await build(settings)
    publisher = OutageOnDeadLetters(settings, app.codec, failures=3)
    consumer = RequestConsumer(settings, app.trainer, publisher, app.codec)
    valid = request(ModelFamily.DELINQUENCY, datetime.now(UTC))
    send(
        settings.kafka_bootstrap,
        settings.topics.retrain_requested,
        [(b"bad", b"{oops"), (CODEC.key_of(valid), CODEC.encode(valid))],
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        outcomes = answers(
            await asyncio.to_thread(
                read_until,
                settings.kafka_bootstrap,
                settings.topics.training_outcome,
                answered(valid.request_id),
            )
        )
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await asyncio.to_thread(publisher.close)
        await app.close()
    assert publisher.refused == 3
    assert [o.request_id for o in outcomes] == [valid.request_id]
    found = letters(read_all(settings.kafka_bootstrap, settings.topics.dead_letter))
    assert [(letter.partition_key(), letter.reason) for letter in found] == [
        (b"bad", "invalid_json")
    ]
    assert consumer.dead_lettered == 1
