"""model-updated: a newly promoted model version (compacted topic: the latest per family wins)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from uuid import UUID

from schemas.base import (
    VERSION_IS_INT,
    Count,
    Event,
    Identifier,
    Metrics,
    ModelFamily,
    Sha256,
    UtcDatetime,
)


class ModelUpdated(Event):
    """A model version was promoted; scorers load it in place of the one they run."""

    TOPIC: ClassVar[str] = "model-updated"
    KEY_FIELD: ClassVar[str] = "family"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    family: ModelFamily
    version: Identifier
    """The model version, as the registry names it."""
    artifact_id: Identifier
    """Where the registry keeps the artifact."""
    sha256: Sha256
    """Digest of the artifact; loaders verify it before use."""
    metrics: Metrics
    """Evaluation metrics of this version (auc, precision, ...)."""
    samples: Count
    """Number of training samples."""
    data_cutoff: UtcDatetime
    """The model saw data that arrived up to this instant."""
    request_id: UUID | None = None
    """The retrain request this answers; null for a promotion nobody requested (e.g. a seed)."""
    promoted_at: UtcDatetime
