"""Shared features are point-in-time: no leakage from later rows; labels from later statements."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from schemas.features import (
    DELINQUENCY_FEATURES,
    EXPENSE_FEATURES,
    HISTORY_KEYS,
    HistorySpan,
    HistorySummary,
    delinquency_features,
    delinquency_labels,
    expense_features,
    microseconds,
    unknown_categories,
)
from tests.unit.trainer.factories import Frames, frames, world


@pytest.fixture(scope="module")
def sim() -> Frames:
    return frames(world(seed=3, customers=150, sheets=120))


def _day(frame: pd.DataFrame) -> np.ndarray:
    return frame["statement_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)


def test_delinquency_features_of_a_statement_ignore_everything_after_it(sim: Frames) -> None:
    full = delinquency_features(sim.activity, sim.customers).set_index("statement_id")
    day = _day(sim.activity)
    cut = int(np.median(day))
    past = delinquency_features(sim.activity.loc[day <= cut], sim.customers).set_index(
        "statement_id"
    )
    pd.testing.assert_frame_equal(past, full.loc[past.index], check_exact=False)


def test_delinquency_features_do_not_change_when_the_future_is_altered(sim: Frames) -> None:
    day = _day(sim.activity)
    cut = int(np.median(day))
    altered = sim.activity.copy()
    later = day > cut
    altered.loc[later, "days_past_due"] = 120
    altered.loc[later, "balance"] *= 3
    before = delinquency_features(sim.activity, sim.customers).set_index("statement_id")
    after = delinquency_features(altered, sim.customers).set_index("statement_id")
    known = sim.activity.loc[~later, "statement_id"]
    pd.testing.assert_frame_equal(before.loc[known], after.loc[known])


def test_delinquency_features_have_every_column_and_use_history() -> None:
    activity = pd.DataFrame(
        {
            "statement_id": ["s1", "s2", "s3", "t1"],
            "customer_id": ["a", "a", "a", "b"],
            "statement_date": pd.to_datetime(
                ["2025-01-28", "2025-02-28", "2025-03-28", "2025-01-10"]
            ),
            "balance": [100.0, 500.0, 900.0, 50.0],
            "credit_limit": [1000.0] * 4,
            "payment_amount": [0.0, 10.0, 100.0, 0.0],
            "minimum_due": [25.0, 25.0, 27.0, 25.0],
            "purchase_amount": [100.0] * 4,
            "cash_advance_amount": [0.0, 0.0, 100.0, 0.0],
            "days_past_due": [0, 15, 45, 0],
        }
    )
    profiles = pd.DataFrame(
        {
            "customer_id": ["a"],
            "age": [30],
            "annual_income": [40_000.0],
            "tenure_months": [12],
            "employment_status": ["student"],
        }
    )
    out = delinquency_features(activity, profiles).set_index("statement_id")
    assert set(DELINQUENCY_FEATURES) <= set(out.columns)
    assert out.loc["s3", "max_days_past_due_3"] == 45
    assert out.loc["s3", "missed_minimum_3"] == 1  # s2 paid 10 of 25 due; s3 paid 100 of 25
    assert out.loc["s2", "utilization_change"] == pytest.approx(0.4)
    assert out.loc["s3", "months_on_book"] == 2
    assert out.loc["s3", "tenure_months"] == 14
    assert out.loc["s1", "employment_student"] == 1
    assert np.isnan(out.loc["t1", "log_income"])  # no profile: unknown, not zero
    assert np.isnan(out.loc["t1", "utilization_change"])  # first statement: no history


def _statements(days_past_due: list[int], start: str = "2025-01-28") -> pd.DataFrame:
    n = len(days_past_due)
    return pd.DataFrame(
        {
            "statement_id": [f"s{i}" for i in range(n)],
            "customer_id": ["c"] * n,
            "statement_date": pd.date_range(start, periods=n, freq="30D"),
            "balance": [100.0] * n,
            "credit_limit": [1000.0] * n,
            "payment_amount": [30.0] * n,
            "minimum_due": [25.0] * n,
            "purchase_amount": [0.0] * n,
            "cash_advance_amount": [0.0] * n,
            "days_past_due": days_past_due,
        }
    )


def test_delinquency_label_comes_from_a_later_statement_within_the_horizon() -> None:
    activity = _statements([0, 0, 0, 0, 35, 0, 0, 0, 0])
    last = int(_day(activity)[-1])
    labels = delinquency_labels(activity, cutoff_day=last, horizon_days=92)
    # s4 (35 days past due) is 30, 60, 90 days after s3, s2, s1: within 92 days of each.
    assert labels.delinquent.tolist() == [
        False,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    # s4 does not label itself. A label needs its whole horizon by the cutoff (day 240): s5's
    # ends on day 242.
    assert labels.known.tolist() == [True, True, True, True, True, False, False, False, False]


def test_delinquency_labels_never_use_statements_after_the_cutoff() -> None:
    activity = _statements([0, 0, 0, 0, 0, 0, 0, 40, 0])
    day = _day(activity)
    cutoff = int(day[6])  # s7, the delinquent one, is after the cutoff
    labels = delinquency_labels(activity, cutoff_day=cutoff, horizon_days=92)
    assert not labels.delinquent.any()
    # s3's horizon ends on day 90 + 92, two days after the cutoff: unknown.
    assert labels.known.tolist() == [True, True, True, False, False, False, False, False, False]
    truncated = delinquency_labels(activity.iloc[:7], cutoff_day=cutoff, horizon_days=92)
    assert truncated.known.tolist() == labels.known[:7].tolist()


def test_a_customer_whose_statements_stop_is_not_taken_for_sound() -> None:
    activity = _statements([0, 0, 0])
    labels = delinquency_labels(activity, cutoff_day=int(_day(activity)[-1]) + 365, horizon_days=92)
    assert labels.known.tolist() == [False, False, False]


def test_expense_features_of_a_line_ignore_later_sheets(sim: Frames) -> None:
    full = expense_features(sim.expenses).set_index("expense_id")
    submitted = sim.expenses["submitted_at"]
    cut = submitted.quantile(0.5)
    past = expense_features(sim.expenses.loc[submitted <= cut]).set_index("expense_id")
    pd.testing.assert_frame_equal(past, full.loc[past.index])
    assert set(EXPENSE_FEATURES) <= set(full.columns)


def test_expense_features_spot_reused_receipts_and_habits() -> None:
    base = {
        "employee_id": "e",
        "category": "meals",
        "merchant": "Cafe",
        "expense_date": pd.Timestamp("2025-03-03"),  # a Monday
    }
    rows = [
        {**base, "expense_id": "x1", "sheet_id": "A", "amount": 20.0, "receipt_ref": "R1"},
        {**base, "expense_id": "x2", "sheet_id": "A", "amount": 22.0, "receipt_ref": "R2"},
        {**base, "expense_id": "x3", "sheet_id": "B", "amount": 200.0, "receipt_ref": "R1"},
        {
            **base,
            "expense_id": "x4",
            "sheet_id": "B",
            "amount": 490.0,
            "receipt_ref": None,
            "merchant": "Casino",
            "expense_date": pd.Timestamp("2025-03-08"),
        },
    ]
    frame = pd.DataFrame(rows)
    frame["submitted_at"] = pd.to_datetime(
        ["2025-03-04", "2025-03-04", "2025-03-10", "2025-03-10"], utc=True
    )
    out = expense_features(frame).set_index("expense_id")
    assert out.loc["x3", "receipt_seen_before"] == 1
    assert out.loc["x1", "receipt_seen_before"] == 0
    assert np.isnan(out.loc["x1", "amount_vs_employee_habit"])  # no earlier sheet
    assert out.loc["x3", "amount_vs_employee_habit"] == pytest.approx(
        np.log1p(200) - (np.log1p(20) + np.log1p(22)) / 2
    )
    assert out.loc["x4", "just_under_limit"] == 1
    assert out.loc["x4", "on_weekend_or_holiday"] == 1
    assert out.loc["x4", "new_merchant_for_employee"] == 1
    assert out.loc["x4", "missing_receipt"] == 1
    assert out.loc["x1", "lines_in_sheet"] == 2


def test_features_cover_a_large_history_row_for_row() -> None:
    # How fast: `make bench` (the trainer benches); a test asserts behaviour, not time.
    big = frames(world(seed=5, customers=5000, sheets=2000))
    features = delinquency_features(big.activity, big.customers)
    delinquency_labels(big.activity, cutoff_day=30_000)
    lines = expense_features(big.expenses)
    assert len(features) == len(big.activity)
    assert len(lines) == len(big.expenses)


def _profiles(statuses: list[object]) -> pd.DataFrame:
    n = len(statuses)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "age": [40] * n,
            "annual_income": [50_000.0] * n,
            "tenure_months": [24] * n,
            "employment_status": statuses,
        }
    )


def _one_statement_each(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "statement_id": [f"s{i}" for i in range(n)],
            "customer_id": [f"c{i}" for i in range(n)],
            "statement_date": pd.to_datetime(["2025-03-01"] * n),
            "balance": [100.0] * n,
            "credit_limit": [1000.0] * n,
            "payment_amount": [30.0] * n,
            "minimum_due": [25.0] * n,
            "purchase_amount": [0.0] * n,
            "cash_advance_amount": [0.0] * n,
            "days_past_due": [0] * n,
        }
    )


@pytest.mark.parametrize(
    ("raw", "feature"),
    [
        ("self-employed", "employment_self_employed"),
        ("Self Employed", "employment_self_employed"),
        ("SELF_EMPLOYED", "employment_self_employed"),
        ("part-time", "employment_part_time"),
        (" Part  Time ", "employment_part_time"),
        ("contractor", "employment_contractor"),
        ("Retired", "employment_retired"),
        ("freelancer", "employment_other"),
        ("zero-hours", "employment_other"),
    ],
)
def test_employment_statuses_are_normalised_or_go_to_other(raw: str, feature: str) -> None:
    out = delinquency_features(_one_statement_each(1), _profiles([raw]))
    employment = [name for name in DELINQUENCY_FEATURES if name.startswith("employment_")]
    assert out.loc[0, employment].to_dict() == {n: float(n == feature) for n in employment}


@pytest.mark.parametrize("raw", ["employed", "Employed", None, "", "  "])
def test_the_baseline_and_missing_statuses_set_no_employment_feature(raw: object) -> None:
    out = delinquency_features(_one_statement_each(1), _profiles([raw]))
    employment = [name for name in DELINQUENCY_FEATURES if name.startswith("employment_")]
    assert out.loc[0, employment].sum() == 0


def test_unknown_categories_counts_the_values_sent_to_other() -> None:
    profiles = _profiles(["employed", "self-employed", "freelancer", None, "gig worker", ""])
    assert unknown_categories(profiles) == {"employment_status": 2}
    assert unknown_categories(profiles.iloc[:0]) == {"employment_status": 0}


def _line_features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("expense_id").loc[:, list(EXPENSE_FEATURES)].astype(np.float64)


def test_a_lines_expense_features_need_only_the_lines_of_its_window(sim: Frames) -> None:
    days = 7
    full = _line_features(expense_features(sim.expenses, history_days=days))
    submitted = pd.to_datetime(sim.expenses["submitted_at"], utc=True)
    everything = _line_features(expense_features(sim.expenses, history_days=100_000))
    # The window matters: with these data a week forgets most of a line's history.
    assert (full["merchant_history"] < everything["merchant_history"]).mean() > 0.5
    for position in np.random.default_rng(1).choice(len(sim.expenses), 40, replace=False):
        moment = submitted.iloc[position]
        inside = (submitted >= moment - pd.Timedelta(days=days)) & (submitted <= moment)
        alone = _line_features(expense_features(sim.expenses.loc[inside], history_days=days))
        expense_id = sim.expenses["expense_id"].iloc[position]
        np.testing.assert_allclose(
            alone.loc[expense_id].to_numpy(), full.loc[expense_id].to_numpy(), equal_nan=True
        )


def _summary(lines: pd.DataFrame, span: HistorySpan) -> HistorySummary:
    """What the scorer's store reads as totals, computed with pandas."""
    frame = lines.assign(log_amount=np.log1p(np.maximum(lines["amount"], 0.0)))
    totals = {
        name: frame.dropna(subset=list(columns))
        .groupby(list(columns), as_index=False)
        .agg(lines=("log_amount", "size"), log_amount_sum=("log_amount", "sum"))
        for name, columns in HISTORY_KEYS.items()
    }
    return HistorySummary(span.summary_since_us, span.summary_until_us, totals)


@pytest.mark.parametrize("days", [60, 365])
def test_history_given_as_totals_gives_the_features_of_the_lines(sim: Frames, days: int) -> None:
    submitted = microseconds(sim.expenses["submitted_at"])
    sheets = np.unique(submitted)
    batch_times = sheets[len(sheets) // 2 : len(sheets) // 2 + 3]
    batch = sim.expenses[np.isin(submitted, batch_times)]
    span = HistorySpan.of(list(batch_times), days)
    summarised = (submitted >= span.summary_since_us) & (submitted < span.summary_until_us)
    detailed = (submitted >= span.since_us) & (submitted <= span.until_us) & ~summarised
    assert summarised.sum() > 30
    given = pd.concat([sim.expenses[detailed & ~np.isin(submitted, batch_times)], batch])
    features = expense_features(
        given, history_days=days, summary=_summary(sim.expenses[summarised], span)
    )
    expected = _line_features(expense_features(sim.expenses, history_days=days))
    got = _line_features(features).loc[batch["expense_id"]]
    np.testing.assert_allclose(
        got.to_numpy(), expected.loc[batch["expense_id"]].to_numpy(), rtol=1e-9, equal_nan=True
    )
