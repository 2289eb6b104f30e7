"""The policy agent: signals in, per family one step of the policy service, requests out.

Its state is a Faust table keyed by family (so one agent owns a family), mirrored to PostgreSQL
for the status endpoint and the CLI. A timer wakes every family so time-based triggers fire.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import aiokafka.errors
import asyncpg
import faust
from faust.types import TableT
from pydantic import ValidationError

from edge.dead_letters import RawMessage, dead_letter_from
from edge.logs import RateLimitedLog
from edge.requests import record_request
from edge.retry import TRANSIENT_ERRORS, RetryPolicy
from schemas.base import ModelFamily
from streams import metrics
from streams.agents import named, raw_message, raw_topic
from streams.bootstrap import POLICY_TABLE
from streams.context import WorkerContext
from streams.quality import QualityFigures
from streams.services.policy import PolicyEngine, PolicyState, PolicyStep
from streams.signals import PolicySignal, SignalKind
from streams.store.policy_state import mirror_step

log = logging.getLogger(__name__)
_errors = RateLimitedLog(log)

# A policy step retries these (PostgreSQL or Kafka unreachable for now, either client).
POLICY_OUTAGES: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, aiokafka.errors.KafkaError)

Signals = list[tuple[RawMessage, PolicySignal]]


class PolicyAgent:
    """One policy step per family and batch of signals; its outages are waited out."""

    def __init__(self, ctx: WorkerContext, table: TableT[bytes, Any]) -> None:
        self.ctx = ctx
        self.table = table
        self.engine = PolicyEngine(ctx.policy, ctx.pool, ctx.quality)
        settings = ctx.settings
        self.retry = RetryPolicy(
            settings.sink_retry_initial_s, settings.sink_retry_max_s, transient=POLICY_OUTAGES
        )

    async def consume(self, stream: Any) -> None:
        async for events in stream.take_events(1000, self.ctx.settings.policy_debounce_s):
            by_family: dict[ModelFamily, Signals] = defaultdict(list)
            for event in events:
                raw = raw_message(event)
                try:
                    parsed = PolicySignal.decode(raw.value or b"")
                except ValidationError as exc:
                    await self.ctx.dead_letter(
                        [dead_letter_from(raw, "policy", "invalid_signal", str(exc))]
                    )
                    continue
                by_family[parsed.family].append((raw, parsed))
            for family, family_signals in by_family.items():
                await self.step_or_dead_letter(family, family_signals)

    async def step_or_dead_letter(self, family: ModelFamily, family_signals: Signals) -> None:
        """One policy step; outages are retried, a step that cannot be taken is set aside."""
        try:
            await self.retry.call(
                lambda: self.step(family, [parsed for _, parsed in family_signals]),
                f"policy step for {family.value}",
                _errors,
            )
        except (ValidationError, ValueError, asyncpg.PostgresError) as exc:
            # Something in these signals cannot be turned into a request or stored (a bad
            # manual trigger, say): the signals go to dead-letter, the agent goes on.
            log.exception("policy step for %s refused its signals", family.value)
            letters = [
                dead_letter_from(raw, "policy", type(exc).__name__, str(exc))
                for raw, _ in family_signals
            ]
            await self.ctx.dead_letter(letters)
            for letter in letters:
                metrics.DEAD_LETTERS.labels("policy-signals", "policy", letter.reason).inc()

    async def step(self, family: ModelFamily, family_signals: list[PolicySignal]) -> None:
        key = family.value.encode()
        current = PolicyState.from_json(family, self.table.get(key) or None)
        step = await self.engine.step(current, family_signals, datetime.now(UTC))
        pool = await self.ctx.pool()
        for request in step.requests:
            async with pool.acquire() as conn:
                await record_request(conn, request)
            await self.ctx.publish(
                self.ctx.topics.retrain_requested, [(key, self.ctx.codec.encode(request))]
            )
            metrics.RETRAIN_REQUESTS.labels(family.value, request.reason.value).inc()
            log.info(
                "retrain requested: %s %s (%s)", family, request.request_id, request.reason_text
            )
        self.table[key] = step.state.to_json()
        await mirror_step(pool, step)
        export(step)

    async def tick(self) -> None:
        for family in ModelFamily:
            await self.ctx.signal(family, SignalKind.TICK)


def export(step: PolicyStep) -> None:
    """The step's counters and decision as gauges and counters."""
    family = step.state.family_state.family.value
    for name, value in step.counters.as_dict().items():
        metrics.COUNTER_VALUE.labels(family, name).set(value)
    metrics.POLICY_DECISIONS.labels(family, step.decision.action.value).inc()
    metrics.REQUESTS_IN_FLIGHT.labels(family).set(1 if step.state.family_state.in_flight else 0)
    if step.decision.threshold is not None and step.decision.reason is None:
        metrics.THRESHOLD_VALUE.labels(family).set(step.decision.threshold)
    rate = step.counters.anomaly_rate
    metrics.ANOMALY_RATE.labels(family).set(rate if rate is not None else float("nan"))
    if step.quality is not None:
        export_quality(step.quality)


def _gauge(value: float | None) -> float:
    return float("nan") if value is None else value


def export_quality(figures: QualityFigures) -> None:
    """The champion's drift and realised-performance figures as gauges.

    Only features of the fixed set get a PSI series (a version trained on other features leaves
    theirs out); a feature without a figure reads NaN.
    """
    family = figures.family.value
    drift = figures.drift
    psi = drift.feature_psi if drift is not None else {}
    for feature in metrics.FAMILY_FEATURES[family]:
        metrics.FEATURE_PSI.labels(family, feature).set(_gauge(psi.get(feature)))
    metrics.SCORE_PSI.labels(family).set(_gauge(drift.score_psi if drift else None))
    metrics.SCORE_KS.labels(family).set(_gauge(drift.score_ks if drift else None))
    metrics.DRIFT_SAMPLE.labels(family).set(drift.samples if drift else 0)
    realised = figures.champion_performance
    metrics.REALISED_AUC.labels(family).set(_gauge(realised.auc if realised else None))
    metrics.REALISED_PRECISION.labels(family).set(_gauge(realised.precision if realised else None))
    metrics.REALISED_RECALL.labels(family).set(_gauge(realised.recall if realised else None))
    metrics.REALISED_SAMPLE.labels(family).set(realised.samples if realised else 0)


def install(app: faust.App, ctx: WorkerContext) -> PolicyAgent:
    """The policy table, agent and tick timer; returns the agent (its engine serves the API)."""
    settings = ctx.settings
    table = app.Table(
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
    agent = PolicyAgent(ctx, table)
    signals = raw_topic(app, ctx.topics.policy_signals, partitions=settings.partitions)

    async def policy(stream: Any) -> None:
        await agent.consume(stream)

    async def policy_tick() -> None:
        await agent.tick()

    app.agent(signals, name="policy")(named("policy", policy))
    app.timer(interval=settings.policy_tick_s, on_leader=False)(named("policy_tick", policy_tick))
    app.task(policy_tick)
    return agent
