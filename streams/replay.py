"""Replay upstream topics into PostgreSQL: from the beginning or a time, stopping at today's end.

Backfills a new deployment and recovers lost state. A replay reads with its own consumer
(partitions assigned, nothing committed), stops at the end offsets it saw at start, and stores
through the worker's own decode + sink path (`IngestHandler`), so replaying twice changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from edge.dead_letters import RawMessage
from edge.producer import DeliveringProducer, DeliveryFailed
from schemas.base import ModelFamily
from schemas.codec import Codec
from streams.services.ingest import IngestHandler, IngestResult
from streams.settings import StreamsSettings
from streams.signals import PolicySignal, SignalKind

log = logging.getLogger(__name__)

# librdkafka's default partitioner hashes keys with CRC32; Faust (aiokafka) and Java use
# murmur2. Signals must land where the worker's own signals for the family land.
SIGNAL_PARTITIONER = "murmur2_random"


class ReplayError(Exception):
    """A replay could not be planned or finished (bad arguments, broker or database trouble)."""


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time (naive = UTC) or epoch milliseconds (Kafka's own unit), as UTC."""
    raw = text.strip()
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ReplayError(f"expected an ISO 8601 time or epoch milliseconds, got {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class ReplayOptions:
    """What to replay: which upstream topics, and from when to when."""

    topics: tuple[str, ...] = ()
    """Default (logical) names such as expense-sheet; empty = all four upstream topics."""
    from_time: datetime | None = None
    """None = from the beginning of each partition."""
    to_time: datetime | None = None
    """Stop each partition at its first message at or after this time (None = today's end)."""
    commit_group: str | None = None
    """After a full replay, move this (idle) consumer group to the offsets the replay stopped at."""
    batch_size: int = 2000
    concurrency: int = 3
    """Batches stored at once: decoding the next batch overlaps storing the last."""
    notify_policy: bool = True
    """Send an `ingested` signal per family whose data moved, so a worker re-evaluates at once."""
    stall_timeout_s: float = 120.0
    """Give up when no message arrives for this long although the end is not reached."""

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ReplayError("batch_size and concurrency must be at least 1")
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise ReplayError("--to must be after --from")
        if self.commit_group and self.from_time is not None:
            raise ReplayError(
                "--commit-group needs --from-beginning: offsets before --from were not replayed"
            )


@dataclass(frozen=True)
class PartitionPlan:
    """One partition's share of a replay: offsets [start, stop)."""

    logical: str
    topic: str
    partition: int
    start: int
    stop: int

    @property
    def size(self) -> int:
        return max(self.stop - self.start, 0)


@dataclass
class TopicTally:
    """What a replay did with one topic's messages."""

    consumed: int = 0
    new: int = 0
    present: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    """Messages inside the offsets but timestamped before --from (out-of-order producers)."""

    def add(self, result: IngestResult) -> None:
        self.new += result.stored.new
        self.present += result.stored.present
        self.dead_lettered += len(result.dead_letters)


@dataclass(frozen=True)
class ReplaySummary:
    """The end of a replay: consumed, newly stored, already present, dead-lettered."""

    topics: Mapping[str, TopicTally]
    partitions: int
    offsets: int
    """Offsets the replay covered (start to stop over every partition)."""
    seconds: float
    from_time: datetime | None
    to_time: datetime | None
    committed_group: str | None = None
    families_notified: tuple[str, ...] = ()

    def _total(self, name: str) -> int:
        return sum(int(getattr(tally, name)) for tally in self.topics.values())

    @property
    def consumed(self) -> int:
        return self._total("consumed")

    @property
    def new(self) -> int:
        return self._total("new")

    @property
    def present(self) -> int:
        return self._total("present")

    @property
    def dead_lettered(self) -> int:
        return self._total("dead_lettered")

    @property
    def skipped(self) -> int:
        return self._total("skipped")

    @property
    def rate(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.from_time.isoformat() if self.from_time else "beginning",
            "to": self.to_time.isoformat() if self.to_time else "end",
            "partitions": self.partitions,
            "offsets": self.offsets,
            "consumed": self.consumed,
            "newly_stored": self.new,
            "already_present": self.present,
            "dead_lettered": self.dead_lettered,
            "skipped_before_from": self.skipped,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.rate, 1),
            "committed_group": self.committed_group,
            "families_notified": list(self.families_notified),
            "topics": {
                name: {
                    "consumed": t.consumed,
                    "newly_stored": t.new,
                    "already_present": t.present,
                    "dead_lettered": t.dead_lettered,
                    "skipped_before_from": t.skipped,
                }
                for name, t in sorted(self.topics.items())
            },
        }


