"""The topic registry: each default topic name with its event class and key field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from schemas.base import Event
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated
from schemas.customer_scored import CustomerScored
from schemas.dead_letter import DeadLettered
from schemas.expense_label import ExpenseLabelled
from schemas.expense_scored import ExpenseScored
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.model_updated import ModelUpdated
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import TrainingOutcome


@dataclass(frozen=True, slots=True)
class Topic:
    """A default topic name, the event it carries and the field that keys its messages."""

    name: str
    event_type: type[Event]
    key_field: str


EVENT_TYPES: tuple[type[Event], ...] = (
    ExpenseSheetSubmitted,
    CustomerCreated,
    CustomerActivityRecorded,
    ExpenseLabelled,
    RetrainRequested,
    ModelUpdated,
    TrainingOutcome,
    ExpenseScored,
    CustomerScored,
    DeadLettered,
)
"""Every event type, in the order of the contract spec."""

TOPICS: Mapping[str, Topic] = MappingProxyType(
    {
        event_type.TOPIC: Topic(event_type.TOPIC, event_type, event_type.KEY_FIELD)
        for event_type in EVENT_TYPES
    }
)
"""Default topic name -> Topic, e.g. ``TOPICS["expense-sheet"].event_type``."""
