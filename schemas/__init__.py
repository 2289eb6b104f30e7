"""Event contracts shared by every retrainer service: events, codec, JSON Schema, SQL migrations."""

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
