"""Realised quality: rank AUC (checked against scikit-learn), precision, recall, late labels."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from schemas.features import ACTIVITY_COLUMNS
from schemas.quality import known_delinquency, rank_auc, realised_quality

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("rows", [2, 10, 500])
def test_rank_auc_matches_scikit_learn_with_ties(rows: int) -> None:
    truth = np.arange(rows) % 2 == 0
    RNG.shuffle(truth)
    score = np.round(RNG.random(rows) + truth * 0.2, 1)  # rounded: many ties
    assert rank_auc(truth, score) == pytest.approx(roc_auc_score(truth, score))


def test_rank_auc_extremes_and_one_class() -> None:
    truth = np.array([False, False, True, True])
    assert rank_auc(truth, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert rank_auc(truth, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert rank_auc(truth, np.full(4, 0.5)) == 0.5
    assert rank_auc(np.ones(4, dtype=bool), np.arange(4.0)) is None
    with pytest.raises(ValueError, match="finite"):
        rank_auc(truth, np.array([0.1, np.nan, 0.2, 0.3]))


def test_realised_quality_at_the_flags() -> None:
    truth = np.array([True, True, False, False, False])
    score = np.array([0.9, 0.4, 0.6, np.nan, 0.1])
    flagged = np.array([True, False, True, False, False])
    quality = realised_quality(truth, score, flagged)
    assert (quality.samples, quality.positives) == (5, 2)
    assert quality.precision == 0.5
    assert quality.recall == 0.5
    assert quality.auc == pytest.approx(roc_auc_score([1, 1, 0, 0], [0.9, 0.4, 0.6, 0.1]))
    assert quality.both_classes
    nothing = realised_quality(np.zeros(3, bool), np.zeros(3), np.zeros(3, bool))
    assert (nothing.precision, nothing.recall, nothing.auc, nothing.both_classes) == (
        None,
        None,
        None,
        False,
    )


def _statements(customer: str, start: date, dpd: list[int]) -> list[tuple[object, ...]]:
    return [
        (
            f"{customer}-{i}",
            customer,
            start + timedelta(days=30 * i),
            1000.0,
            2000.0,
            50.0,
            25.0,
            100.0,
            0.0,
            d,
        )
        for i, d in enumerate(dpd)
    ]


def test_known_delinquency_uses_the_trainers_rule_in_any_row_order() -> None:
    start = date(2026, 1, 1)
    rows = _statements("bad", start, [0, 0, 45, 60, 0]) + _statements("good", start, [0] * 5)
    frame = pd.DataFrame(rows[::-1], columns=list(ACTIVITY_COLUMNS))  # shuffled order
    cutoff = (np.datetime64(start + timedelta(days=200), "D") - np.datetime64(0, "D")).astype(int)
    labels = known_delinquency(frame, cutoff_day=int(cutoff), horizon_days=92)
    # Statements 0 and 1 have a horizon ending by day 200 and observed through. bad-2's ends by
    # then too, but the statements stop before its end: unknown, delinquent or not (an outcome
    # is known only for a customer observed through the whole horizon).
    assert labels.to_dict() == {
        "bad-0": True,
        "bad-1": True,
        "good-0": False,
        "good-1": False,
    }
