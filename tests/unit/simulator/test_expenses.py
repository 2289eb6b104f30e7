"""Expense sheets: sizes, employees' habits, every kind of injected fraud, late audit labels."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest

from retrainer.simulator import catalog
from retrainer.simulator.config import FraudKind
from retrainer.simulator.dates import holidays, is_off_day
from retrainer.simulator.expenses import FRAUD_KINDS, LEGIT
from retrainer.simulator.scenario import Scenario
from schemas import ExpenseLabelled, ExpenseSheetSubmitted
from tests.unit.simulator.factories import config, expense_heavy, small


def test_counts_follow_the_configuration() -> None:
    scenario = small()
    counts = scenario.counts()
    assert counts["expense-sheet"] == 150
    assert counts["customer-created"] == 120
    assert counts["customer-activity"] == 120 * 6
    expenses = scenario.world.expenses
    assert counts["expense-label"] == len(expenses.label_line)
    assert len(scenario.truth.fraud_by_expense) == expenses.line_count


def test_sheets_have_one_to_thirty_lines_and_both_ends_occur() -> None:
    sizes = np.diff(expense_heavy().world.expenses.sheet_line_start)
    assert sizes.min() == 1
    assert sizes.max() <= 30
    assert (sizes >= 25).any()


def test_expense_ids_are_unique_and_lines_stay_before_submission() -> None:
    scenario = small()
    sheets = [e for e in scenario.events() if isinstance(e, ExpenseSheetSubmitted)]
    ids = [line.expense_id for sheet in sheets for line in sheet.lines]
    assert len(ids) == len(set(ids))
    for sheet in sheets:
        assert all(line.expense_date < sheet.submitted_at.date() for line in sheet.lines)
        assert sheet.occurred_at == sheet.submitted_at


def test_every_fraud_kind_appears_and_is_in_the_truth() -> None:
    scenario = expense_heavy()
    truth = scenario.truth
    kinds = Counter(truth.fraud_kind_by_expense.values())
    assert set(kinds) == set(FraudKind)
    assert min(kinds.values()) >= 20
    flagged = {eid for eid, fraud in truth.fraud_by_expense.items() if fraud}
    assert flagged == set(truth.fraud_kind_by_expense)
    rate = len(flagged) / len(truth.fraud_by_expense)
    assert 0.08 < rate < 0.12


def _lines_of(kind: FraudKind) -> np.ndarray:
    expenses = expense_heavy().world.expenses
    return np.flatnonzero(expenses.fraud_kind == FRAUD_KINDS.index(kind))


def test_just_under_limit_amounts_sit_right_below_the_limit() -> None:
    cents = expense_heavy().world.expenses.amount_cents[_lines_of(FraudKind.JUST_UNDER_LIMIT)]
    assert ((cents >= 48_000) & (cents <= 49_999)).all()


def test_round_amounts_are_round() -> None:
    cents = expense_heavy().world.expenses.amount_cents[_lines_of(FraudKind.ROUND_AMOUNT)]
    assert (cents % 5_000 == 0).all()


def test_weekend_or_holiday_fraud_is_dated_on_an_off_day() -> None:
    expenses = expense_heavy().world.expenses
    days = expenses.expense_day[_lines_of(FraudKind.WEEKEND_OR_HOLIDAY)]
    off = holidays(2020, 2030)
    assert is_off_day(days, off).all()
    # Honest lines are on working days, bar the odd trip over a weekend.
    legit = expenses.expense_day[expenses.fraud_kind == LEGIT]
    assert is_off_day(legit, off).mean() < 0.03


def test_category_mismatch_uses_a_merchant_outside_the_category() -> None:
    expenses = expense_heavy().world.expenses
    for i in _lines_of(FraudKind.CATEGORY_MISMATCH):
        category = catalog.CATEGORIES[int(expenses.category[i])]
        assert expenses.merchants[int(expenses.merchant[i])] not in category.merchants


def test_spikes_are_far_above_the_employees_habit() -> None:
    expenses = expense_heavy().world.expenses
    lines = _lines_of(FraudKind.AMOUNT_SPIKE)
    employee = expenses.sheet_employee[expenses.line_sheet[lines]]
    habit = expenses.employees.median_amount[employee, expenses.category[lines]]
    assert (expenses.amount_cents[lines] / 100 >= 3.99 * habit).all()


def test_duplicates_resubmit_an_earlier_genuine_receipt_of_the_same_employee() -> None:
    expenses = expense_heavy().world.expenses
    employee = expenses.sheet_employee[expenses.line_sheet]
    for i in _lines_of(FraudKind.DUPLICATE_RECEIPT):
        receipt = expenses.receipt_ref[i]
        assert receipt is not None
        sources = [
            j
            for j in range(i)
            if expenses.receipt_ref[j] == receipt
            and expenses.fraud_kind[j] == LEGIT
            and employee[j] == employee[i]
            and expenses.amount_cents[j] == expenses.amount_cents[i]
        ]
        assert sources, f"line {i} duplicates nothing"


def test_labels_arrive_after_their_sheet_and_cover_the_configured_fraction() -> None:
    scenario = expense_heavy()
    submitted = {}
    label_delays = []
    for message in scenario.messages():
        event = message.event
        if isinstance(event, ExpenseSheetSubmitted):
            for line in event.lines:
                submitted[line.expense_id] = event.submitted_at
        elif isinstance(event, ExpenseLabelled):
            assert event.expense_id in submitted, "a label was published before its sheet"
            label_delays.append(event.labelled_at - submitted[event.expense_id])
    assert min(label_delays) >= timedelta(hours=1)
    assert max(label_delays) <= timedelta(days=120)
    assert abs(len(label_delays) / len(submitted) - 0.4) < 0.03
    assert timedelta(days=3) < sorted(label_delays)[len(label_delays) // 2] < timedelta(days=14)


def test_labels_match_the_truth_without_noise() -> None:
    truth = expense_heavy().truth
    assert all(truth.fraud_by_expense[e] == v for e, v in truth.label_by_expense.items())


@pytest.mark.parametrize("noise", [0.1, 0.3])
def test_label_noise_flips_about_the_configured_share(noise: float) -> None:
    truth = Scenario(config(seed=2, customers=0, sheets=800, label_noise=noise)).truth
    wrong = [truth.fraud_by_expense[e] != v for e, v in truth.label_by_expense.items()]
    assert abs(np.mean(wrong) - noise) < 0.04


def test_amounts_are_exact_cents_within_the_codec_ceiling() -> None:
    for event in expense_heavy().events():
        if isinstance(event, ExpenseSheetSubmitted):
            for line in event.lines:
                assert line.amount == line.amount.quantize(Decimal("0.01"))
                assert Decimal("1.00") <= line.amount <= Decimal(1_000_000)
