"""The model families: what is trained, versioned and promoted as one.

Its own module, free of pydantic, so command-line parsing can name the families without
building the event models (schemas.base re-exports it where the events use it).
"""

from __future__ import annotations

from enum import StrEnum


class ModelFamily(StrEnum):
    """A family of models that is trained, versioned and promoted as one."""

    EXPENSE_FRAUD = "expense-fraud"
    DELINQUENCY = "delinquency"
