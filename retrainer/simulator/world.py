"""The simulated world of one scenario: every record, their interleaved timeline, the ground truth.

Independent of the event classes: `schemas/` is only met when records become events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from functools import cached_property

import numpy as np

from retrainer.simulator.config import FraudKind, ScenarioConfig
from retrainer.simulator.customers import CustomerData, generate_customers
from retrainer.simulator.dates import IntArray, to_us
from retrainer.simulator.expenses import (
    FRAUD_KINDS,
    LEGIT,
    ExpenseData,
    FraudRegime,
    generate_expenses,
)


class RecordKind(IntEnum):
    """What a timeline entry refers to; the value breaks ties between entries at the same time."""

    CUSTOMER = 0
    STATEMENT = 1
    SHEET = 2
    LABEL = 3


@dataclass(frozen=True)
class Timeline:
    """Entries in publication order: (kind, row, month) with their time, sorted by time."""

    kind: IntArray
    row: IntArray  # customer, sheet or label index
    month: IntArray  # statement month; 0 for the others
    at_us: IntArray

    def __len__(self) -> int:
        return len(self.kind)

    def __iter__(self) -> Iterator[tuple[RecordKind, int, int, int]]:
        kinds = tuple(RecordKind)
        for kind, row, month, at in zip(
            self.kind.tolist(),
            self.row.tolist(),
            self.month.tolist(),
            self.at_us.tolist(),
            strict=True,
        ):
            yield kinds[kind], row, month, at


@dataclass(frozen=True)
class GroundTruth:
    """What really happened, for tests and benchmarks to score the system against."""

    fraud_by_expense: dict[str, bool]
    fraud_kind_by_expense: dict[str, FraudKind]
    label_by_expense: dict[str, bool]
    """What the auditors said (after label noise), for the expenses that were labelled."""
    delinquent_by_statement: dict[str, bool]
    """Days past due reaches the threshold within the horizon after the statement."""
    drift_time: datetime | None


@dataclass(frozen=True)
class World:
    """Everything one scenario generated, before it became events or bytes."""

    config: ScenarioConfig
    expenses: ExpenseData
    customers: CustomerData
    timeline: Timeline

    @cached_property
    def truth(self) -> GroundTruth:
        expenses, customers = self.expenses, self.customers
        kinds = expenses.fraud_kind.tolist()
        statement_ids = [sid for row in customers.statement_ids for sid in row]
        return GroundTruth(
            fraud_by_expense={
                eid: kind != LEGIT for eid, kind in zip(expenses.expense_ids, kinds, strict=True)
            },
            fraud_kind_by_expense={
                eid: FRAUD_KINDS[kind]
                for eid, kind in zip(expenses.expense_ids, kinds, strict=True)
                if kind != LEGIT
            },
            label_by_expense={
                expenses.expense_ids[line]: bool(value)
                for line, value in zip(
                    expenses.label_line.tolist(), expenses.label_is_fraud.tolist(), strict=True
                )
            },
            delinquent_by_statement=dict(
                zip(statement_ids, customers.delinquent_ahead.ravel().tolist(), strict=True)
            ),
            drift_time=self.config.drift_time,
        )


def _timeline(expenses: ExpenseData, customers: CustomerData) -> Timeline:
    n_customers, months = customers.customer_count, customers.months
    parts = [
        (RecordKind.CUSTOMER, np.arange(n_customers), np.zeros(n_customers), customers.created_us),
        (
            RecordKind.STATEMENT,
            np.repeat(np.arange(n_customers), months),
            np.tile(np.arange(months), n_customers),
            customers.statement_us.ravel(),
        ),
        (
            RecordKind.SHEET,
            np.arange(expenses.sheet_count),
            np.zeros(expenses.sheet_count),
            expenses.sheet_submitted_us,
        ),
        (
            RecordKind.LABEL,
            np.arange(len(expenses.label_line)),
            np.zeros(len(expenses.label_line)),
            expenses.label_us,
        ),
    ]
    kind = np.concatenate([np.full(len(row), k.value) for k, row, _, _ in parts]).astype(np.int64)
    row = np.concatenate([r for _, r, _, _ in parts]).astype(np.int64)
    month = np.concatenate([m for _, _, m, _ in parts]).astype(np.int64)
    at = np.concatenate([t for _, _, _, t in parts]).astype(np.int64)
    order = np.lexsort((month, row, kind, at))
    return Timeline(kind=kind[order], row=row[order], month=month[order], at_us=at[order])


def simulate(config: ScenarioConfig) -> World:
    """Generate the scenario's world; the same config always gives the same world."""
    # One independent stream per subsystem: changing the sheet count leaves the customers alone.
    expense_seed, customer_seed = np.random.SeedSequence([config.seed, 0x5EED]).spawn(2)
    start_us = to_us(config.origin)
    span_us = to_us(config.origin + config.span) - start_us
    drift_time = config.drift_time
    drift_us = None if drift_time is None else to_us(drift_time)
    regimes = [FraudRegime(start_us, config.expenses.fraud_rate, config.expenses.fraud_mix)]
    if drift_us is not None:
        regimes.append(FraudRegime(drift_us, config.drifted_fraud_rate, config.drift.fraud_mix))
    expenses = generate_expenses(
        config.expenses,
        prefix=config.prefix,
        start_us=start_us,
        span_us=span_us,
        regimes=tuple(regimes),
        rng=np.random.default_rng(expense_seed),
    )
    customers = generate_customers(
        config.customers,
        config.drift,
        prefix=config.prefix,
        start_us=start_us,
        drift_us=drift_us,
        rng=np.random.default_rng(customer_seed),
    )
    return World(
        config=config,
        expenses=expenses,
        customers=customers,
        timeline=_timeline(expenses, customers),
    )
