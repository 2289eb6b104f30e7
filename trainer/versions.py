"""Model version ids in the pre-delinquency engine's style: auto_retrain_YYYYmmdd_HHMMSS[_N]."""

from __future__ import annotations

from collections.abc import Container
from datetime import UTC, datetime

PREFIX = "auto_retrain_"


def base_version(at: datetime) -> str:
    """The id for a model trained at `at` (rendered in UTC, to the second)."""
    return f"{PREFIX}{at.astimezone(UTC):%Y%m%d_%H%M%S}"


def unique_version(at: datetime, taken: Container[str]) -> str:
    """The base id, or the base with `_2`, `_3`, … when ids of the same second are taken."""
    base = base_version(at)
    if base not in taken:
        return base
    n = 2
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"
