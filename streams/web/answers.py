"""The JSON answers of the HTTP API that the read model does not already give."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import ConfigDict, Field

from schemas.base import ModelFamily
from streams.readmodel import Answer, FamilyStatus, Timestamp


class StatusAnswer(FamilyStatus):
    """`GET /retraining/status`: the family asked for, and the others under `families`."""

    families: dict[str, FamilyStatus]


class TriggerAccepted(Answer):
    """A manual retraining is asked for; the request id is the one the trainer answers."""

    request_id: uuid.UUID
    family: ModelFamily
    force: bool
    status: Literal["accepted"]
    status_url: str


class TriggerInFlight(Answer):
    """A retraining of the family is under way already: its request id, nothing new asked."""

    request_id: uuid.UUID
    family: ModelFamily
    status: Literal["already_in_flight"]
    message: str


class SheetInfo(Answer):
    """An uploaded sheet: whose it is, how many lines, its total per currency."""

    sheet_id: str
    employee_id: str
    expenses: int
    totals: dict[str, str] = Field(description="amount per currency, as a decimal string")


class UploadAnswer(Answer):
    """`POST /expenses/upload`: what was published, and what training does about it."""

    message: str
    training_status: str
    sheet_info: list[SheetInfo]
    data: list[dict[str, Any]] = Field(description="every published line, with its sheet_id")


class TrainDone(Answer):
    """`POST /analysis/train` when the request ended within the wait."""

    message: str
    request_id: uuid.UUID
    status: str = Field(description="promoted, rejected, skipped or failed")
    model_version: str | None
    sheets_used: int
    models_trained: list[str]


class TrainPending(Answer):
    """`POST /analysis/train` when the request has not ended within the wait."""

    message: str
    request_id: uuid.UUID
    status_url: str


class LoadedVersions(Answer):
    """What this worker scores a family with: the champion and the shadow, if any."""

    version: str | None
    shadow: str | None


class RegistryVersion(Answer):
    """A version in the registry (`model_versions`)."""

    version: str
    family: str
    status: str
    status_reason: str | None
    metrics: dict[str, Any]
    samples: int
    data_cutoff: Timestamp
    created_at: Timestamp
    promoted_at: Timestamp | None


class ModelsAnswer(Answer):
    """`GET /models`: what this worker loaded, whether it follows updates, the registry."""

    loaded: dict[str, LoadedVersions]
    follower_ready: bool
    versions: list[RegistryVersion]


class ShadowAnswer(Answer):
    """`POST /models/shadow`: the version now scored in shadow (null: none)."""

    family: ModelFamily
    shadow: str | None


class ProbeAnswer(Answer):
    """The last probe of one dependency."""

    ok: bool
    reason: str | None
    age_s: float


class HealthAnswer(Answer):
    """`GET /health`: whether PostgreSQL and Kafka were reached at the last probe."""

    status: Literal["ok", "degraded"]
    database: bool
    kafka: bool
    checks: dict[str, ProbeAnswer]


class OpenApiDocument(Answer):
    """`GET /openapi.json`: this document."""

    model_config = ConfigDict(extra="allow", frozen=True)

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
