"""Plain vectorised features over simulated data, to check offline that the truth is learnable.

These are deliberately simple: they show the signal is there, not how the trainer builds features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from retrainer.simulator.customers import CustomerData
from retrainer.simulator.dates import BoolArray, IntArray, from_day, holidays, is_off_day
from retrainer.simulator.expenses import ExpenseData

FloatArray = npt.NDArray[np.float64]

DELINQUENCY_FEATURES: tuple[str, ...] = (
    "utilization",
    "payment_to_previous_minimum",
    "payment_to_previous_balance",
    "cash_advance_to_limit",
    "purchases_to_limit",
    "days_past_due",
    "max_days_past_due_3m",
    "log_income",
    "tenure_months",
    "age",
    "months_on_book",
)

EXPENSE_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_to_employee_category_median",
    "is_round_50",
    "just_under_limit",
    "on_off_day",
    "merchant_category_rarity",
    "receipt_reuse",
)


@dataclass(frozen=True)
class Dataset:
    """A feature matrix with its truth and the time of each row (for time-ordered splits)."""

    features: FloatArray
    target: BoolArray
    at_us: IntArray
    names: tuple[str, ...]

    def time_split(self, train_fraction: float) -> tuple[Dataset, Dataset]:
        """Everything before a time cut for training, everything after it for holdout."""
        order = np.argsort(self.at_us, kind="stable")
        cut = int(len(order) * train_fraction)
        return self._take(order[:cut]), self._take(order[cut:])

    def _take(self, rows: IntArray) -> Dataset:
        return Dataset(self.features[rows], self.target[rows], self.at_us[rows], self.names)


def delinquency_dataset(data: CustomerData) -> Dataset:
    """One row per statement, from what was known at the statement; target = delinquent ahead."""
    limit = np.maximum(data.limit_cents, 1)[:, None].astype(np.float64)
    balance = data.balance_cents.astype(np.float64)
    previous_balance = np.concatenate([balance[:, :1], balance[:, :-1]], axis=1)
    minimum = data.minimum_cents.astype(np.float64)
    previous_minimum = np.concatenate([minimum[:, :1], minimum[:, :-1]], axis=1)
    payment = data.payment_cents.astype(np.float64)
    dpd = data.days_past_due.astype(np.float64)
    padded = np.concatenate([np.zeros((len(dpd), 2)), dpd], axis=1)
    worst_3m = np.maximum(np.maximum(padded[:, 2:], padded[:, 1:-1]), padded[:, :-2])
    months = np.broadcast_to(np.arange(data.months, dtype=np.float64), dpd.shape)

    def per_customer(column: IntArray) -> FloatArray:
        return np.broadcast_to(column.astype(np.float64)[:, None], dpd.shape)

    columns = [
        balance / limit,
        payment / np.maximum(previous_minimum, 100.0),
        payment / np.maximum(previous_balance, 100.0),
        data.cash_cents / limit,
        data.purchase_cents / limit,
        dpd,
        worst_3m,
        np.log1p(per_customer(data.income_cents) / 100.0),
        per_customer(data.tenure_months) + months,
        per_customer(data.age),
        months,
    ]
    return Dataset(
        features=np.stack([np.asarray(c, dtype=np.float64).ravel() for c in columns], axis=1),
        target=np.asarray(data.delinquent_ahead.ravel(), dtype=np.bool_),
        at_us=data.statement_us.ravel().astype(np.int64),
        names=DELINQUENCY_FEATURES,
    )


def expense_dataset(data: ExpenseData, approval_limit: float) -> Dataset:
    """One row per expense line, from the lines alone (no truth); target = injected fraud."""
    amount = data.amount_cents.astype(np.float64) / 100.0
    employee = data.sheet_employee[data.line_sheet]
    n_categories = int(data.category.max(initial=0)) + 1
    group = employee * n_categories + data.category
    # Median per (employee, category) via sorting, so the habit baseline costs no Python loop.
    order = np.lexsort((amount, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    ends = np.r_[starts[1:], len(order)]
    medians = amount[order][(starts + ends) // 2]
    group_median = np.empty_like(amount)
    group_median[order] = np.repeat(medians, ends - starts)

    pair = data.merchant * n_categories + data.category
    pair_count = np.bincount(pair, minlength=int(pair.max(initial=0)) + 1)[pair]
    merchant_count = np.bincount(data.merchant)[data.merchant]
    receipts = np.array([r if r is not None else "" for r in data.receipt_ref])
    _, receipt_index, receipt_counts = np.unique(receipts, return_inverse=True, return_counts=True)
    reused = np.where(receipts != "", receipt_counts[receipt_index] - 1, 0)

    days = data.expense_day
    off_days = holidays(
        from_day(int(days.min(initial=0))).year, from_day(int(days.max(initial=0))).year
    )
    columns = [
        np.log1p(amount),
        amount / np.maximum(group_median, 0.01),
        (data.amount_cents % 5000 == 0).astype(np.float64),
        ((amount >= 0.96 * approval_limit) & (amount < approval_limit)).astype(np.float64),
        is_off_day(days, off_days).astype(np.float64),
        1.0 - pair_count / merchant_count,
        reused.astype(np.float64),
    ]
    return Dataset(
        features=np.stack(columns, axis=1),
        target=data.is_fraud,
        at_us=data.sheet_submitted_us[data.line_sheet].astype(np.int64),
        names=EXPENSE_FEATURES,
    )
