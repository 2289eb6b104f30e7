"""Pure trainer decisions: the gate, version ids, customer selection, splits and metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

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


def _candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(6)],
            "included_in_training": [False, True, False, True, True, False],
            "first_seen": pd.to_datetime(
                [
                    "2025-01-05",
                    "2025-01-01",
                    "2025-01-02",
                    "2025-01-03",
                    "2025-01-04",
                    "2025-01-01",
                ],
                utc=True,
            ),
        }
    )


def test_selection_takes_new_customers_first_then_tops_up_with_existing() -> None:
    chosen = select_customers(_candidates(), max_customers=4)
    assert chosen.customer_ids == ("c5", "c2", "c0", "c4")
    assert (chosen.new_selected, chosen.existing_selected, chosen.new_available) == (3, 1, 3)


def test_selection_caps_new_customers_and_zero_means_all() -> None:
    assert select_customers(_candidates(), max_customers=2).customer_ids == ("c5", "c2")
    everyone = select_customers(_candidates(), max_customers=0)
    assert sorted(everyone.customer_ids) == [f"c{i}" for i in range(6)]
    assert everyone.customer_ids[:3] == ("c5", "c2", "c0")


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
