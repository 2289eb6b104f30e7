"""expense-label: an auditor's verdict on one expense; it often arrives long after the sheet."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from schemas.base import VERSION_IS_INT, Event, Identifier, NotFutureDatetime, Text


class ExpenseLabelled(Event):
    """An expense was labelled fraudulent or legitimate."""

    TOPIC: ClassVar[str] = "expense-label"
    KEY_FIELD: ClassVar[str] = "expense_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    expense_id: Identifier
    sheet_id: Identifier | None = None
    """The sheet the expense belongs to, when the labeller knows it."""
    is_fraud: bool
    labelled_at: NotFutureDatetime
    """When the verdict was given."""
    source: Text
    """Who or what gave the verdict (auditor, chargeback, ...)."""
