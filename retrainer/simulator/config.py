"""Frozen configuration of a simulated scenario: how much of what, when it drifts, how noisy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from retrainer.simulator.errors import SimulatorError


class FraudKind(StrEnum):
    """The ways an injected fraudulent expense line departs from its employee's habits."""

    DUPLICATE_RECEIPT = "duplicate_receipt"
    JUST_UNDER_LIMIT = "just_under_limit"
    ROUND_AMOUNT = "round_amount"
    WEEKEND_OR_HOLIDAY = "weekend_or_holiday"
    CATEGORY_MISMATCH = "category_mismatch"
    AMOUNT_SPIKE = "amount_spike"


def _mix(weights: Mapping[FraudKind, float]) -> Mapping[FraudKind, float]:
    return MappingProxyType(dict(weights))


EVEN_FRAUD_MIX: Mapping[FraudKind, float] = _mix(dict.fromkeys(FraudKind, 1.0))
"""Before drift every kind of fraud is equally likely."""

DRIFTED_FRAUD_MIX: Mapping[FraudKind, float] = _mix(
    {
        FraudKind.DUPLICATE_RECEIPT: 3.0,
        FraudKind.JUST_UNDER_LIMIT: 3.0,
        FraudKind.ROUND_AMOUNT: 2.0,
        FraudKind.WEEKEND_OR_HOLIDAY: 0.5,
        FraudKind.CATEGORY_MISMATCH: 0.5,
        FraudKind.AMOUNT_SPIKE: 0.5,
    }
)
"""After drift fraudsters have learnt to stay under the limit and to reuse receipts."""

DEFAULT_END = datetime(2026, 1, 1, tzinfo=UTC)
"""By default a scenario ends here: fixed, so a seed alone decides every byte, and in the past,
so that no event is refused as lying in the future."""

MAX_LABEL_DELAY = timedelta(days=120)
"""Auditors label within this long after the sheet; the scenario's last event is that late."""


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise SimulatorError(f"{name} must be within [0, 1], got {value}")


def _check_mix(name: str, mix: Mapping[FraudKind, float]) -> None:
    if any(weight < 0 for weight in mix.values()) or sum(mix.values()) <= 0:
        raise SimulatorError(f"{name} needs non-negative weights with a positive sum")


@dataclass(frozen=True)
class ExpenseConfig:
    """Employees, their sheets, the fraud injected into them and the auditors' late labels."""

    sheets: int = 200
    employees: int = 40
    fraud_rate: float = 0.05
    fraud_mix: Mapping[FraudKind, float] = field(default_factory=lambda: EVEN_FRAUD_MIX)
    approval_limit: float = 500.0
    max_lines: int = 30
    label_fraction: float = 0.3
    label_noise: float = 0.0
    label_delay_median_days: float = 7.0

    def __post_init__(self) -> None:
        if self.sheets < 0 or self.employees < 1:
            raise SimulatorError("sheets must be ≥ 0 and employees ≥ 1")
        if not 1 <= self.max_lines <= 500:
            raise SimulatorError("max_lines must be within 1..500")
        if self.approval_limit < 50:
            raise SimulatorError("approval_limit must be at least 50")
        if self.label_delay_median_days <= 0:
            raise SimulatorError("label_delay_median_days must be positive")
        _check_fraction("fraud_rate", self.fraud_rate)
        _check_fraction("label_fraction", self.label_fraction)
        _check_fraction("label_noise", self.label_noise)
        _check_mix("fraud_mix", self.fraud_mix)


@dataclass(frozen=True)
class CustomerConfig:
    """Card customers, their monthly statements and what counts as becoming delinquent."""

    customers: int = 500
    statements_per_customer: int = 12
    onboarding_days: int = 365
    horizon_months: int = 3
    delinquent_days_past_due: int = 30

    def __post_init__(self) -> None:
        if self.customers < 0 or self.statements_per_customer < 0:
            raise SimulatorError("customers and statements_per_customer must be ≥ 0")
        if self.onboarding_days < 1 or self.horizon_months < 1:
            raise SimulatorError("onboarding_days and horizon_months must be ≥ 1")


