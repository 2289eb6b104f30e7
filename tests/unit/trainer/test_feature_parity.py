"""The delinquency features and labels equal, row for row, what the string-sorting pandas code
built (tests/unit/trainer/features_reference.py) on simulator worlds, on frames shaped as each
loader gives them, and on generated edge cases (ties, repeats, missing profiles, odd statuses)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import features
from schemas.features import ACTIVITY_COLUMNS, PROFILE_COLUMNS
from tests.unit.trainer import features_reference as reference
from tests.unit.trainer.factories import frames, world


def _day(frame: pd.DataFrame) -> np.ndarray:
    return frame["statement_date"].to_numpy(dtype="datetime64[D]").astype(np.int64)


def _assert_same(activity: pd.DataFrame, profiles: pd.DataFrame, cutoff_days: list[int]) -> None:
    built = features.delinquency_features(activity, profiles)
    expected = reference.delinquency_features(activity, profiles)
    pd.testing.assert_frame_equal(built, expected, check_exact=True)
    assert features.unknown_categories(profiles) == reference.unknown_categories(profiles)
    for cutoff_day in cutoff_days:
        for horizon, past_due in ((92, 30), (31, 1), (200, 90)):
            labels = features.delinquency_labels(
                activity,
                cutoff_day=cutoff_day,
                horizon_days=horizon,
                delinquent_days_past_due=past_due,
            )
            wanted = reference.delinquency_labels(
                activity,
                cutoff_day=cutoff_day,
                horizon_days=horizon,
                delinquent_days_past_due=past_due,
            )
            np.testing.assert_array_equal(labels.known, wanted.known)
            np.testing.assert_array_equal(labels.delinquent, wanted.delinquent)
            both = features.labelled_delinquency_features(
                activity,
                profiles,
                cutoff_day=cutoff_day,
                horizon_days=horizon,
                delinquent_days_past_due=past_due,
            )
            pd.testing.assert_frame_equal(both.features, expected, check_exact=True)
            np.testing.assert_array_equal(both.labels.known, wanted.known)
            np.testing.assert_array_equal(both.labels.delinquent, wanted.delinquent)
        pd.testing.assert_frame_equal(
            features.labelled_by_day(activity, cutoff_day=cutoff_day),
            reference.labelled_by_day(activity, cutoff_day=cutoff_day),
            check_exact=True,
        )


@pytest.mark.parametrize("seed", [1, 5, 11])
def test_features_and_labels_equal_the_reference_on_simulator_worlds(seed: int) -> None:
    sim = frames(world(seed=seed, customers=250, sheets=10))
    day = _day(sim.activity)
    cutoffs = [int(np.quantile(day, q)) for q in (0.3, 0.7)] + [int(day.max()) + 1]
    # Rows in no particular order, as a query without ORDER BY returns them.
    shuffled = sim.activity.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    _assert_same(shuffled, sim.customers, cutoffs)


def test_equal_on_frames_shaped_as_the_loader_and_the_scorer_give_them() -> None:
    sim = frames(world(seed=4, customers=120, sheets=10))
    activity = sim.activity.loc[:, list(ACTIVITY_COLUMNS)]
    profiles = sim.customers.loc[:, list(PROFILE_COLUMNS)]
    cutoff = [int(_day(activity).max()) - 40]
    # The trainer's loader: text columns as pandas' string dtype, dates as datetime64.
    loaded = activity.astype({"statement_id": "str", "customer_id": "str"})
    _assert_same(loaded, profiles.astype({"customer_id": "str"}), cutoff)
    # The scorer: rows from asyncpg records (object columns, Python dates and numbers).
    records = pd.DataFrame(
        [tuple(row) for row in activity.astype(object).itertuples(index=False)],
        columns=list(ACTIVITY_COLUMNS),
    )
    records["statement_date"] = [d.date() for d in activity["statement_date"]]
    records = records.astype({"statement_id": object, "customer_id": object})
    _assert_same(records, profiles.astype({"customer_id": object}), cutoff)


def test_equal_when_nothing_is_given() -> None:
    activity = pd.DataFrame({c: pd.Series([], dtype=object) for c in ACTIVITY_COLUMNS})
    activity["statement_date"] = pd.Series([], dtype="datetime64[s]")
    for c in ("balance", "credit_limit", "payment_amount", "minimum_due"):
        activity[c] = pd.Series([], dtype=np.float64)
    for c in ("purchase_amount", "cash_advance_amount"):
        activity[c] = pd.Series([], dtype=np.float64)
    activity["days_past_due"] = pd.Series([], dtype=np.int64)
    profiles = pd.DataFrame({c: pd.Series([], dtype=object) for c in PROFILE_COLUMNS})
    _assert_same(activity, profiles, [20_000])


STATUSES = ["Employed", " self-employed", "Self_Employed", "part time", "", None, "Astronaut"]


@st.composite
def _statements(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A few customers with statements on few distinct days (many ties), repeated statement
    ids, customers without a profile and profiles given twice."""
    rows = draw(st.integers(min_value=1, max_value=40))
    customers = draw(
        st.lists(st.sampled_from(["c", "b", "ä", "a1", "B", "a"]), min_size=rows, max_size=rows)
    )
    ids = draw(
        st.lists(
            st.sampled_from(["s1", "s2", "s10", "S3", "s4", "é"]), min_size=rows, max_size=rows
        )
    )
    days = draw(st.lists(st.integers(19_000, 19_400), min_size=rows, max_size=rows))
    money = st.floats(0, 5_000, allow_nan=False)
    activity = pd.DataFrame(
        {
            "statement_id": ids,
            "customer_id": customers,
            "statement_date": pd.to_datetime(np.asarray(days), unit="D"),
            "balance": draw(st.lists(money, min_size=rows, max_size=rows)),
            "credit_limit": draw(st.lists(money, min_size=rows, max_size=rows)),
            "payment_amount": draw(st.lists(money, min_size=rows, max_size=rows)),
            "minimum_due": draw(st.lists(money, min_size=rows, max_size=rows)),
            "purchase_amount": draw(st.lists(money, min_size=rows, max_size=rows)),
            "cash_advance_amount": draw(st.lists(money, min_size=rows, max_size=rows)),
            "days_past_due": draw(
                st.lists(st.sampled_from([0, 0, 15, 30, 60, 95]), min_size=rows, max_size=rows)
            ),
        }
    )
    known = draw(st.lists(st.sampled_from(["c", "b", "ä", "a1", "zz"]), max_size=7))
    profiles = pd.DataFrame(
        {
            "customer_id": known,
            "age": draw(st.lists(st.integers(18, 90), min_size=len(known), max_size=len(known))),
            "annual_income": draw(
                st.lists(money | st.just(float("nan")), min_size=len(known), max_size=len(known))
            ),
            "tenure_months": draw(
                st.lists(st.integers(0, 300), min_size=len(known), max_size=len(known))
            ),
            "employment_status": draw(
                st.lists(st.sampled_from(STATUSES), min_size=len(known), max_size=len(known))
            ),
        }
    )
    return activity, profiles


# Each example builds both sides three times (one per horizon) at ~0.25 s; the draws come from
# a few customers, ids and days, so 60 examples already give many ties and repeats.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_statements(), st.integers(19_000, 19_500))
def test_equal_on_generated_statements(
    given_frames: tuple[pd.DataFrame, pd.DataFrame], cutoff_day: int
) -> None:
    activity, profiles = given_frames
    _assert_same(activity, profiles, [cutoff_day])
