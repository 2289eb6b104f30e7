"""A scenario: the simulated world as an ordered stream of events and message bytes, with truth.

`Scenario(config).messages()` is what a publisher sends; `truth` and `bad_messages` are what
tests and benchmarks score the system against. The same config always yields the same bytes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from uuid import UUID

import numpy as np

from retrainer.simulator import malformed
from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.dates import from_us
from retrainer.simulator.events import (
    ACTIVITY_TOPIC,
    CUSTOMER_TOPIC,
    LABEL_TOPIC,
    SHEET_TOPIC,
    customer_event,
    label_event,
    legacy_sheet_payload,
    sheet_event,
    statement_event,
)
from retrainer.simulator.world import GroundTruth, RecordKind, World, simulate
from schemas import Codec, Event, ExpenseSheetSubmitted, RejectReason

TOPIC_OF_KIND: dict[RecordKind, str] = {
    RecordKind.CUSTOMER: CUSTOMER_TOPIC,
    RecordKind.STATEMENT: ACTIVITY_TOPIC,
    RecordKind.SHEET: SHEET_TOPIC,
    RecordKind.LABEL: LABEL_TOPIC,
}

# Sub-streams of the seed, one per concern, so that e.g. raising bad_rate changes which messages
# are spoiled but not the data itself.
_BAD_STREAM = 0xBAD
_LEGACY_STREAM = 0x1E6


@dataclass(frozen=True)
class SimMessage:
    """One message as it goes onto a topic (named by its default name)."""

    position: int
    topic: str
    key: bytes
    value: bytes
    at: datetime
    """The simulated time of the fact (not the Kafka timestamp)."""
    event: Event | None
    """The event the value encodes; None when the value is deliberately malformed."""
    expected_reject: RejectReason | None
    """For a malformed value: the reason the codec gives when it refuses it."""


@dataclass(frozen=True)
class BadMessage:
    """Bookkeeping of one deliberately malformed message."""

    position: int
    topic: str
    key: bytes
    reason: RejectReason
    replaced_event_id: UUID
    """The valid event whose place it took (that event is never published)."""


class Scenario:
    """The events of one simulated scenario in time order, with their ground truth."""

    def __init__(self, config: ScenarioConfig | None = None, *, codec: Codec | None = None) -> None:
        self.config = config if config is not None else ScenarioConfig()
        self.codec = codec if codec is not None else Codec()

    @cached_property
    def world(self) -> World:
        return simulate(self.config)

    @property
    def truth(self) -> GroundTruth:
        return self.world.truth

    def __len__(self) -> int:
        return len(self.world.timeline)

    @cached_property
    def topics(self) -> tuple[str, ...]:
        """The topic (default name) of every message, by position."""
        kinds = tuple(RecordKind)
        return tuple(TOPIC_OF_KIND[kinds[k]] for k in self.world.timeline.kind.tolist())

    def counts(self) -> dict[str, int]:
        """Messages per topic, malformed ones included."""
        return dict(Counter(self.topics))

    @cached_property
    def _spoiled(self) -> dict[int, RejectReason]:
        """Which positions carry malformed bytes, and the reason each must be refused for.

        Reasons go least-used first (ties broken at random), so that every reason shows up
        early, and the ones only sheets can carry are not starved by the more frequent topics.
        """
        rng = np.random.default_rng([self.config.seed, _BAD_STREAM])
        chosen = np.flatnonzero(rng.random(len(self)) < self.config.bad_rate)
        used: Counter[RejectReason] = Counter(dict.fromkeys(RejectReason, 0))
        plan: dict[int, RejectReason] = {}
        for position in chosen.tolist():
            options = malformed.reasons_for(self.topics[position])
            fewest = min(used[reason] for reason in options)
            candidates = [reason for reason in options if used[reason] == fewest]
            reason = candidates[int(rng.integers(0, len(candidates)))]
            used[reason] += 1
            plan[position] = reason
        return plan

    @property
    def bad_messages(self) -> tuple[BadMessage, ...]:
        """Every deliberately malformed message with the reason the codec must give."""
        found: list[BadMessage] = []
        for position, event in self._events_at(sorted(self._spoiled)):
            found.append(
                BadMessage(
                    position=position,
                    topic=event.TOPIC,
                    key=self.codec.key_of(event),
                    reason=self._spoiled[position],
                    replaced_event_id=event.event_id,
                )
            )
        return tuple(found)

    def events(self) -> Iterator[Event]:
        """Every simulated event in time order, including those a malformed message replaces."""
        for _, event in self._events_at(range(len(self))):
            yield event

    def messages(self) -> Iterator[SimMessage]:
        """What goes onto the topics, in time order: encoded events, some of them spoiled."""
        spoiled = self._spoiled
        limits = self.codec.limits
        for position, event in self._events_at(range(len(self))):
            value = self.codec.encode(event)
            reason = spoiled.get(position)
            if reason is not None:
                rng = np.random.default_rng([self.config.seed, _BAD_STREAM, position])
                value = malformed.spoil(event.TOPIC, value, reason, rng, limits)
            elif isinstance(event, ExpenseSheetSubmitted) and position in self._legacy_positions:
                value = json.dumps(
                    legacy_sheet_payload(event, json.loads(value)), separators=(",", ":")
                ).encode()
            yield SimMessage(
                position=position,
                topic=event.TOPIC,
                key=self.codec.key_of(event),
                value=value,
                at=event.occurred_at,
                event=None if reason is not None else event,
                expected_reject=reason,
            )

    @cached_property
    def _legacy_positions(self) -> frozenset[int]:
        """Positions of the sheets sent in the old upload shape (chosen per sheet, by row)."""
        rng = np.random.default_rng([self.config.seed, _LEGACY_STREAM])
        legacy = rng.random(self.world.expenses.sheet_count) < self.config.legacy_sheet_rate
        timeline = self.world.timeline
        is_sheet = timeline.kind == RecordKind.SHEET
        positions = np.flatnonzero(is_sheet)[legacy[timeline.row[is_sheet]]]
        return frozenset(positions.tolist())

    def _events_at(self, positions: Iterable[int]) -> Iterator[tuple[int, Event]]:
        world = self.world
        timeline = world.timeline
        kinds = tuple(RecordKind)
        for position in positions:
            kind = kinds[int(timeline.kind[position])]
            row = int(timeline.row[position])
            event: Event
            if kind is RecordKind.CUSTOMER:
                event = customer_event(world.customers.customer(row))
            elif kind is RecordKind.STATEMENT:
                month = int(timeline.month[position])
                event = statement_event(
                    world.customers.statement(row, month), from_us(int(timeline.at_us[position]))
                )
            elif kind is RecordKind.SHEET:
                event = sheet_event(world.expenses.sheet(row))
            else:
                event = label_event(world.expenses.label(row))
            yield position, event
