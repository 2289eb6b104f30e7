"""The policy service: fold signals into a family's state, read its counters, decide, and build
the requests. The decision itself is the pure function in streams.policy; the agent around this
service only moves bytes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainReason, RetrainRequested
from schemas.training_outcome import OutcomeStatus
from streams.policy import (
    Action,
    Counters,
    Decision,
    FamilyState,
    InFlight,
    ManualTrigger,
    PolicyConfig,
    decide,
    finish_flight,
    model_promoted,
    reemit_flight,
    start_flight,
)
from streams.quality import QualityFigures
from streams.services.quality import QualityMonitor
from streams.signals import PolicySignal, SignalKind
from streams.store.counts import read_counters

_REQUEST_NAMESPACE = uuid.UUID("5f0b8f8e-3c57-4f6c-9d2e-0b7a52f4c1d1")


def automatic_request_id(state: FamilyState, finished: int, reason: str) -> uuid.UUID:
    """The id of an automatic request, derived from the state it was decided in.

    A worker that dies after sending a request but before its state is saved decides again on
    restart, from the same state, and so sends the same id: the trainer sees a redelivery.
    """
    cutoff = state.cutoff.isoformat() if state.cutoff else "none"
    return uuid.uuid5(_REQUEST_NAMESPACE, f"{state.family}|{cutoff}|{finished}|{reason}")


def manual_request_id(
    family: ModelFamily, cutoff: datetime | None, trained_at: datetime | None, finished: int
) -> uuid.UUID:
    """The id of a manual trigger: the same for every trigger until a request is answered.

    Triggers that arrive within one debounce window become one request, so each of their callers
    must be told that request's id; `finished` (answered requests so far) changes once it ends,
    and the cutoff and last training keep ids apart across a rebuilt policy state.
    """
    moments = "|".join(m.isoformat() if m else "none" for m in (cutoff, trained_at))
    return uuid.uuid5(_REQUEST_NAMESPACE, f"{family}|manual|{moments}|{finished}")


@dataclass(frozen=True)
class PolicyState:
    """A family's policy state as the table stores it, plus the number of answered requests."""

    family_state: FamilyState
    """What the pure decision (streams.policy.decide) reads and folds."""
    finished: int = 0
    last_requested_by: str = "policy"

    def to_json(self) -> dict[str, Any]:
        s = self.family_state
        flight = s.in_flight
        return {
            "family": s.family.value,
            "cutoff": _iso(s.cutoff),
            "last_trained_at": _iso(s.last_trained_at),
            "model_version": s.model_version,
            "rests_until_data_after": _iso(s.rests_until_data_after),
            "finished": self.finished,
            "last_requested_by": self.last_requested_by,
            "in_flight": None
            if flight is None
            else {
                "request_id": str(flight.request_id),
                "reason": flight.reason.value,
                "reason_text": flight.reason_text,
                "data_cutoff": _iso(flight.data_cutoff),
                "sent_at": _iso(flight.sent_at),
                "force": flight.force,
                "emits": flight.emits,
            },
        }

    @classmethod
    def from_json(cls, family: ModelFamily, data: dict[str, Any] | None) -> PolicyState:
        if not data:
            return cls(FamilyState(family))
        raw = data.get("in_flight")
        flight = None
        if raw:
            flight = InFlight(
                request_id=uuid.UUID(raw["request_id"]),
                reason=RetrainReason(raw["reason"]),
                reason_text=raw["reason_text"],
                data_cutoff=_dt(raw["data_cutoff"]) or datetime.now(UTC),
                sent_at=_dt(raw["sent_at"]) or datetime.now(UTC),
                force=bool(raw.get("force", False)),
                emits=int(raw.get("emits", 1)),
            )
        state = FamilyState(
            family=family,
            cutoff=_dt(data.get("cutoff")),
            last_trained_at=_dt(data.get("last_trained_at")),
            model_version=data.get("model_version"),
            in_flight=flight,
            # Older states carry `quiet_until` (a timed rest, now retired) instead: no rest.
            rests_until_data_after=_dt(data.get("rests_until_data_after")),
        )
        return cls(state, int(data.get("finished", 0)), data.get("last_requested_by", "policy"))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class PolicyStep:
    """What one policy evaluation produced."""

    state: PolicyState
    decision: Decision
    counters: Counters
    requests: list[RetrainRequested]
    quality: QualityFigures | None = None
    """The drift and performance figures the decision read (None without a monitor)."""