@dataclass(frozen=True)
class DriftConfig:
    """What changes from `at` (a fraction of the scenario's time span) on; `at=None` = no drift."""

    at: float | None = None
    fraud_rate: float | None = None
    """Fraud rate after the drift; None = twice the configured rate (at most 0.5)."""
    fraud_mix: Mapping[FraudKind, float] = field(default_factory=lambda: DRIFTED_FRAUD_MIX)
    income_factor: float = 0.7
    """Incomes of customers who join after the drift are multiplied by this."""
    utilization_shift: float = 0.15
    """Added to every customer's credit utilization on statements after the drift."""
    stress_shift: float = 0.6
    """Added to the latent financial stress after the drift (more missed payments)."""

    def __post_init__(self) -> None:
        if self.at is not None:
            _check_fraction("drift at", self.at)
        if self.fraud_rate is not None:
            _check_fraction("drift fraud_rate", self.fraud_rate)
        if self.income_factor <= 0:
            raise SimulatorError("income_factor must be positive")
        _check_mix("drift fraud_mix", self.fraud_mix)


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything that decides a scenario's output; the same config gives the same bytes."""

    seed: int = 0
    start: datetime | None = None
    """When the first customer may join and the first sheet go in; None = so that the scenario
    ends by DEFAULT_END (see `ending`)."""
    expenses: ExpenseConfig = field(default_factory=ExpenseConfig)
    customers: CustomerConfig = field(default_factory=CustomerConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    bad_rate: float = 0.0
    """Fraction of messages replaced by malformed bytes the codec must refuse."""
    legacy_sheet_rate: float = 0.0
    """Fraction of sheets sent in the old upload shape (schema_version 1), to exercise upcasting."""
    id_prefix: str | None = None
    """Put into every entity id so that runs with different seeds never collide; None = the seed."""

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise SimulatorError("seed must be ≥ 0")
        if self.start is not None and (
            self.start.tzinfo is None or self.start.utcoffset() != timedelta(0)
        ):
            raise SimulatorError("start must be a UTC datetime")
        _check_fraction("bad_rate", self.bad_rate)
        _check_fraction("legacy_sheet_rate", self.legacy_sheet_rate)

    @classmethod
    def of(
        cls,
        *,
        seed: int = 0,
        customers: int = 500,
        statements_per_customer: int = 12,
        sheets: int = 200,
        fraud_rate: float = 0.05,
        label_fraction: float = 0.3,
        drift_at: float | None = None,
        bad_rate: float = 0.0,
    ) -> ScenarioConfig:
        """The common knobs in one flat call (what the command line offers)."""
        return cls(
            seed=seed,
            expenses=ExpenseConfig(
                sheets=sheets, fraud_rate=fraud_rate, label_fraction=label_fraction
            ),
            customers=CustomerConfig(
                customers=customers, statements_per_customer=statements_per_customer
            ),
            drift=DriftConfig(at=drift_at),
            bad_rate=bad_rate,
        )

    @property
    def prefix(self) -> str:
        return self.id_prefix if self.id_prefix is not None else str(self.seed)

    @property
    def origin(self) -> datetime:
        """The scenario's start: `start`, or early enough that everything is over by DEFAULT_END."""
        if self.start is not None:
            return self.start
        return self.latest_start(DEFAULT_END)

    def latest_start(self, end: datetime) -> datetime:
        """The start at which this scenario's last event (a late label) is due by `end`."""
        return end - self.span - MAX_LABEL_DELAY

    @property
    def span(self) -> timedelta:
        """From the first event to the last statement; sheets are spread over the same span."""
        months = self.customers.statements_per_customer + 1
        return timedelta(days=self.customers.onboarding_days + 31 * months)

    @property
    def drift_time(self) -> datetime | None:
        if self.drift.at is None:
            return None
        return self.origin + self.span * self.drift.at

    @property
    def drifted_fraud_rate(self) -> float:
        if self.drift.fraud_rate is not None:
            return self.drift.fraud_rate
        return min(0.5, 2 * self.expenses.fraud_rate)
