"""expense-scored: the fraud scores of one expense line and the model version behind them."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from schemas.base import VERSION_IS_INT, Event, Identifier, Probability, Text, UtcDatetime


class ExpenseScored(Event):
    """An expense line was scored."""

    TOPIC: ClassVar[str] = "expense-scored"
    KEY_FIELD: ClassVar[str] = "expense_id"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    expense_id: Identifier
    sheet_id: Identifier
    model_version: Identifier | None = None
    """The expense-fraud model version used; null when no model exists yet."""
    anomaly_score: float | None = None
    """IsolationForest score (higher is more anomalous); null without a model."""
    fraud_probability: Probability | None = None
    """RandomForest probability of fraud; null until enough labels exist."""
    is_flagged: bool
    scored_at: UtcDatetime
    scoring_run: Text | None = None
    """The batch analysis this score belongs to; null for live scoring."""