ProgressCallback = Callable[[int, int, int], None]
"""(offsets done, offsets total, messages consumed) → None; called after every batch."""


def resolve_topics(settings: StreamsSettings, wanted: Iterable[str]) -> dict[str, str]:
    """Logical name → configured topic for the upstream topics asked for (default or configured
    names both accepted)."""
    upstream = settings.topics.upstream()
    by_configured = {name: logical for logical, name in upstream.items()}
    chosen: dict[str, str] = {}
    for name in wanted:
        logical = name if name in upstream else by_configured.get(name)
        if logical is None:
            known = ", ".join(sorted(upstream))
            raise ReplayError(f"{name!r} is not an upstream topic; choose from {known}")
        chosen[logical] = upstream[logical]
    return chosen or dict(upstream)


def plan_partitions(
    consumer: Consumer,
    topics: Mapping[str, str],
    from_time: datetime | None,
    to_time: datetime | None,
    timeout_s: float = 15.0,
) -> list[PartitionPlan]:
    """Start and stop offsets of every partition, with the end offsets captured now."""
    try:
        metadata = consumer.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ReplayError(f"cannot reach Kafka: {exc}") from exc
    partitions: list[tuple[str, TopicPartition]] = []
    for logical, topic in topics.items():
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise ReplayError(f"topic {topic!r} does not exist")
        partitions.extend((logical, TopicPartition(topic, p)) for p in sorted(info.partitions))
    watermarks = {
        (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=timeout_s)
        for _, tp in partitions
    }
    starts = _offsets_at(consumer, [tp for _, tp in partitions], from_time, watermarks, timeout_s)
    stops = _offsets_at(consumer, [tp for _, tp in partitions], to_time, watermarks, timeout_s)
    plans: list[PartitionPlan] = []
    for logical, tp in partitions:
        key = (tp.topic, tp.partition)
        low, high = watermarks[key]
        start = low if from_time is None else starts[key]
        stop = high if to_time is None else min(stops[key], high)
        plans.append(PartitionPlan(logical, tp.topic, tp.partition, start, max(start, stop)))
    return plans


def _offsets_at(
    consumer: Consumer,
    partitions: list[TopicPartition],
    moment: datetime | None,
    watermarks: Mapping[tuple[str, int], tuple[int, int]],
    timeout_s: float,
) -> dict[tuple[str, int], int]:
    """The first offset at or after `moment` per partition (the end offset when there is none)."""
    if moment is None:
        return {}
    query = [TopicPartition(tp.topic, tp.partition, to_millis(moment)) for tp in partitions]
    try:
        found = consumer.offsets_for_times(query, timeout=timeout_s)
    except KafkaException as exc:
        raise ReplayError(f"cannot look up offsets for {moment.isoformat()}: {exc}") from exc
    offsets: dict[tuple[str, int], int] = {}
    for tp in found:
        if tp.error is not None:
            raise ReplayError(f"offsets_for_times failed on {tp.topic}[{tp.partition}]: {tp.error}")
        key = (tp.topic, tp.partition)
        # -1: no message at or after the time; the partition has nothing in range.
        offsets[key] = tp.offset if tp.offset >= 0 else watermarks[key][1]
    return offsets


# -- consumer groups ---------------------------------------------------------------------------


