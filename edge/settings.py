"""Settings both services read the same way: topic names (one nested field) and the minimum data
a training needs, each defined once with one set of bounds."""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from edge.kafka import KafkaSettings
from schemas.minimums import DataMinimums


class TopicNames(BaseModel):
    """Topic names; each can be renamed with `RETRAINER_TOPICS__<NAME>`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expense_sheet: str = Field(default="expense-sheet", min_length=1)
    customer_created: str = Field(default="customer-created", min_length=1)
    customer_activity: str = Field(default="customer-activity", min_length=1)
    expense_label: str = Field(default="expense-label", min_length=1)
    retrain_requested: str = Field(default="retrain-requested", min_length=1)
    model_updated: str = Field(default="model-updated", min_length=1)
    training_outcome: str = Field(default="training-outcome", min_length=1)
    expense_scored: str = Field(default="expense-scored", min_length=1)
    customer_scored: str = Field(default="customer-scored", min_length=1)
    dead_letter: str = Field(default="dead-letter", min_length=1)
    # Internal: what the ingest agents tell the policy agent (keyed by family).
    policy_signals: str = Field(default="retrainer-policy-signals", min_length=1)

    def upstream(self) -> dict[str, str]:
        """Default topic name → configured name, for the four upstream topics."""
        return {
            "expense-sheet": self.expense_sheet,
            "customer-created": self.customer_created,
            "customer-activity": self.customer_activity,
            "expense-label": self.expense_label,
        }

    @classmethod
    def prefixed(cls, prefix: str) -> TopicNames:
        """Every topic renamed `<prefix><default name>` (a private set of topics)."""
        return cls(
            **{name: prefix + str(field.default) for name, field in cls.model_fields.items()}
        )


RENAMED_PREFIX = "RETRAINER_TOPIC_"
"""How topics were renamed before the nested field: refused with the new name, not ignored."""

_BOUNDED_HISTORY = "the expense history is bounded in time: set RETRAINER_EXPENSE_HISTORY_DAYS"
_LABELLED_MINIMUM = (
    "the delinquency minimum counts labelled observations, as the trainer does: set "
    "RETRAINER_MIN_OBSERVATIONS and RETRAINER_MIN_POSITIVE_OBSERVATIONS"
)
RETIRED: dict[str, str] = {
    "RETRAINER_SCORE_CONTEXT_LINES": _BOUNDED_HISTORY,
    "RETRAINER_SCORE_CONTEXT_REFRESH_S": _BOUNDED_HISTORY,
    "RETRAINER_MIN_CUSTOMERS": _LABELLED_MINIMUM,
    "RETRAINER_MIN_STATEMENTS": _LABELLED_MINIMUM,
    "RETRAINER_COOLDOWN_S": (
        "a request that ends without a new model rests the automatic triggers until new data "
        "arrives, not for a fixed time: nothing replaces it"
    ),
}
"""Settings that are gone, with what replaces them: refused, not silently ignored.

The expense scorer kept the newest N lines in memory (it now reads each batch's history,
bounded in days like the trainer's); the policy had its own minimum data in customers and
statements, and a fixed rest after a request without a model."""


class SharedSettings(KafkaSettings):
    """What worker and trainer both read: the Kafka connection, the topics, the minimum data."""

    # hide_input_in_errors: a refused setting is named, never echoed (it may be a secret).
    model_config = SettingsConfigDict(
        env_prefix="RETRAINER_",
        env_nested_delimiter="__",
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,
    )

    topics: TopicNames = TopicNames()

    # Minimum data (the earlier systems' gate before training); a forced request bypasses it.
    min_expenses: int = Field(default=50, ge=0)
    min_sheets: int = Field(default=2, ge=0)
    min_lines_per_sheet: int = Field(default=5, ge=1)
    min_observations: int = Field(default=100, ge=2)
    """Labelled delinquency observations needed to train."""
    min_positive_observations: int = Field(default=10, ge=1)
    """… of which delinquent (and at least one sound)."""
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    """Share of the rows held out to evaluate on: the most recent ones."""
    new_customers_threshold: int = Field(default=50, ge=1)
    """New customers since the cutoff that call for a delinquency retraining."""
    approval_limit: float = Field(default=500.0, gt=0)
    """Expenses above this amount need approval (an expense-fraud feature)."""
    # Delinquency labels: the trainer labels its data with them, the worker the live scores whose
    # realised performance it measures; both must mean the same thing.
    delinquency_horizon_days: int = Field(default=92, ge=1)
    """A statement is labelled delinquent when a later one within this many days is."""
    delinquent_days_past_due: int = Field(default=30, ge=1)
    """Days past due from which a statement counts as delinquent."""
    anomaly_rate_low: float = Field(default=0.05, ge=0, le=1)
    """The expense-fraud flagged share below this is out of band (policy trigger, gate)."""
    anomaly_rate_high: float = Field(default=0.30, ge=0, le=1)
    """… and above this."""
    expense_history_days: int = Field(default=365, ge=1)
    """How far back an expense line's history reaches (habits, receipts and merchants seen)."""

    def minimums(self) -> DataMinimums:
        """The minimum data, as the policy and the trainer both check it."""
        return DataMinimums(
            min_expenses=self.min_expenses,
            min_sheets=self.min_sheets,
            min_lines_per_sheet=self.min_lines_per_sheet,
            min_observations=self.min_observations,
            min_positive_observations=self.min_positive_observations,
            horizon_days=self.delinquency_horizon_days,
            delinquent_days_past_due=self.delinquent_days_past_due,
            holdout_fraction=self.holdout_fraction,
        )

    @model_validator(mode="before")
    @classmethod
    def _no_old_variables(cls, data: Any) -> Any:
        old = sorted(k for k in os.environ if k.startswith(RENAMED_PREFIX))
        if old:
            new = [f"RETRAINER_TOPICS__{k.removeprefix(RENAMED_PREFIX)}" for k in old]
            raise ValueError(f"{', '.join(old)} renamed: set {', '.join(new)} instead")
        retired = sorted(k for k in RETIRED if k in os.environ)
        if retired:
            reasons = "; ".join(dict.fromkeys(RETIRED[k] for k in retired))
            raise ValueError(
                f"{', '.join(retired)} no longer {'exists' if len(retired) == 1 else 'exist'}: "
                f"{reasons} (unset {'it' if len(retired) == 1 else 'them'})"
            )
        return data

    @model_validator(mode="after")
    def _anomaly_band_is_a_band(self) -> SharedSettings:
        if self.anomaly_rate_low >= self.anomaly_rate_high:
            raise ValueError(
                "RETRAINER_ANOMALY_RATE_LOW must be below RETRAINER_ANOMALY_RATE_HIGH "
                f"({self.anomaly_rate_low} >= {self.anomaly_rate_high})"
            )
        return self
