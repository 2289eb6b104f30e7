"""Run real worker processes with topics, consumer group and database private to each test.

The processes come from the service harness (tests/services.py); this module holds the fixture
and the reader tests check topics with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from retrainer.harness import free_port
from tests.conftest import Stack
from tests.factories import new_prefix, wait_until
from tests.services import Workers, delete_prefixed_topics

__all__ = ["Workers", "delete_prefixed_topics", "free_port", "read_all", "workers"]


_LEADERSHIP_MOVING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError._TRANSPORT,
}


@pytest.fixture
def workers(stack: Stack, fresh_database_url: str, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(stack, fresh_database_url, tmp_path)
    yield group
    group.close()


def _end_offset(consumer: Consumer, partition: TopicPartition) -> int:
    """The partition's high watermark; a broker just restarted may not lead it for a moment."""
    found: list[int] = []

    def asked() -> bool:
        try:
            found.append(consumer.get_watermark_offsets(partition, timeout=10)[1])
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in _LEADERSHIP_MOVING:
                raise
            return False
        return True

    wait_until(asked, 60, f"a leader for {partition.topic}[{partition.partition}]")
    return found[-1]


def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message now in `topic`, read to the end offsets captured first."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{new_prefix()}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: _end_offset(consumer, TopicPartition(topic, p)) for p in partitions}
        wanted = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in wanted])
        out: list[tuple[bytes | None, bytes]] = []
        done: set[int] = set()

        def drained() -> bool:
            for message in consumer.consume(500, timeout=0.5):
                if message.error():
                    continue
                out.append((message.key(), message.value() or b""))
                if message.offset() + 1 >= wanted[message.partition()]:
                    done.add(message.partition())
            return done >= set(wanted)

        wait_until(drained, 60, f"reading {topic} to its end")
        return out
    finally:
        consumer.close()
