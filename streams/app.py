"""The Faust app: thin agents that move bytes between topics and the plain handlers.

`create_app` builds everything from settings; importing this module connects to nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiokafka.errors
import asyncpg
import faust
from confluent_kafka import KafkaError, KafkaException, Producer
from pydantic import ValidationError

from edge.logs import RateLimitedLog, kafka_logger
from schemas.base import ModelFamily
from schemas.codec import Codec, EventT
from schemas.customer_scored import CustomerScored
from schemas.dead_letter import DeadLettered
from schemas.errors import DecodeError
from schemas.expense_scored import ExpenseScored
from schemas.limits import CodecLimits
from schemas.model_updated import ModelUpdated
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import TrainingOutcome
from streams import metrics
from streams.bootstrap import POLICY_TABLE
from streams.handlers import (
    TRANSIENT_DB_ERRORS,
    IngestHandler,
    PolicyEngine,
    PolicyState,
    PolicyStep,
    RawMessage,
    dead_letter,
)
from streams.health import Reachability
from streams.models import ModelFollower, ModelHolder, ModelLoader
from streams.retry import backoff
from streams.scorers import Scorer
from streams.settings import StreamsSettings
from streams.signals import PolicySignal, SignalKind
from streams.store.policy_state import mirror_step
from streams.upstream import UpstreamConsumer, UpstreamOptions

log = logging.getLogger(__name__)
policy_errors = RateLimitedLog(log)
SIGNAL_WAIT_S = 10.0
"""How long ingestion waits for Kafka to take a data-moved signal before it goes on."""

# What a policy step retries: PostgreSQL or Kafka unreachable for now.
POLICY_OUTAGES: tuple[type[BaseException], ...] = (
    *TRANSIENT_DB_ERRORS,
    KafkaException,
    aiokafka.errors.KafkaError,
)

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}


@dataclass
class Scoring:
    """The scoring side of a worker, for the web views and tests."""

    holder: ModelHolder
    loader: ModelLoader
    follower: ModelFollower
    scorer: Scorer


class BulkProducer:
    """A librdkafka producer for high-volume output (scores): thousands of events per batch.

    Faust's own producer costs a Python round trip per message; here a batch is handed to
    librdkafka in one go and the call returns once the broker has acknowledged all of it.
    """

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "linger.ms": 5,
                "enable.idempotence": True,
                "compression.type": "lz4",
                "logger": kafka_logger(),
                # Dead letters of near-limit messages exceed the 1 MiB default (see ensure_topics).
                "message.max.bytes": 16 * 1024 * 1024,
            }
        )
        self._lock = asyncio.Lock()

    async def send_all(self, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _message: object) -> None:
            if err is not None:
                failures.append(str(err))

        def produce_and_flush() -> int:
            for key, value in messages:
                while True:
                    try:
                        self._producer.produce(topic, value, key, on_delivery=delivered)
                        break
                    except BufferError:
                        self._producer.poll(0.05)
            return int(self._producer.flush(60))

        async with self._lock:
            left = await asyncio.to_thread(produce_and_flush)
        if left or failures:
            raise KafkaException(f"{left} undelivered, errors: {failures[:3]}")

    def close(self) -> None:
        self._producer.flush(30)


class Deps:
    """Connections and shared objects, created lazily on first use inside the running loop."""

    scoring: Scoring
    upstream: UpstreamConsumer
    reachability: Reachability

    def __init__(self, settings: StreamsSettings) -> None:
        self.settings = settings
        self.codec = Codec(
            CodecLimits(
                max_payload_bytes=settings.max_payload_bytes,
                max_amount=settings.max_amount,
                max_string_length=settings.max_string_length,
            )
        )
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._bulk: BulkProducer | None = None

    @property
    def bulk(self) -> BulkProducer:
        if self._bulk is None:
            self._bulk = BulkProducer(self.settings.kafka_bootstrap)
        return self._bulk

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self.settings.database_url.get_secret_value(),
                        min_size=1,
                        max_size=self.settings.db_pool_size,
                        timeout=10,
                    )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


_RECORD_REQUEST = """
INSERT INTO retrain_requests (request_id, family, reason, reason_text, counters, data_cutoff,
                              force, requested_by, requested_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
ON CONFLICT (request_id) DO NOTHING
"""


async def record_request(pool: asyncpg.Pool, request: RetrainRequested) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            _RECORD_REQUEST,
            request.request_id,
            request.family.value,
            request.reason.value,
            request.reason_text,
            json.dumps(request.counters),
            request.data_cutoff,
            request.force,
            request.requested_by,
            request.occurred_at,
        )


async def send_now(topic: faust.TopicT, key: bytes, value: bytes) -> None:
    """Send and wait for the broker's ack, so nothing is acked upstream before it is out."""
    pending = await topic.send(key=key, value=value, force=True)
    await pending


def _raw(event: Any) -> RawMessage:
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)


