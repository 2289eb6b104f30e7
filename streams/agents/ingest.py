"""Ingestion and scoring of the upstream topics: one consumer stores, scores and dead-letters
each batch before it commits (see streams.upstream for why it is not a Faust agent)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import faust

from edge.logs import RateLimitedLog
from schemas.base import Event, ModelFamily
from streams.agents import named
from streams.context import WorkerContext
from streams.services.ingest import IngestHandler
from streams.signals import SignalKind
from streams.upstream import UpstreamConsumer, UpstreamOptions

log = logging.getLogger(__name__)
_signal_errors = RateLimitedLog(log)

SIGNAL_WAIT_S = 10.0
"""How long ingestion waits for Kafka to take a data-moved signal before it goes on."""


def data_moved(ctx: WorkerContext) -> Callable[[ModelFamily], Awaitable[None]]:
    """Tell the policy that `family`'s data moved; advisory, so never waits long."""

    async def signal(family: ModelFamily) -> None:
        # The policy's next tick reads the same counts from PostgreSQL, so storing never waits
        # on it for long.
        try:
            async with asyncio.timeout(SIGNAL_WAIT_S):
                await ctx.signal(family, SignalKind.INGESTED)
        except TimeoutError:
            _signal_errors.warning(
                "signal-timeout",
                "the policy was not told within %gs that %s data moved; its next tick will see it",
                SIGNAL_WAIT_S,
                family.value,
            )

    return signal


def emitter(ctx: WorkerContext, topic: str) -> Callable[[Sequence[Event]], Awaitable[None]]:
    """Write scored events to `topic`, keyed as the codec keys them."""

    async def emit(scored: Sequence[Event]) -> None:
        await ctx.publish(topic, [(ctx.codec.key_of(s), ctx.codec.encode(s)) for s in scored])

    return emit


def build_upstream(ctx: WorkerContext) -> UpstreamConsumer:
    """The worker's upstream consumer over `ctx` (benchmarks drive its `handle` directly)."""
    settings = ctx.settings
    return UpstreamConsumer(
        UpstreamOptions(
            kafka=settings.kafka,
            group_id=settings.upstream_group_id,
            topics={name: logical for logical, name in ctx.topics.upstream().items()},
            batch_size=settings.batch_size,
            batch_within_s=settings.batch_within_s,
            session_timeout_s=settings.session_timeout_s,
            retry_initial_s=settings.sink_retry_initial_s,
            retry_max_s=settings.sink_retry_max_s,
        ),
        IngestHandler(
            ctx.codec, ctx.pool, settings.sink_retry_initial_s, settings.sink_retry_max_s
        ),
        ctx.scorer,
        ctx.dead_letter,
        data_moved(ctx),
        emitter(ctx, ctx.topics.expense_scored),
        emitter(ctx, ctx.topics.customer_scored),
    )


async def champions_loaded(ctx: WorkerContext) -> None:
    """Wait (at most `models_wait_s`) until the champions announced so far are loaded.

    A worker restarted into a backlog would otherwise store its first batches unscored.
    """
    try:
        async with asyncio.timeout(ctx.settings.models_wait_s):
            await ctx.follower.ready.wait()
    except TimeoutError:
        log.warning(
            "the champions did not load within %gs; consuming without them (the events of "
            "the meantime are stored unscored)",
            ctx.settings.models_wait_s,
        )


def install(app: faust.App, ctx: WorkerContext) -> UpstreamConsumer:
    """Run the upstream consumer as a task of `app`; returns it (for its assignment)."""
    upstream = build_upstream(ctx)

    async def upstream_consumer() -> None:
        await champions_loaded(ctx)
        await upstream.run()

    app.task(named("upstream_consumer", upstream_consumer))
    return upstream
