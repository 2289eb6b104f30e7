"""Small real-Kafka helpers for the trainer tests: produce events, read topics, run the service."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer

from edge.settings import TopicNames
from schemas.base import Event, ModelFamily
from schemas.codec import Codec
from schemas.retrain_requested import RetrainReason, RetrainRequested
from tests.conftest import Stack, TopicFactory
from trainer.bootstrap import TrainerApp
from trainer.settings import TrainerSettings


def settings_for(
    stack: Stack, url: str, make_topic: TopicFactory, **extra: object
) -> TrainerSettings:
    """Trainer settings on private topics (one partition each) and `url`; `extra` overrides."""
    return TrainerSettings(
        kafka_bootstrap=stack.bootstrap,
        database_url=url,  # type: ignore[arg-type]
        topics=TopicNames(
            retrain_requested=make_topic("retrain", partitions=1),
            model_updated=make_topic("model-updated", partitions=1),
            training_outcome=make_topic("outcome", partitions=1),
            dead_letter=make_topic("dead-letter", partitions=1),
        ),
        trainer_group_id=f"trainer-{uuid.uuid4().hex[:8]}",
        trainer_metrics_port=0,
        retry_attempts=2,
        **extra,  # type: ignore[arg-type]
    )


def request(
    family: ModelFamily, cutoff: datetime, *, force: bool = False, text: str = "test"
) -> RetrainRequested:
    return RetrainRequested(
        occurred_at=datetime.now(UTC),
        request_id=uuid.uuid4(),
        family=family,
        reason=RetrainReason.MANUAL,
        reason_text=text,
        counters={},
        data_cutoff=cutoff,
        force=force,
        requested_by="tests",
    )


def produce(bootstrap: str, topic: str, codec: Codec, *events: Event, raw: bytes = b"") -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in events:
        producer.produce(topic, key=codec.key_of(event), value=codec.encode(event))
    if raw:
        producer.produce(topic, key=b"garbage", value=raw)
    assert producer.flush(30) == 0


def read_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[bytes]], bool],
    timeout: float = 90.0,
) -> list[bytes]:
    """Every value on `topic` from the start, polled until `done(values)` or the deadline."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
            if done(values):
                return values
    finally:
        consumer.close()
    raise AssertionError(f"timed out reading {topic}: {len(values)} messages")


async def read_events(
    bootstrap: str,
    topic: str,
    codec: Codec,
    event_type: type[Event],
    done: Callable[[list[Event]], bool],
    within: float = 90.0,
) -> list[Event]:
    def decoded(values: list[bytes]) -> list[Event]:
        return [codec.decode_as(event_type, v) for v in values]

    values = await asyncio.to_thread(
        read_until, bootstrap, topic, lambda vs: done(decoded(vs)), within
    )
    return decoded(values)


@asynccontextmanager
async def running(app: TrainerApp) -> AsyncIterator[TrainerApp]:
    """The app's consumer loop in a task for the duration of the block, then a clean stop."""
    stop = asyncio.Event()
    task = asyncio.create_task(app.consumer.run(stop))
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await app.close()
