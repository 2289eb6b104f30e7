"""The trainer's one base exception and the failures callers tell apart."""

from __future__ import annotations

from schemas.errors import ArtifactIntegrityError


class TrainerError(Exception):
    """Base of every error the trainer raises on purpose."""


class InsufficientData(TrainerError):
    """There is not enough data to train; the message says what is missing."""


class RegistryError(TrainerError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, …)."""


class ChampionChanged(TrainerError):
    """Another process promoted a model between our gate decision and our commit."""


class DependencyUnavailable(TrainerError):
    """PostgreSQL or Kafka stayed unreachable through every retry."""


__all__ = ["ArtifactIntegrityError"]  # raised by schemas.artifacts; re-exported for callers
