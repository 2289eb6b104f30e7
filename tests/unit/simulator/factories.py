"""Small scenarios for the simulator's tests, built once per process and shared read-only."""

from __future__ import annotations

from functools import cache

from retrainer.simulator.config import (
    CustomerConfig,
    DriftConfig,
    ExpenseConfig,
    ScenarioConfig,
)
from retrainer.simulator.scenario import Scenario


def config(
    *,
    seed: int = 7,
    customers: int = 120,
    statements: int = 6,
    sheets: int = 150,
    fraud_rate: float = 0.08,
    label_fraction: float = 0.4,
    label_noise: float = 0.0,
    drift_at: float | None = None,
    bad_rate: float = 0.0,
    legacy_sheet_rate: float = 0.0,
) -> ScenarioConfig:
    return ScenarioConfig(
        seed=seed,
        expenses=ExpenseConfig(
            sheets=sheets,
            fraud_rate=fraud_rate,
            label_fraction=label_fraction,
            label_noise=label_noise,
        ),
        customers=CustomerConfig(customers=customers, statements_per_customer=statements),
        drift=DriftConfig(at=drift_at),
        bad_rate=bad_rate,
        legacy_sheet_rate=legacy_sheet_rate,
    )


@cache
def small() -> Scenario:
    """A little of everything, no malformed messages."""
    return Scenario(config())


@cache
def expense_heavy() -> Scenario:
    """Many sheets (thousands of lines), so every fraud kind shows up many times."""
    return Scenario(config(seed=11, customers=0, sheets=1500, fraud_rate=0.1))


@cache
def drifting() -> Scenario:
    """Drift at 30 % of the timeline, while customers still join: enough of both worlds."""
    return Scenario(
        config(seed=5, customers=3000, statements=12, sheets=1500, fraud_rate=0.05, drift_at=0.3)
    )


@cache
def noisy() -> Scenario:
    """A high bad rate and some old-shape sheets, for the codec to judge."""
    return Scenario(config(seed=3, customers=150, sheets=400, bad_rate=0.05, legacy_sheet_rate=0.2))
