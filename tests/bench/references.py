"""The two references a worker's throughput is set beside, both reading the worker's own topics
from the beginning to the end offsets they find at start:

- plain consume + decode: one confluent-kafka consumer and the codec, nothing stored (what the
  broker and the decode alone allow);
- plain loop with the same handlers: one confluent-kafka consumer handing each batch to the
  worker's own upstream handling (`UpstreamConsumer.handle`: decode, store, score, emit, dead
  letters, signals) on a database of its own, without Faust, commits or lag bookkeeping (what
  the handlers allow).

The worker's figure over either one says what the rest costs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from schemas.codec import Codec
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams.agents.ingest import build_upstream
from streams.context import build_context
from streams.scoring_frames import LoadedModel
from streams.services.ingest import UPSTREAM_EVENT_TYPES
from streams.settings import StreamsSettings

READ_TIMEOUT_S = 1800.0
"""A reference that has not reached the end offsets by then has stalled."""

Ends = dict[tuple[str, int], int]


@dataclass(frozen=True)
class Reading:
    """What a reference read: events, expense lines among them, and the seconds it took."""

    events: int
    lines: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def lines_per_s(self) -> float:
        return self.lines / self.seconds


def end_offsets(bootstrap: str, topics: Iterable[str]) -> Ends:
    """The high watermark of every partition of `topics`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        ends: Ends = {}
        for topic in topics:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            for p in partitions:
                ends[(topic, p)] = consumer.get_watermark_offsets(
                    TopicPartition(topic, p), timeout=10
                )[1]
        return ends
    finally:
        consumer.close()


class _ToTheEnd:
    """A group-less consumer assigned every non-empty partition from offset 0."""

    def __init__(self, bootstrap: str, ends: Ends) -> None:
        self.ends = ends
        self.left = {key for key, end in ends.items() if end > 0}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench-plain-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        self.consumer.assign([TopicPartition(t, p, 0) for t, p in sorted(self.left)])
        self.began = time.perf_counter()

    def usable(self, messages: Sequence[Message]) -> list[Message]:
        """The messages without an error; partitions read to their end are done."""
        usable = [m for m in messages if m.error() is None]
        for message in usable:
            key = (message.topic() or "", message.partition() or 0)
            if (message.offset() or 0) + 1 >= self.ends[key]:
                self.left.discard(key)
        if time.perf_counter() - self.began > READ_TIMEOUT_S:
            raise TimeoutError(f"a reference did not reach the end in {READ_TIMEOUT_S:.0f}s")
        return usable

    def close(self) -> None:
        self.consumer.close()


def plain_consume_decode(bootstrap: str, topics: Mapping[str, str], batch: int = 1000) -> Reading:
    """Read `topics` (real name -> default name) to their end and decode every message."""
    codec = Codec()
    types = {topic: UPSTREAM_EVENT_TYPES[logical] for topic, logical in topics.items()}
    reader = _ToTheEnd(bootstrap, end_offsets(bootstrap, topics))
    events = lines = 0
    try:
        while reader.left:
            for message in reader.usable(reader.consumer.consume(batch, timeout=1.0)):
                event = codec.decode_as(types[message.topic() or ""], message.value() or b"")
                events += 1
                if isinstance(event, ExpenseSheetSubmitted):
                    lines += len(event.lines)
        return Reading(events, lines, time.perf_counter() - reader.began)
    finally:
        reader.close()


def plain_handlers(
    settings: StreamsSettings, models: Sequence[LoadedModel], lines: int = 0
) -> Reading:
    """Hand the upstream topics of `settings` to the worker's handlers, batch by batch, with
    `models` scoring; `settings` name a database of the reference's own. `lines` is how many
    expense lines the topics hold (reported, not counted)."""
    return asyncio.run(_handle_all(settings, models, lines))


async def _handle_all(
    settings: StreamsSettings, models: Sequence[LoadedModel], lines: int
) -> Reading:
    ctx = build_context(settings)
    for model in models:
        ctx.holder.swap(model)
    upstream = build_upstream(ctx)
    topics = list(ctx.topics.upstream().values())
    reader = _ToTheEnd(settings.kafka.bootstrap, end_offsets(settings.kafka.bootstrap, topics))
    events = 0
    try:
        while reader.left:
            messages = await asyncio.to_thread(
                reader.consumer.consume, settings.batch_size, settings.batch_within_s
            )
            batch = reader.usable(messages)
            if batch:
                await upstream.handle(batch)
                events += len(batch)
        return Reading(events, lines, time.perf_counter() - reader.began)
    finally:
        reader.close()
        ctx.producer.close()
        await ctx.database.close()
