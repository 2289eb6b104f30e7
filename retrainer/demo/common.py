"""What every part of the demo shares: its error, the families and topics it shows, its pace, and
the policy the worker runs with."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.policy import PolicyConfig

UPSTREAM = ("customer-created", "customer-activity", "expense-label", "expense-sheet")
DELINQUENCY = "delinquency"
EXPENSE_FRAUD = "expense-fraud"
ANOMALY_REASONS = ("anomaly_rate_high", "anomaly_rate_low")

DEMO_MIN_TRAINING_INTERVAL_S = 0
"""The one policy setting the demo changes: no minimum interval between automatic trainings,
so its four triggers fit in three minutes."""

PHASE_S = 60.0
"""How long one step of a phase (a request, its training, the reload) may take."""
POLL_S = 0.25
"""How often the observer looks at PostgreSQL and the worker."""


class DemoError(Exception):
    """A step of the demo failed; the message says which step and why."""


def demo_policy() -> PolicyConfig:
    """The worker's policy: its defaults, but for the minimum interval the demo turns off."""
    from streams.policy import PolicyConfig

    return PolicyConfig(min_training_interval=timedelta(seconds=DEMO_MIN_TRAINING_INTERVAL_S))
