"""Event contracts shared by every retrainer service: events, codec, JSON Schema, SQL migrations.

The names below are imported on first use: a command that reads one small module of the package
(`retrainer --help` reads schemas.diagnostics) does not build every event's pydantic model.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from schemas.base import Contract, Event, ModelFamily, Upcaster
    from schemas.codec import Codec
    from schemas.currencies import ISO_4217_CODES
    from schemas.customer_activity import CustomerActivityRecorded
    from schemas.customer_created import CustomerCreated, CustomerProfile
    from schemas.customer_scored import CustomerScored
    from schemas.dead_letter import DeadLettered
    from schemas.errors import DecodeError, RejectReason, SchemaError, UnknownTopicError
    from schemas.expense_label import ExpenseLabelled
    from schemas.expense_scored import ExpenseScored
    from schemas.expense_sheet import ExpenseLine, ExpenseSheetSubmitted
    from schemas.limits import CodecLimits
    from schemas.model_updated import ModelUpdated
    from schemas.retrain_requested import RetrainReason, RetrainRequested
    from schemas.topics import EVENT_TYPES, TOPICS, Topic
    from schemas.training_outcome import OutcomeStatus, TrainingOutcome

_HOMES = {
    "Contract": "schemas.base",
    "Event": "schemas.base",
    "ModelFamily": "schemas.base",
    "Upcaster": "schemas.base",
    "Codec": "schemas.codec",
    "ISO_4217_CODES": "schemas.currencies",
    "CustomerActivityRecorded": "schemas.customer_activity",
    "CustomerCreated": "schemas.customer_created",
    "CustomerProfile": "schemas.customer_created",
    "CustomerScored": "schemas.customer_scored",
    "DeadLettered": "schemas.dead_letter",
    "DecodeError": "schemas.errors",
    "RejectReason": "schemas.errors",
    "SchemaError": "schemas.errors",
    "UnknownTopicError": "schemas.errors",
    "ExpenseLabelled": "schemas.expense_label",
    "ExpenseScored": "schemas.expense_scored",
    "ExpenseLine": "schemas.expense_sheet",
    "ExpenseSheetSubmitted": "schemas.expense_sheet",
    "CodecLimits": "schemas.limits",
    "ModelUpdated": "schemas.model_updated",
    "RetrainReason": "schemas.retrain_requested",
    "RetrainRequested": "schemas.retrain_requested",
    "EVENT_TYPES": "schemas.topics",
    "TOPICS": "schemas.topics",
    "Topic": "schemas.topics",
    "OutcomeStatus": "schemas.training_outcome",
    "TrainingOutcome": "schemas.training_outcome",
}
"""Where each name of the package lives."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'schemas' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


__all__ = [
    "EVENT_TYPES",
    "ISO_4217_CODES",
    "TOPICS",
    "Codec",
    "CodecLimits",
    "Contract",
    "CustomerActivityRecorded",
    "CustomerCreated",
    "CustomerProfile",
    "CustomerScored",
    "DeadLettered",
    "DecodeError",
    "Event",
    "ExpenseLabelled",
    "ExpenseLine",
    "ExpenseScored",
    "ExpenseSheetSubmitted",
    "ModelFamily",
    "ModelUpdated",
    "OutcomeStatus",
    "RejectReason",
    "RetrainReason",
    "RetrainRequested",
    "SchemaError",
    "Topic",
    "TrainingOutcome",
    "UnknownTopicError",
    "Upcaster",
]
