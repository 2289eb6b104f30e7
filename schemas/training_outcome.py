"""training-outcome: how a retrain request ended; every request gets exactly one."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from schemas.base import (
    VERSION_IS_INT,
    Count,
    Event,
    Identifier,
    Metrics,
    ModelFamily,
    NonNegativeFloat,
    Text,
    UtcDatetime,
)


class OutcomeStatus(StrEnum):
    """The end of a retrain request."""

    PROMOTED = "promoted"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    FAILED = "failed"


class TrainingOutcome(Event):
    """A retrain request ended: promoted, rejected by the gate, skipped, or failed."""

    TOPIC: ClassVar[str] = "training-outcome"
    KEY_FIELD: ClassVar[str] = "request_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    request_id: UUID
    family: ModelFamily
    status: OutcomeStatus
    version: Identifier | None = None
    """The trained model version; null when nothing was trained."""
    reason: Text
    """Why it ended this way, for people."""
    metrics: Metrics
    samples: Count
    data_cutoff: UtcDatetime
    duration_seconds: NonNegativeFloat
