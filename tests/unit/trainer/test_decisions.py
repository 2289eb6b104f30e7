"""Pure trainer decisions: the gate, version ids, customer selection, splits and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from schemas.minimums import DataMinimums
from trainer.evaluation import anomaly_rate, binary_metrics, time_split
from trainer.gate import decide
from trainer.selection import select_customers
from trainer.versions import base_version, unique_version


def test_gate_promotes_without_a_champion() -> None:
    decision = decide({"auc": 0.7}, None, tolerance=0.01)
    assert decision.promote
    assert not decision.overridden


def test_gate_promotes_within_tolerance_and_rejects_beyond_it() -> None:
    assert decide({"auc": 0.895}, {"auc": 0.9}, tolerance=0.01).promote
    rejected = decide({"auc": 0.85}, {"auc": 0.9}, tolerance=0.01, champion_version="v1")
    assert not rejected.promote
    assert "worse than v1's 0.9000" in rejected.reason


def test_a_forced_request_overrides_the_gate_and_says_so() -> None:
    forced = decide({"auc": 0.5}, {"auc": 0.9}, tolerance=0.01, force=True)
    assert forced.promote
    assert forced.overridden
    assert forced.reason.startswith("forced")
    not_needed = decide({"auc": 0.95}, {"auc": 0.9}, tolerance=0.01, force=True)
    assert not not_needed.overridden


def test_gate_without_a_comparable_metric() -> None:
    assert decide({"auc": 0.8}, {}, tolerance=0.0).promote
    assert not decide({}, {"auc": 0.8}, tolerance=0.0).promote


def test_version_ids_follow_the_seed_and_are_unique() -> None:
    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert base_version(at) == "auto_retrain_20260304_050607"
    local = at.astimezone(timezone(timedelta(hours=2)))
    assert base_version(local) == "auto_retrain_20260304_050607"
    taken = {"auto_retrain_20260304_050607", "auto_retrain_20260304_050607_2"}
    assert unique_version(at, taken) == "auto_retrain_20260304_050607_3"
    assert unique_version(at, set()) == "auto_retrain_20260304_050607"


def _candidates(new: int = 6, existing: int = 6) -> pd.DataFrame:
    n = new + existing
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:02d}" for i in range(n)],
            "included_in_training": [i >= new for i in range(n)],
        }
    )


def _observations(candidates: pd.DataFrame, per_customer: int) -> pd.DataFrame:
    """`per_customer` labelled observations a month apart over two years, every 4th delinquent."""
    ids = candidates["customer_id"].repeat(per_customer).to_numpy()
    step = np.tile(np.arange(per_customer), len(candidates))
    return pd.DataFrame(
        {
            "customer_id": ids,
            "day": 20_000 + step * (730 // per_customer),
            "labelled": 1,
            "delinquent": (step % 4 == 0).astype(int),
        }
    )


SEED = "2026-03-04T05:06:07+00:00"


def test_a_capped_selection_mixes_new_and_existing_customers_half_and_half() -> None:
    chosen = select_customers(_candidates(), max_customers=4, seed=SEED)
    assert (chosen.new_selected, chosen.existing_selected, chosen.new_available) == (2, 2, 6)
    odd = select_customers(_candidates(), max_customers=5, seed=SEED)
    assert (odd.new_selected, odd.existing_selected) == (3, 2)


@pytest.mark.parametrize(
    ("new", "existing", "cap", "expected"),
    [
        (1, 6, 4, (1, 3)),  # few new: existing ones fill the cap
        (6, 1, 4, (3, 1)),  # few existing: new ones fill the cap
        (0, 6, 4, (0, 4)),
        (6, 0, 4, (4, 0)),
        (2, 2, 10, (2, 2)),  # a cap above the candidates takes everyone
        (3, 3, 0, (3, 3)),  # 0 = all
    ],
)
def test_a_group_that_is_short_leaves_its_share_to_the_other(
    new: int, existing: int, cap: int, expected: tuple[int, int]
) -> None:
    chosen = select_customers(_candidates(new, existing), max_customers=cap, seed=SEED)
    assert (chosen.new_selected, chosen.existing_selected) == expected
    assert len(set(chosen.customer_ids)) == sum(expected)


def test_the_same_cutoff_picks_the_same_customers_and_another_cutoff_others() -> None:
    candidates = _candidates(40, 40)
    first = select_customers(candidates, max_customers=10, seed=SEED)
    again = select_customers(candidates.sample(frac=1.0, random_state=3), 10, seed=SEED)
    assert again.customer_ids == first.customer_ids
    later = select_customers(candidates, max_customers=10, seed="2026-03-04T05:16:07+00:00")
    assert set(later.customer_ids) != set(first.customer_ids)


def test_a_capped_selection_is_topped_up_to_the_minimum_labelled_observations() -> None:
    minimums = DataMinimums(min_observations=100, min_positive_observations=10)
    candidates = _candidates(20, 20)
    # 8 labelled (2 delinquent) per customer: 13 customers reach 104 labelled, 26 delinquent.
    chosen = select_customers(
        candidates,
        max_customers=4,
        seed=SEED,
        observations=_observations(candidates, 8),
        minimums=minimums,
    )
    assert len(chosen.customer_ids) == 13
    assert chosen.topped_up == 9
    enough = select_customers(
        candidates,
        max_customers=4,
        seed=SEED,
        observations=_observations(candidates, 40),
        minimums=minimums,
    )
    assert (len(enough.customer_ids), enough.topped_up) == (4, 0)


def test_a_top_up_that_cannot_reach_the_minimum_takes_every_candidate() -> None:
    minimums = DataMinimums(min_observations=1000, min_positive_observations=10)
    candidates = _candidates(5, 5)
    chosen = select_customers(
        candidates,
        max_customers=2,
        seed=SEED,
        observations=_observations(candidates, 8),
        minimums=minimums,
    )
    assert len(chosen.customer_ids) == 10
    assert chosen.topped_up == 8


def test_time_split_holds_out_the_latest_rows_and_embargoes_the_ones_before() -> None:
    times = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 10], dtype=np.int64)
    split = time_split(times, holdout_fraction=0.2)
    assert sorted(times[split.holdout].tolist()) == [9, 10]
    assert sorted(times[split.train].tolist()) == [1, 2, 3, 4, 5, 6, 7, 8]
    embargoed = time_split(times, holdout_fraction=0.2, embargo=3)
    assert sorted(times[embargoed.train].tolist()) == [1, 2, 3, 4, 5]
    assert times[split.train].max() < times[split.holdout].min()


def test_time_split_keeps_ties_on_one_side() -> None:
    times = np.array([1, 2, 3, 3, 3, 3], dtype=np.int64)
    split = time_split(times, holdout_fraction=0.2)
    assert set(times[split.holdout].tolist()) == {3}
    assert set(times[split.train].tolist()) == {1, 2}


def test_binary_metrics() -> None:
    truth = np.array([True, True, False, False, False])
    score = np.array([0.9, 0.4, 0.5, 0.1, 0.2])
    flagged = score >= 0.45
    m = binary_metrics(truth, score, flagged)
    assert m["auc"] == pytest.approx(5 / 6)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["holdout_positive_rate"] == pytest.approx(0.4)
    one_class = binary_metrics(np.zeros(3, dtype=bool), np.ones(3), np.zeros(3, dtype=bool))
    assert "auc" not in one_class
    assert anomaly_rate(np.array([True, False, False, False])) == 0.25
    assert anomaly_rate(np.array([], dtype=bool)) == 0.0