class PolicyEngine:
    """Fold signals into a family's state, read its counters, decide, and build requests.

    With a quality monitor, the drift and performance figures of the champion join the
    decision; the monitor reads them at most once per its refresh interval, and not at all
    while a request is in flight (the decision waits on it whatever they say).
    """

    def __init__(
        self,
        config: PolicyConfig,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        quality: QualityMonitor | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.quality = quality

    async def step(
        self, current: PolicyState, signals: Sequence[PolicySignal], now: datetime
    ) -> PolicyStep:
        state = current.family_state
        finished = current.finished
        manual: list[ManualTrigger] = []
        for signal in signals:
            if signal.kind is SignalKind.OUTCOME and signal.request_id is not None:
                trained = signal.status in (OutcomeStatus.PROMOTED, OutcomeStatus.REJECTED)
                before = state
                state = finish_flight(
                    state,
                    signal.request_id,
                    trained,
                    signal.data_cutoff or now,
                    signal.version if signal.status is OutcomeStatus.PROMOTED else None,
                    now,
                )
                if state is not before:
                    finished += 1
            elif signal.kind is SignalKind.PROMOTED and signal.version and signal.data_cutoff:
                state = model_promoted(state, signal.version, signal.data_cutoff, signal.sent_at)
            elif signal.kind is SignalKind.MANUAL and signal.request_id is not None:
                manual.append(
                    ManualTrigger(signal.request_id, signal.requested_by or "api", signal.force)
                )

        pool = await self.pool()
        async with pool.acquire() as conn:
            counters = await read_counters(
                conn, state.family, state.cutoff, state.model_version, self.config
            )
        quality = None
        if self.quality is not None:
            quality = await self.quality.figures(
                state.family, state.model_version, now, refresh=state.in_flight is None
            )
        requests: list[RetrainRequested] = []
        # Several triggers in one debounce window ask for one training; a forced one wins.
        chosen = next((m for m in reversed(manual) if m.force), manual[-1] if manual else None)
        decision = decide(state.family, counters, state, self.config, now, chosen, quality)
        requested_by = current.last_requested_by
        if decision.action is Action.REQUEST:
            if chosen is not None:
                request_id = chosen.request_id
                requested_by = chosen.requested_by
            else:
                reason = decision.reason.value if decision.reason else "none"
                request_id = automatic_request_id(state, finished, reason)
                requested_by = "policy"
            state = start_flight(state, decision, request_id, counters.observed_at, now)
            requests.append(self._request(state, counters, requested_by))
        elif decision.action is Action.REEMIT:
            state = reemit_flight(state, now)
            requests.append(self._request(state, counters, requested_by))
        return PolicyStep(
            PolicyState(state, finished, requested_by), decision, counters, requests, quality
        )

    @staticmethod
    def _request(state: FamilyState, counters: Counters, requested_by: str) -> RetrainRequested:
        flight = state.in_flight
        if flight is None:  # pragma: no cover - callers start or re-emit a flight first
            raise RuntimeError("no request in flight")
        return RetrainRequested(
            occurred_at=datetime.now(UTC),
            request_id=flight.request_id,
            family=state.family,
            reason=flight.reason,
            reason_text=flight.reason_text,
            counters=counters.as_dict(),
            data_cutoff=flight.data_cutoff,
            force=flight.force,
            requested_by=requested_by,
        )