def group_members(admin: AdminClient, group: str, timeout_s: float = 15.0) -> int:
    """How many members `group` has now (0 for an unknown or empty group)."""
    future = admin.describe_consumer_groups([group], request_timeout=timeout_s)[group]
    try:
        description = future.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
            return 0
        raise ReplayError(f"cannot describe consumer group {group!r}: {exc}") from exc
    return len(description.members)


def committed_offsets(
    admin: AdminClient, group: str, partitions: Sequence[TopicPartition], timeout_s: float = 15.0
) -> dict[tuple[str, int], int]:
    """The group's committed offset per partition; partitions without one are left out."""
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    )
    future = admin.list_consumer_group_offsets([request], request_timeout=timeout_s)[group]
    try:
        answer = future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise ReplayError(f"cannot read offsets of group {group!r}: {exc}") from exc
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in answer.topic_partitions
        if tp.error is None and tp.offset >= 0
    }


def set_group_offsets(
    admin: AdminClient,
    group: str,
    offsets: Mapping[tuple[str, int], int],
    timeout_s: float = 15.0,
) -> None:
    """Commit `offsets` for an idle group (the broker refuses while members are active)."""
    if not offsets:
        return
    members = group_members(admin, group, timeout_s)
    if members:
        raise ReplayError(
            f"consumer group {group!r} has {members} active member(s); stop its workers first"
        )
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, offset) for (topic, p), offset in sorted(offsets.items())]
    )
    future = admin.alter_consumer_group_offsets([request], request_timeout=timeout_s)[group]
    try:
        answer = future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise ReplayError(f"cannot set offsets of group {group!r}: {exc}") from exc
    failed = [tp for tp in answer.topic_partitions if tp.error is not None]
    if failed:
        raise ReplayError(f"cannot set offsets of group {group!r}: {failed[0].error}")


def send_signals(settings: StreamsSettings, signals: Sequence[PolicySignal]) -> None:
    """Deliver policy signals and wait for the broker's acknowledgement of each."""
    if not signals:
        return
    # Family-keyed signals land on the worker's partitions for them (SIGNAL_PARTITIONER).
    producer = DeliveringProducer(settings.kafka, partitioner=SIGNAL_PARTITIONER)
    topic = settings.topics.policy_signals
    try:
        producer.deliver(topic, [(s.family.value.encode(), s.encode()) for s in signals])
    except DeliveryFailed as exc:
        raise ReplayError(f"policy signals were not delivered: {exc}") from exc
    finally:
        producer.close()


# -- the replay --------------------------------------------------------------------------------


class _DeadLetterSender:
    """Produces dead letters in the background; `close` accounts for every delivery."""

    def __init__(self, settings: StreamsSettings, codec: Codec) -> None:
        self._topic = settings.topics.dead_letter
        self._codec = codec
        self._producer = DeliveringProducer(
            settings.kafka,
            **{
                "linger.ms": 20,
                # A letter carries its message base64-encoded: a message that only just passed
                # the broker's size limit needs compression (gzip: every client reads it) and a
                # client limit above the broker's to pass again.
                "compression.type": "gzip",
                "message.max.bytes": 16 * 1024 * 1024,
            },
        )

    def send(self, result: IngestResult) -> None:
        letters = [
            (letter.partition_key(), self._codec.encode(letter)) for letter in result.dead_letters
        ]
        if letters:
            self._producer.enqueue(self._topic, letters)

    def close(self, timeout_s: float = 60.0) -> None:
        try:
            self._producer.close(timeout_s)
        except DeliveryFailed as exc:
            raise ReplayError(f"dead letters not delivered: {exc}") from exc


