"""retrain-requested: the command asking the trainer to retrain one model family."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from schemas.base import VERSION_IS_INT, Event, Identifier, Metrics, ModelFamily, Text, UtcDatetime


class RetrainReason(StrEnum):
    """Which policy trigger fired."""

    NEW_SHEETS = "new_sheets"
    NEW_CUSTOMERS = "new_customers"
    ANOMALY_RATE_LOW = "anomaly_rate_low"
    ANOMALY_RATE_HIGH = "anomaly_rate_high"
    INTERVAL = "interval"
    MANUAL = "manual"
    DRIFT = "drift"
    """Live features or scores moved away from the champion's training data (PSI)."""
    PERFORMANCE = "performance"
    """The champion's realised AUC on late labels fell under a floor or below its holdout AUC."""


class RetrainRequested(Event):
    """Retrain a model family now (named as users expect from the topic, not as a past fact)."""

    TOPIC: ClassVar[str] = "retrain-requested"
    KEY_FIELD: ClassVar[str] = "family"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    request_id: UUID
    """Id of the request; the training-outcome answering it carries the same id."""
    family: ModelFamily
    reason: RetrainReason
    reason_text: Text
    """The reason for people, e.g. "New customers: 75"."""
    counters: Metrics
    """The policy's counters when it fired (name -> value)."""
    data_cutoff: UtcDatetime
    """Train on data that arrived up to this instant."""
    force: bool
    """Train even if the minimum-data gate would skip."""
    requested_by: Identifier
    """Who asked: policy, api, cli, cron, or a user name."""
