"""The delivering producer on the real broker: every message delivered, or one error naming each
message that was not and why."""

from __future__ import annotations

import os
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from edge.kafka import KafkaConnection
from edge.producer import DeliveringProducer, DeliveryFailed
from tests.conftest import Stack, TopicFactory

pytestmark = pytest.mark.integration


def count(stack: Stack, topic: str, partitions: int) -> int:
    """Messages in `topic` (the sum of its partitions' end offsets; it starts empty)."""
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": uuid.uuid4().hex})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)[1]
            for p in range(partitions)
        )
    finally:
        consumer.close()


def test_a_batch_is_delivered_whole_through_a_full_queue(
    stack: Stack, make_topic: TopicFactory
) -> None:
    topic = make_topic("delivered", partitions=3)
    # A queue of 20 messages: most of the batch waits for room (BufferError) on the way in.
    producer = DeliveringProducer(
        KafkaConnection(stack.bootstrap), **{"queue.buffering.max.messages": 20}
    )
    messages = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(500)]
    producer.deliver(topic, messages)
    producer.close()
    assert count(stack, topic, 3) == 500


async def test_async_sends_and_enqueued_messages_are_all_delivered(
    stack: Stack, make_topic: TopicFactory
) -> None:
    topic = make_topic("async", partitions=2)
    producer = DeliveringProducer(KafkaConnection(stack.bootstrap))
    await producer.send_all(topic, [(None, b"a"), (b"k", b"b")])
    await producer.send(topic, b"k", b"c")
    await producer.send_all(topic, [])
    producer.enqueue(topic, [(b"q", b"d"), (b"q", b"e")])
    producer.close(timeout_s=30)
    assert count(stack, topic, 2) == 5


def test_a_message_the_topic_refuses_is_named_and_marked_refused(
    stack: Stack, make_topic: TopicFactory
) -> None:
    topic = make_topic("small", partitions=1, config={"max.message.bytes": "2048"})
    producer = DeliveringProducer(KafkaConnection(stack.bootstrap))
    producer.deliver(topic, [(b"fits", b"x" * 100)])
    with pytest.raises(DeliveryFailed) as caught:
        # Random bytes: nothing would compress them under the topic's limit.
        producer.deliver(topic, [(b"too-big", os.urandom(64 * 1024))])
    failure = caught.value
    assert [(f.topic, f.index, f.key) for f in failure.failed] == [(topic, 0, b"too-big")]
    assert failure.failed[0].error.code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert failure.refused
    assert "1 of 1 message(s) not delivered" in str(failure)
    # The producer goes on working after a refusal.
    producer.deliver(topic, [(b"after", b"y")])
    producer.close()
    assert count(stack, topic, 1) == 2


def test_a_message_over_the_client_limit_fails_alone(
    stack: Stack, make_topic: TopicFactory
) -> None:
    topic = make_topic("client-limit", partitions=1)
    producer = DeliveringProducer(KafkaConnection(stack.bootstrap), **{"message.max.bytes": 4096})
    with pytest.raises(DeliveryFailed) as caught:
        producer.deliver(topic, [(b"a", b"1"), (b"b", os.urandom(8192)), (b"c", b"3")])
    assert [f.index for f in caught.value.failed] == [1]
    assert caught.value.refused
    producer.close()
    assert count(stack, topic, 1) == 2


def test_a_topic_that_does_not_exist_fails_every_message_without_calling_it_refused(
    stack: Stack,
) -> None:
    producer = DeliveringProducer(
        KafkaConnection(stack.bootstrap),
        **{"allow.auto.create.topics": False, "message.timeout.ms": 3000},
    )
    topic = f"test-{stack.session_id}-absent-{uuid.uuid4().hex[:6]}"
    with pytest.raises(DeliveryFailed) as caught:
        producer.deliver(topic, [(b"a", b"1"), (b"b", b"2")])
    assert [f.index for f in caught.value.failed] == [0, 1]
    assert not caught.value.refused
    assert {f.error.code() for f in caught.value.failed} <= {
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._MSG_TIMED_OUT,
    }


def test_enqueued_failures_are_raised_by_close(stack: Stack, make_topic: TopicFactory) -> None:
    roomy = make_topic("close-roomy", partitions=1)
    # (The broker refuses a whole record batch: the refused message goes to a topic of its own.)
    small = make_topic("close-small", partitions=1, config={"max.message.bytes": "2048"})
    producer = DeliveringProducer(KafkaConnection(stack.bootstrap))
    producer.enqueue(roomy, [(b"ok", b"x"), (b"ok", b"y")])
    producer.enqueue(small, [(b"big", os.urandom(64 * 1024))])
    with pytest.raises(DeliveryFailed) as caught:
        producer.close(timeout_s=30)
    assert [(f.topic, f.index, f.key) for f in caught.value.failed] == [(small, 0, b"big")]
    assert caught.value.total == 3
    assert count(stack, roomy, 1) == 2