@dataclass
class _Cursor:
    """Where a replay stands: the partitions still read, the next offset of each, and how many
    offsets are covered so far (for the progress bar)."""

    consumer: Consumer
    active: dict[tuple[str, int], PartitionPlan]
    position: dict[tuple[str, int], int]
    done: int = 0

    @classmethod
    def of(cls, consumer: Consumer, plans: Sequence[PartitionPlan]) -> _Cursor:
        active = {(p.topic, p.partition): p for p in plans if p.size > 0}
        return cls(consumer, active, {key: plan.start for key, plan in active.items()})

    def advance(self, key: tuple[str, int], offset: int) -> None:
        """`offset` of partition `key` was read."""
        self.done += offset + 1 - self.position[key]
        self.position[key] = offset + 1

    def finish(self, key: tuple[str, int]) -> None:
        """Partition `key` reached its stop: its remaining offsets count as covered."""
        plan = self.active.pop(key)
        self.done += plan.stop - self.position[key]
        self.position[key] = plan.stop
        self.consumer.pause([TopicPartition(key[0], key[1])])

    def waiting_on(self) -> str:
        return ", ".join(f"{t}[{p}]@{self.position[(t, p)]}" for t, p in sorted(self.active))


class Replayer:
    """Consumes the planned partitions in batches and stores them through the ingest handler."""

    def __init__(
        self,
        settings: StreamsSettings,
        options: ReplayOptions,
        handler: IngestHandler,
        dead_letters: _DeadLetterSender,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.settings = settings
        self.options = options
        self.handler = handler
        self.dead_letters = dead_letters
        self.progress = progress
        self.tallies: dict[str, TopicTally] = {}
        self.families: set[ModelFamily] = set()

    def consumer(self) -> Consumer:
        return Consumer(
            self.settings.kafka.confluent(
                {
                    # A group of its own per run: nothing is committed, nothing is shared with the
                    # workers; the partitions are assigned, not subscribed.
                    "group.id": f"retrainer-replay-{uuid.uuid4().hex[:12]}",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                    "fetch.max.bytes": 64 * 1024 * 1024,
                    "max.partition.fetch.bytes": 8 * 1024 * 1024,
                    "queued.max.messages.kbytes": 256 * 1024,
                }
            )
        )

    async def run(self, consumer: Consumer, plans: Sequence[PartitionPlan]) -> int:
        """Replay every plan to its stop offset; returns the offsets covered."""
        for plan in plans:
            self.tallies.setdefault(plan.logical, TopicTally())
        cursor = _Cursor.of(consumer, plans)
        total = sum(plan.size for plan in cursor.active.values())
        if not cursor.active:
            self._report(0, total)
            return 0
        consumer.assign(
            [TopicPartition(topic, p, plan.start) for (topic, p), plan in cursor.active.items()]
        )
        in_flight: set[asyncio.Task[None]] = set()
        limit = asyncio.Semaphore(self.options.concurrency)
        last_message = time.monotonic()
        while cursor.active:
            messages = await asyncio.to_thread(consumer.consume, self.options.batch_size, 0.5)
            if not messages:
                if time.monotonic() - last_message > self.options.stall_timeout_s:
                    raise ReplayError(
                        f"no message for {self.options.stall_timeout_s:.0f}s; still waiting "
                        f"on {cursor.waiting_on()}"
                    )
                continue
            last_message = time.monotonic()
            for logical, raw in self._batches(messages, cursor).items():
                await limit.acquire()
                task = asyncio.create_task(self._store(logical, raw, limit))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            # Surface a failed store at once instead of at the end.
            for task in [t for t in in_flight if t.done()]:
                task.result()
            self._report(cursor.done, total)
        if in_flight:
            await asyncio.gather(*in_flight)
        self._report(total, total)
        return total

    def _batches(self, messages: list[Message], cursor: _Cursor) -> dict[str, list[RawMessage]]:
        """The consumed messages to store, one batch per logical topic.

        Moves the cursor past every message, and ends each partition that reached its stop.
        """
        from_ms = to_millis(self.options.from_time) if self.options.from_time else None
        batches: dict[str, list[RawMessage]] = {}
        for message in messages:
            error = message.error()
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is None or partition is None:
                if error is not None and error.fatal():
                    raise ReplayError(f"consumer failed: {error}")
                continue
            key = (topic, partition)
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    # Transaction markers and compaction leave offsets without messages:
                    # the end of the log means the stop offset is behind us.
                    if key in cursor.active:
                        cursor.finish(key)
                    continue
                if error.fatal():
                    raise ReplayError(f"consumer failed: {error}")
                log.warning("consumer: %s", error)
                continue
            plan = cursor.active.get(key)
            if plan is None or offset is None:
                continue
            if offset >= plan.stop:
                # A gap (compaction, transaction markers) hid the last offset before stop.
                cursor.finish(key)
                continue
            cursor.advance(key, offset)
            tally = self.tallies[plan.logical]
            kind, stamp = message.timestamp()
            if from_ms is not None and kind != TIMESTAMP_NOT_AVAILABLE and stamp < from_ms:
                tally.skipped += 1
            else:
                tally.consumed += 1
                batches.setdefault(plan.logical, []).append(
                    RawMessage(topic, partition, offset, message.key(), message.value())
                )
            if offset + 1 >= plan.stop:
                cursor.finish(key)
        return batches

    async def _store(
        self, logical: str, messages: list[RawMessage], limit: asyncio.Semaphore
    ) -> None:
        try:
            result = await self.handler.handle(logical, messages)
        finally:
            limit.release()
        self.tallies[logical].add(result)
        self.families |= result.families
        self.dead_letters.send(result)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            consumed = sum(t.consumed + t.skipped for t in self.tallies.values())
            self.progress(done, total, consumed)


async def replay(
    settings: StreamsSettings,
    options: ReplayOptions,
    progress: ProgressCallback | None = None,
    on_plan: Callable[[Sequence[PartitionPlan]], None] | None = None,
) -> ReplaySummary:
    """Replay as `options` say into the database of `settings`; see the module docstring."""
    began = time.monotonic()
    topics = resolve_topics(settings, options.topics)
    codec = Codec(settings.codec_limits())
    pool: asyncpg.Pool | None = None
    lock = asyncio.Lock()

    async def get_pool() -> asyncpg.Pool:
        nonlocal pool
        async with lock:
            if pool is None:
                pool = await asyncpg.create_pool(
                    settings.database_url.get_secret_value(),
                    min_size=1,
                    max_size=options.concurrency + 1,
                    timeout=10,
                )
        return pool

    handler = IngestHandler(
        codec, get_pool, settings.sink_retry_initial_s, settings.sink_retry_max_s
    )
    dead_letters = _DeadLetterSender(settings, codec)
    replayer = Replayer(settings, options, handler, dead_letters, progress)
    consumer = replayer.consumer()
    try:
        plans = plan_partitions(consumer, topics, options.from_time, options.to_time)
        if on_plan is not None:
            on_plan(plans)
        offsets = await replayer.run(consumer, plans)
    finally:
        consumer.close()
        if pool is not None:
            await pool.close()
    dead_letters.close()
    committed = None
    if options.commit_group:
        admin = AdminClient(settings.kafka.confluent())
        targets = {(p.topic, p.partition): p.stop for p in plans}
        current = committed_offsets(
            admin, options.commit_group, [TopicPartition(t, p) for t, p in targets]
        )
        # Never move a group backwards: what it already consumed stays consumed.
        forward = {k: v for k, v in targets.items() if current.get(k, -1) < v}
        set_group_offsets(admin, options.commit_group, forward)
        committed = options.commit_group
    notified: tuple[str, ...] = ()
    if options.notify_policy and replayer.families:
        now = datetime.now(UTC)
        signals = [
            PolicySignal(kind=SignalKind.INGESTED, family=family, sent_at=now)
            for family in sorted(replayer.families)
        ]
        send_signals(settings, signals)
        notified = tuple(family.value for family in sorted(replayer.families))
    return ReplaySummary(
        topics=replayer.tallies,
        partitions=len(plans),
        offsets=offsets,
        seconds=time.monotonic() - began,
        from_time=options.from_time,
        to_time=options.to_time,
        committed_group=committed,
        families_notified=notified,
    )
