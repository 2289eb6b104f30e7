"""What the agents do, as plain classes that tests drive without Faust.

The ingest handler decodes a batch of raw messages, stores the good ones and turns every bad one
into a dead letter. The policy engine folds signals into a family's state, reads the counters and
decides; the agent around it only moves bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from edge.logs import RateLimitedLog
from schemas.base import Event, ModelFamily
from schemas.codec import Codec
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated
from schemas.dead_letter import DeadLettered
from schemas.errors import DecodeError
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import OutcomeStatus
from streams import metrics
from streams.counts import read_counters
from streams.policy import (
    Action,
    Counters,
    Decision,
    FamilyState,
    ManualTrigger,
    PolicyConfig,
    decide,
    finish_flight,
    model_promoted,
    reemit_flight,
    start_flight,
)
from streams.retry import backoff
from streams.signals import PolicySignal, SignalKind
from streams.sink import Stored, store_activity, store_customers, store_labels, store_sheets

log = logging.getLogger(__name__)

# Which family's counters a stored event of each upstream topic moves.
FAMILY_OF_TOPIC: dict[str, ModelFamily] = {
    "expense-sheet": ModelFamily.EXPENSE_FRAUD,
    "expense-label": ModelFamily.EXPENSE_FRAUD,
    "customer-created": ModelFamily.DELINQUENCY,
    "customer-activity": ModelFamily.DELINQUENCY,
}

Store = Callable[[asyncpg.Connection, Sequence[Any]], Awaitable[Stored]]
STORES: dict[str, Store] = {
    "expense-sheet": store_sheets,
    "customer-created": store_customers,
    "customer-activity": store_activity,
    "expense-label": store_labels,
}
EVENT_TYPES: dict[str, type[Event]] = {
    "expense-sheet": ExpenseSheetSubmitted,
    "customer-created": CustomerCreated,
    "customer-activity": CustomerActivityRecorded,
    "expense-label": ExpenseLabelled,
}

# Errors that mean "the database is not reachable right now": retry, never give the data up.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


@dataclass(frozen=True)
class RawMessage:
    """A message as it came off the topic: bytes plus where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class IngestResult:
    """What one batch did: stored counts, dead letters to send, families whose data moved."""

    stored: Stored = field(default_factory=lambda: Stored(0, 0))
    dead_letters: list[DeadLettered] = field(default_factory=list)
    families: set[ModelFamily] = field(default_factory=set)
    # The decoded events now in PostgreSQL (new or already present), in message order.
    events: list[Event] = field(default_factory=list)


def dead_letter(message: RawMessage, stage: str, reason: str, error: str) -> DeadLettered:
    """The dead-letter event for `message`: its bytes, cut to a prefix with a digest past the
    letter's budget (schemas.dead_letter), so any message gives a letter Kafka accepts."""
    return DeadLettered.from_message(
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        stage=stage,
        reason=reason,
        error=error,
        at=datetime.now(UTC),
    )


