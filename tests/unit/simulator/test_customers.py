"""Customers and statements: shape, time order, a truth that follows from the statements."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from retrainer.simulator.config import CustomerConfig, DriftConfig, ScenarioConfig
from retrainer.simulator.dates import US_PER_DAY, to_us
from retrainer.simulator.world import simulate
from schemas import CustomerActivityRecorded, CustomerCreated
from tests.unit.simulator.factories import small


def test_ten_thousand_customers_get_a_year_of_statements_each() -> None:
    # How fast: `make bench` (bench_simulator_generation); a test asserts shapes, not time.
    settings = ScenarioConfig(
        customers=CustomerConfig(customers=10_000, statements_per_customer=12)
    )
    world = simulate(settings)
    assert world.customers.balance_cents.shape == (10_000, 12)
    assert len(world.truth.delinquent_by_statement) == 120_000


def test_statements_are_monthly_and_follow_the_customers_creation() -> None:
    customers = small().world.customers
    days = customers.statement_us // US_PER_DAY
    gaps = np.diff(days, axis=1)
    assert ((gaps >= 28) & (gaps <= 31)).all()
    assert (customers.statement_us[:, 0] > customers.created_us).all()


def test_profiles_and_statements_are_plausible() -> None:
    events = list(small().events())
    profiles = [e.profile for e in events if isinstance(e, CustomerCreated)]
    assert all(18 <= p.age <= 90 and p.credit_limit >= 500 for p in profiles)
    assert len({p.product for p in profiles}) >= 3
    assert len({p.employment_status for p in profiles}) >= 3
    statements = [e for e in events if isinstance(e, CustomerActivityRecorded)]
    assert all(s.minimum_due <= max(s.balance, Decimal(0)) for s in statements)
    assert any(s.days_past_due >= 30 for s in statements)
    assert any(s.cash_advance_amount > 0 for s in statements)


def test_delinquency_truth_follows_from_later_statements() -> None:
    """Where the horizon lies within the published months the truth is derivable from them."""
    world = small().world
    dpd = world.customers.days_past_due
    horizon = world.config.customers.horizon_months
    months = dpd.shape[1]
    for month in range(months - horizon):
        derived = (dpd[:, month + 1 : month + 1 + horizon] >= 30).any(axis=1)
        assert (derived == world.customers.delinquent_ahead[:, month]).all()


def test_delinquency_rate_is_realistic() -> None:
    world = simulate(ScenarioConfig(customers=CustomerConfig(customers=5000)))
    rate = world.customers.delinquent_ahead.mean()
    assert 0.03 < rate < 0.15


def test_customers_join_across_the_onboarding_window_in_id_order() -> None:
    world = small().world
    created = world.customers.created_us
    assert (np.diff(created) >= 0).all()
    start = to_us(world.config.origin)
    assert created[0] >= start
    assert created[-1] < start + world.config.customers.onboarding_days * US_PER_DAY


def test_drift_config_without_drift_point_changes_nothing() -> None:
    plain = simulate(ScenarioConfig(customers=CustomerConfig(customers=200)))
    shifted = simulate(
        ScenarioConfig(
            customers=CustomerConfig(customers=200), drift=DriftConfig(income_factor=0.1)
        )
    )
    assert (plain.customers.income_cents == shifted.customers.income_cents).all()