def create_app(settings: StreamsSettings, deps: Deps | None = None) -> faust.App:
    """Build the worker's Faust app: agents, the policy table, timers and web views."""
    deps = deps or Deps(settings)
    topics = settings.topics()
    datadir = settings.worker_data_dir or str(
        Path.home() / ".cache" / "retrainer" / "workers" / settings.app_id
    )
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=datadir,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # Dead letters of near-limit messages exceed the 1 MiB default (see ensure_topics).
        producer_max_request_size=16 * 1024 * 1024,
        broker_session_timeout=settings.session_timeout_s,
        autodiscover=False,
    )

    dead_letters = app.topic(topics.dead_letter, **RAW)
    requests_out = app.topic(topics.retrain_requested, **RAW)
    signals = app.topic(topics.policy_signals, partitions=settings.partitions, **RAW)
    policy_table = app.Table(
        POLICY_TABLE,
        default=dict,
        partitions=settings.partitions,
        # Keys are the family name as raw bytes, exactly as the signals are keyed, so a change
        # and the signals of its family land on the same partition.
        # Faust derives the changelog's serializers from these: bytes -> raw, no type -> json.
        key_type=bytes,
        # Written for a family key while the batch may hold other families' signals: let the
        # partitioner place each change with its key, as it places the signals themselves.
        use_partitioner=True,
    )

    holder = ModelHolder()
    loader = ModelLoader(holder, deps.pool)
    follower = ModelFollower(settings.kafka_bootstrap, topics.model_updated, deps.codec, loader)
    scorer = Scorer(
        holder,
        deps.pool,
        context_lines=settings.score_context_lines,
        context_refresh_s=settings.score_context_refresh_s,
        approval_limit=settings.approval_limit,
    )
    deps.scoring = Scoring(holder, loader, follower, scorer)

    ingest = IngestHandler(
        deps.codec, deps.pool, settings.sink_retry_initial_s, settings.sink_retry_max_s
    )
    engine = PolicyEngine(settings.policy(), deps.pool)

    async def signal(family: ModelFamily, kind: SignalKind, **fields: Any) -> None:
        message = PolicySignal(kind=kind, family=family, sent_at=datetime.now(UTC), **fields)
        await send_now(signals, family.value.encode(), message.encode())

    async def send_dead_letters(letters: Sequence[DeadLettered]) -> None:
        await deps.bulk.send_all(
            topics.dead_letter,
            [(letter.partition_key(), deps.codec.encode(letter)) for letter in letters],
        )

    async def emit_expenses(scored: Sequence[ExpenseScored]) -> None:
        await deps.bulk.send_all(
            topics.expense_scored, [(deps.codec.key_of(s), deps.codec.encode(s)) for s in scored]
        )

    async def emit_customers(scored: Sequence[CustomerScored]) -> None:
        await deps.bulk.send_all(
            topics.customer_scored, [(deps.codec.key_of(s), deps.codec.encode(s)) for s in scored]
        )

    async def data_moved(family: ModelFamily) -> None:
        # Advisory: the policy's next tick reads the same counts from PostgreSQL. Storing must
        # never wait on it — after a broker restart the Faust producer was seen to leave a send
        # unanswered, which held the upstream consumer (and so all ingestion) for good.
        try:
            async with asyncio.timeout(SIGNAL_WAIT_S):
                await signal(family, SignalKind.INGESTED)
        except TimeoutError:
            policy_errors.warning(
                "signal-timeout",
                "the policy was not told within %gs that %s data moved; its next tick will see it",
                SIGNAL_WAIT_S,
                family.value,
            )

    upstream = UpstreamConsumer(
        UpstreamOptions(
            bootstrap=settings.kafka_bootstrap,
            group_id=settings.upstream_group_id,
            topics={name: logical for logical, name in topics.upstream().items()},
            batch_size=settings.batch_size,
            batch_within_s=settings.batch_within_s,
            session_timeout_s=settings.session_timeout_s,
            retry_initial_s=settings.sink_retry_initial_s,
            retry_max_s=settings.sink_retry_max_s,
        ),
        ingest,
        scorer,
        send_dead_letters,
        data_moved,
        emit_expenses,
        emit_customers,
    )
    deps.upstream = upstream
    app.task(upstream.run)
    deps.reachability = Reachability(deps.pool, settings.kafka_bootstrap)
    app.task(deps.reachability.run)

    app.task(follower.run)

    async def decoded_or_dead_letter(event: Any, event_type: type[EventT]) -> EventT | None:
        """The event, or None once its message is in dead-letter with the reason."""
        raw = _raw(event)
        try:
            return deps.codec.decode_as(event_type, raw.value or b"")
        except DecodeError as exc:
            letter = dead_letter(raw, "decode", exc.reason.value, str(exc))
            await send_now(dead_letters, letter.partition_key(), deps.codec.encode(letter))
            return None

    @app.agent(app.topic(topics.training_outcome, **RAW), name="outcomes")
    async def outcomes(stream: Any) -> None:
        async for event in stream.events():
            outcome = await decoded_or_dead_letter(event, TrainingOutcome)
            if outcome is None:
                continue
            await signal(
                outcome.family,
                SignalKind.OUTCOME,
                request_id=outcome.request_id,
                status=outcome.status,
                version=outcome.version,
                data_cutoff=outcome.data_cutoff,
            )

    @app.agent(app.topic(topics.model_updated, **RAW), name="promotions")
    async def promotions(stream: Any) -> None:
        async for event in stream.events():
            update = await decoded_or_dead_letter(event, ModelUpdated)
            if update is None:
                continue
            await signal(
                update.family,
                SignalKind.PROMOTED,
                version=update.version,
                data_cutoff=update.data_cutoff,
                request_id=update.request_id,
            )

    @app.agent(signals, name="policy")
    async def policy(stream: Any) -> None:
        async for events in stream.take_events(1000, settings.policy_debounce_s):
            by_family: dict[ModelFamily, list[tuple[RawMessage, PolicySignal]]] = defaultdict(list)
            for event in events:
                raw = _raw(event)
                try:
                    parsed = PolicySignal.decode(raw.value or b"")
                except ValidationError as exc:
                    letter = dead_letter(raw, "policy", "invalid_signal", str(exc))
                    await send_now(dead_letters, letter.partition_key(), deps.codec.encode(letter))
                    continue
                by_family[parsed.family].append((raw, parsed))
            for family, family_signals in by_family.items():
                await _policy_step_or_dead_letter(family, family_signals)

    async def _policy_step_or_dead_letter(
        family: ModelFamily, family_signals: list[tuple[RawMessage, PolicySignal]]
    ) -> None:
        """One policy step; outages are retried, a step that cannot be taken is set aside."""
        attempt = 0
        while True:
            try:
                await _policy_step(family, [parsed for _, parsed in family_signals])
                return
            except POLICY_OUTAGES as exc:
                pause = backoff(attempt, settings.sink_retry_initial_s, settings.sink_retry_max_s)
                attempt += 1
                policy_errors.warning(
                    f"policy:{family.value}",
                    "policy step for %s failed (%s: %s); retrying in %.1fs",
                    family.value,
                    type(exc).__name__,
                    exc,
                    pause,
                )
                await asyncio.sleep(pause)
            except (ValidationError, ValueError, asyncpg.PostgresError) as exc:
                # Something in these signals cannot be turned into a request or stored (a bad
                # manual trigger, say): the signals go to dead-letter, the agent goes on.
                log.exception("policy step for %s refused its signals", family.value)
                for raw, _ in family_signals:
                    letter = dead_letter(raw, "policy", type(exc).__name__, str(exc))
                    await send_now(dead_letters, letter.partition_key(), deps.codec.encode(letter))
                    metrics.DEAD_LETTERS.labels("policy-signals", "policy", letter.reason).inc()
                return

    async def _policy_step(family: ModelFamily, family_signals: list[PolicySignal]) -> None:
        current = PolicyState.from_json(family, policy_table.get(family.value.encode()) or None)
        step = await engine.step(current, family_signals, datetime.now(UTC))
        pool = await deps.pool()
        for request in step.requests:
            await record_request(pool, request)
            await send_now(requests_out, family.value.encode(), deps.codec.encode(request))
            metrics.RETRAIN_REQUESTS.labels(family.value, request.reason.value).inc()
            log.info(
                "retrain requested: %s %s (%s)", family, request.request_id, request.reason_text
            )
        policy_table[family.value.encode()] = step.state.to_json()
        await mirror_step(pool, step)
        _export(step)

    async def tick() -> None:
        for family in ModelFamily:
            await signal(family, SignalKind.TICK)

    app.timer(interval=settings.policy_tick_s, on_leader=False)(tick)
    app.task(tick)

    from streams.web import install
    from streams.web.context import LegacyContext

    install(app, LegacyContext(deps, signal, engine))
    return app


def _export(step: PolicyStep) -> None:
    family = step.state.state.family.value
    for name, value in step.counters.as_dict().items():
        metrics.COUNTER_VALUE.labels(family, name).set(value)
    metrics.POLICY_DECISIONS.labels(family, step.decision.action.value).inc()
    metrics.REQUESTS_IN_FLIGHT.labels(family).set(1 if step.state.state.in_flight else 0)
    if step.decision.threshold is not None and step.decision.reason is None:
        metrics.THRESHOLD_VALUE.labels(family).set(step.decision.threshold)
    rate = step.counters.anomaly_rate
    metrics.ANOMALY_RATE.labels(family).set(rate if rate is not None else float("nan"))
