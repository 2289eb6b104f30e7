"""What the worker's agents tell the policy agent, on an internal topic keyed by model family.

Every signal for a family lands on one partition, so one agent owns that family's policy state,
while the heavy work (decoding, storing) stays spread over every partition of the source topics:
an ingest batch sends at most one signal per family.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus


class SignalKind(enum.StrEnum):
    """Why the policy agent is being woken up."""

    INGESTED = "ingested"  # new rows were stored for the family
    TICK = "tick"  # the scheduler's heartbeat: time-based triggers and timeouts
    MANUAL = "manual"  # a person or a cron job asked for a retraining
    OUTCOME = "outcome"  # the trainer answered a request
    PROMOTED = "promoted"  # a model became champion (training, rollback or manual promote)


class PolicySignal(BaseModel):
    """One message on the internal policy topic."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SignalKind
    family: ModelFamily
    sent_at: datetime
    request_id: uuid.UUID | None = None
    requested_by: str | None = None
    force: bool = False
    status: OutcomeStatus | None = None
    version: str | None = None
    data_cutoff: datetime | None = None

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, data: bytes) -> PolicySignal:
        return cls.model_validate_json(data)
