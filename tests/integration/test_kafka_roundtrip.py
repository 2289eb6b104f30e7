"""The real broker carries 10,000 messages from a confluent-kafka producer to an aiokafka group."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

from aiokafka import AIOKafkaConsumer
from confluent_kafka import Producer

from tests.conftest import Stack, TopicFactory

MESSAGES = 10_000


def _produce(bootstrap: str, topic: str) -> dict[str, bytes]:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    sent: dict[str, bytes] = {}
    for i in range(MESSAGES):
        key = f"key-{i % 97}-{i}"
        value = json.dumps({"n": i, "digest": hashlib.sha256(key.encode()).hexdigest()}).encode()
        sent[key] = value
        while True:
            try:
                producer.produce(topic, key=key.encode(), value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} messages were never delivered"
    assert not errors, errors[:5]
    return sent


async def _consume(bootstrap: str, topic: str, group: str, expected: int) -> dict[str, bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    received: dict[str, bytes] = {}
    partitions: set[int] = set()
    deadline = time.monotonic() + 120
    try:
        while len(received) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=2000)
            for tp, records in batches.items():
                partitions.add(tp.partition)
                for record in records:
                    assert record.key is not None
                    assert record.value is not None
                    received[record.key.decode()] = record.value
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()
    assert partitions == {0, 1, 2, 3}, f"records came from partitions {sorted(partitions)}"
    return received


async def test_confluent_producer_to_aiokafka_group(stack: Stack, make_topic: TopicFactory) -> None:
    topic = make_topic("roundtrip", partitions=4)
    sent = await asyncio.to_thread(_produce, stack.bootstrap, topic)
    received = await _consume(stack.bootstrap, topic, f"group-{topic}", len(sent))
    assert len(received) == MESSAGES
    assert received == sent
