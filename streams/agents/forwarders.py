"""Forwarders: what the trainer publishes (outcomes, promotions) becomes a policy signal for the
family it concerns. One agent per forwarded topic, all made from one definition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic

import faust

from edge.dead_letters import dead_letter_from
from schemas.codec import EventT
from schemas.errors import DecodeError
from schemas.model_updated import ModelUpdated
from schemas.training_outcome import TrainingOutcome
from streams.agents import named, raw_message, raw_topic
from streams.context import WorkerContext
from streams.signals import SignalKind


@dataclass(frozen=True)
class Forward(Generic[EventT]):
    """Which topic is forwarded, as what event, and the signal each event becomes."""

    name: str
    topic: Callable[[WorkerContext], str]
    event_type: type[EventT]
    kind: SignalKind
    fields: Callable[[EventT], dict[str, Any]]


def _outcome_fields(outcome: TrainingOutcome) -> dict[str, Any]:
    return {
        "request_id": outcome.request_id,
        "status": outcome.status,
        "version": outcome.version,
        "data_cutoff": outcome.data_cutoff,
    }


def _promotion_fields(update: ModelUpdated) -> dict[str, Any]:
    return {
        "version": update.version,
        "data_cutoff": update.data_cutoff,
        "request_id": update.request_id,
    }


FORWARDS: tuple[Forward[Any], ...] = (
    Forward(
        "outcomes",
        lambda ctx: ctx.topics.training_outcome,
        TrainingOutcome,
        SignalKind.OUTCOME,
        _outcome_fields,
    ),
    Forward(
        "promotions",
        lambda ctx: ctx.topics.model_updated,
        ModelUpdated,
        SignalKind.PROMOTED,
        _promotion_fields,
    ),
)


def forwarder(ctx: WorkerContext, forward: Forward[Any]) -> Callable[[Any], Any]:
    """The agent function of `forward`: an undecodable message goes to dead-letter."""

    async def agent(stream: Any) -> None:
        async for event in stream.events():
            raw = raw_message(event)
            try:
                decoded = ctx.codec.decode_as(forward.event_type, raw.value or b"")
            except DecodeError as exc:
                await ctx.dead_letter([dead_letter_from(raw, "decode", exc.reason.value, str(exc))])
                continue
            await ctx.signal(decoded.family, forward.kind, **forward.fields(decoded))

    return named(f"forward_{forward.name}", agent)


def install(app: faust.App, ctx: WorkerContext) -> None:
    for forward in FORWARDS:
        app.agent(raw_topic(app, forward.topic(ctx)), name=forward.name)(forwarder(ctx, forward))
