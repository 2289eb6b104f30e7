"""customer-scored: the delinquency probability of one statement and the model version behind it."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from schemas.base import VERSION_IS_INT, Event, Identifier, Probability, Text, UtcDatetime


class CustomerScored(Event):
    """A customer's statement was scored."""

    TOPIC: ClassVar[str] = "customer-scored"
    KEY_FIELD: ClassVar[str] = "customer_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    customer_id: Identifier
    statement_id: Identifier
    model_version: Identifier | None = None
    """The delinquency model version used; null when no model exists yet."""
    delinquency_probability: Probability | None = None
    """Probability of becoming delinquent within the horizon; null without a model."""
    is_flagged: bool
    scored_at: UtcDatetime
    scoring_run: Text | None = None
    """The batch analysis this score belongs to; null for live scoring."""