class IngestHandler:
    """Decode, store idempotently, dead-letter what cannot be decoded or stored."""

    def __init__(
        self,
        codec: Codec,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        retry_initial_s: float = 0.5,
        retry_max_s: float = 5.0,
    ) -> None:
        self.codec = codec
        self.pool = pool
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._outage_log = RateLimitedLog(log, every_s=10.0)

    async def handle(self, logical_topic: str, messages: Sequence[RawMessage]) -> IngestResult:
        """Process one batch of `logical_topic` (a default topic name such as expense-sheet)."""
        result = IngestResult()
        event_type = EVENT_TYPES[logical_topic]
        decoded: list[tuple[RawMessage, Event]] = []
        for message in messages:
            metrics.EVENTS_CONSUMED.labels(logical_topic).inc()
            if message.value is None:
                letter = dead_letter(message, "decode", "invalid_json", "message has no value")
                result.dead_letters.append(letter)
                continue
            try:
                decoded.append((message, self.codec.decode_as(event_type, message.value)))
            except DecodeError as exc:
                result.dead_letters.append(
                    dead_letter(message, "decode", exc.reason.value, str(exc))
                )
        if decoded:
            began = time.perf_counter()
            stored, rejected = await self._store(logical_topic, decoded)
            metrics.SINK_BATCH_SECONDS.labels(logical_topic).observe(time.perf_counter() - began)
            result.stored = stored
            result.dead_letters.extend(rejected)
            refused = {(letter.partition, letter.offset) for letter in rejected}
            result.events = [
                event
                for message, event in decoded
                if (message.partition, message.offset) not in refused
            ]
            metrics.EVENTS_STORED.labels(logical_topic, "new").inc(stored.new)
            metrics.EVENTS_STORED.labels(logical_topic, "present").inc(stored.present)
            if stored.new:
                result.families.add(FAMILY_OF_TOPIC[logical_topic])
        for letter in result.dead_letters:
            metrics.DEAD_LETTERS.labels(logical_topic, letter.stage, letter.reason).inc()
        return result

    async def _store(
        self, logical_topic: str, decoded: list[tuple[RawMessage, Event]]
    ) -> tuple[Stored, list[DeadLettered]]:
        store = STORES[logical_topic]
        events = [event for _, event in decoded]
        try:
            return await self._with_retry(logical_topic, store, events), []
        except asyncpg.PostgresError as exc:
            # The batch holds a row the database refuses (not an outage): store the events one
            # by one so only the offender is set aside.
            log.warning("batch of %s refused (%s); storing one by one", logical_topic, exc)
        total = Stored(0, 0)
        rejected: list[DeadLettered] = []
        for message, event in decoded:
            try:
                total += await self._with_retry(logical_topic, store, [event])
            except asyncpg.PostgresError as exc:
                reason = getattr(exc, "sqlstate", None) or type(exc).__name__
                rejected.append(dead_letter(message, "store", f"sql_{reason}", str(exc)))
        return total, rejected

    async def _with_retry(
        self, logical_topic: str, store: Store, events: Sequence[Event]
    ) -> Stored:
        attempt = 0
        while True:
            try:
                pool = await self.pool()
                async with pool.acquire() as conn:
                    return await store(conn, events)
            except TRANSIENT_DB_ERRORS as exc:
                metrics.SINK_RETRIES.labels(logical_topic).inc()
                pause = backoff(attempt, self.retry_initial_s, self.retry_max_s)
                attempt += 1
                self._outage_log.warning(
                    f"sink:{logical_topic}",
                    "PostgreSQL unavailable storing %s (%s); retrying in %.1fs",
                    logical_topic,
                    exc,
                    pause,
                )
                await asyncio.sleep(pause)


# -- policy ------------------------------------------------------------------------------------

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

    state: FamilyState
    finished: int = 0
    last_requested_by: str = "policy"

    def to_json(self) -> dict[str, Any]:
        s = self.state
        flight = s.in_flight
        return {
            "family": s.family.value,
            "cutoff": _iso(s.cutoff),
            "last_trained_at": _iso(s.last_trained_at),
            "model_version": s.model_version,
            "quiet_until": _iso(s.quiet_until),
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
        from schemas.retrain_requested import RetrainReason
        from streams.policy import InFlight

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
            quiet_until=_dt(data.get("quiet_until")),
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


class PolicyEngine:
    """Fold signals into a family's state, read its counters, decide, and build requests."""

    def __init__(self, config: PolicyConfig, pool: Callable[[], Awaitable[asyncpg.Pool]]) -> None:
        self.config = config
        self.pool = pool

    async def step(
        self, current: PolicyState, signals: Sequence[PolicySignal], now: datetime
    ) -> PolicyStep:
        state = current.state
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
                    self.config,
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
        requests: list[RetrainRequested] = []
        # Several triggers in one debounce window ask for one training; a forced one wins.
        chosen = next((m for m in reversed(manual) if m.force), manual[-1] if manual else None)
        decision = decide(state.family, counters, state, self.config, now, chosen)
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
        return PolicyStep(PolicyState(state, finished, requested_by), decision, counters, requests)

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
