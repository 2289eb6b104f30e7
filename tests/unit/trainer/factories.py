"""Simulator worlds as the pandas frames of the tables the trainer reads (no database needed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrainer.simulator import catalog
from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
from retrainer.simulator.dates import US_PER_DAY
from retrainer.simulator.world import World, simulate


@dataclass(frozen=True)
class Frames:
    """One frame per table, with the columns (and names) the trainer's loaders produce."""

    customers: pd.DataFrame
    activity: pd.DataFrame
    sheets: pd.DataFrame
    expenses: pd.DataFrame
    labels: pd.DataFrame
    end_us: int
    """The moment of the last simulated record."""


def world(
    *,
    seed: int = 7,
    customers: int = 400,
    sheets: int = 200,
    prefix: str | None = None,
    **kw: float,
) -> World:
    """A small deterministic scenario; `kw` go to ExpenseConfig (e.g. label_fraction)."""
    return simulate(
        ScenarioConfig(
            seed=seed,
            id_prefix=prefix,
            customers=CustomerConfig(customers=customers),
            expenses=ExpenseConfig(sheets=sheets, **kw),  # type: ignore[arg-type]
        )
    )


def _utc(us: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(np.asarray(us, dtype=np.int64), unit="us", utc=True))


def frames(w: World) -> Frames:
    """Every record of `w` as table rows; occurred_at and ingested_at are the simulated times."""
    c, e = w.customers, w.expenses
    n, months = c.customer_count, c.months
    customers = pd.DataFrame(
        {
            "customer_id": c.ids,
            "created_at": _utc(c.created_us),
            "age": c.age,
            "annual_income": c.income_cents / 100.0,
            "credit_limit": c.limit_cents / 100.0,
            "region": np.array(catalog.REGIONS)[c.region],
            "product": np.array(catalog.PRODUCTS)[c.product],
            "tenure_months": c.tenure_months,
            "employment_status": np.array(catalog.EMPLOYMENT)[c.employment],
        }
    )
    statement_us = c.statement_us.ravel()
    activity = pd.DataFrame(
        {
            "statement_id": [sid for row in c.statement_ids for sid in row],
            "customer_id": np.repeat(np.array(c.ids, dtype=object), months),
            "statement_date": pd.to_datetime(statement_us // US_PER_DAY, unit="D"),
            "balance": c.balance_cents.ravel() / 100.0,
            "credit_limit": np.repeat(c.limit_cents / 100.0, months),
            "payment_amount": c.payment_cents.ravel() / 100.0,
            "minimum_due": c.minimum_cents.ravel() / 100.0,
            "purchase_amount": c.purchase_cents.ravel() / 100.0,
            "cash_advance_amount": c.cash_cents.ravel() / 100.0,
            "days_past_due": c.days_past_due.ravel(),
            "occurred_at": _utc(statement_us),
            "delinquent_ahead": c.delinquent_ahead.ravel(),
        }
    )
    assert len(activity) == n * months
    sheet_ids = np.array(e.sheet_ids, dtype=object)
    employees = np.array(e.employees.ids, dtype=object)
    sheets = pd.DataFrame(
        {
            "sheet_id": sheet_ids,
            "employee_id": employees[e.sheet_employee],
            "submitted_at": _utc(e.sheet_submitted_us),
            "line_count": np.diff(e.sheet_line_start),
        }
    )
    expenses = pd.DataFrame(
        {
            "expense_id": e.expense_ids,
            "sheet_id": sheet_ids[e.line_sheet],
            "employee_id": employees[e.sheet_employee[e.line_sheet]],
            "amount": e.amount_cents / 100.0,
            "currency": np.array(catalog.CURRENCIES)[e.currency],
            "category": np.array([cat.name for cat in catalog.CATEGORIES])[e.category],
            "merchant": np.array(e.merchants, dtype=object)[e.merchant],
            "expense_date": pd.to_datetime(e.expense_day, unit="D"),
            "description": e.description,
            "receipt_ref": pd.Series(e.receipt_ref, dtype=object),
            "submitted_at": _utc(e.sheet_submitted_us[e.line_sheet]),
            "is_fraud_truth": e.is_fraud,
        }
    )
    labels = pd.DataFrame(
        {
            "expense_id": np.array(e.expense_ids, dtype=object)[e.label_line],
            "sheet_id": sheet_ids[e.line_sheet[e.label_line]],
            "is_fraud": e.label_is_fraud,
            "labelled_at": _utc(e.label_us),
        }
    )
    return Frames(customers, activity, sheets, expenses, labels, int(w.timeline.at_us.max()))
