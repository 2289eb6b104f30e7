"""After the drift point the fraud mix and the customer population change measurably."""

from __future__ import annotations

from collections import Counter

import numpy as np

from retrainer.simulator.config import FraudKind
from retrainer.simulator.dates import to_us
from retrainer.simulator.expenses import FRAUD_KINDS, LEGIT
from tests.unit.simulator.factories import drifting


def _split(values: np.ndarray, at_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    drift_time = drifting().truth.drift_time
    assert drift_time is not None
    cut = to_us(drift_time)
    return values[at_us < cut], values[at_us >= cut]


def test_drift_time_is_the_configured_fraction_of_the_span() -> None:
    config = drifting().config
    assert drifting().truth.drift_time == config.origin + config.span * 0.3


def test_fraud_rate_rises_after_the_drift() -> None:
    expenses = drifting().world.expenses
    submitted = expenses.sheet_submitted_us[expenses.line_sheet]
    before, after = _split(expenses.fraud_kind != LEGIT, submitted)
    assert abs(before.mean() - 0.05) < 0.015
    assert abs(after.mean() - 0.10) < 0.02


def test_fraud_mix_shifts_towards_reused_receipts_and_limit_gaming() -> None:
    expenses = drifting().world.expenses
    submitted = expenses.sheet_submitted_us[expenses.line_sheet]
    before, after = _split(expenses.fraud_kind, submitted)

    def share(kinds: np.ndarray, kind: FraudKind) -> float:
        counts = Counter(kinds[kinds != LEGIT].tolist())
        return counts[FRAUD_KINDS.index(kind)] / sum(counts.values())

    gamed = (FraudKind.JUST_UNDER_LIMIT, FraudKind.DUPLICATE_RECEIPT)
    assert sum(share(after, k) for k in gamed) > sum(share(before, k) for k in gamed) + 0.2
    assert share(after, FraudKind.AMOUNT_SPIKE) < share(before, FraudKind.AMOUNT_SPIKE)


def test_utilization_and_delinquency_rise_after_the_drift() -> None:
    customers = drifting().world.customers
    utilization = customers.balance_cents / customers.limit_cents[:, None]
    before, after = _split(utilization.ravel(), customers.statement_us.ravel())
    assert after.mean() > before.mean() + 0.1
    late_before, late_after = _split(
        customers.delinquent_ahead.ravel(), customers.statement_us.ravel()
    )
    assert late_after.mean() > 1.5 * late_before.mean()


def test_customers_joining_after_the_drift_earn_less() -> None:
    customers = drifting().world.customers
    before, after = _split(customers.income_cents, customers.created_us)
    assert len(after) > 100
    assert np.median(after) < 0.85 * np.median(before)
