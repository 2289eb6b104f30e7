"""The shared minimum data: the gaps and the training part the policy computes from per-day
counts are the trainer's (trainer.evaluation.time_split on the rows themselves)."""

from __future__ import annotations

import numpy as np
import pytest

from schemas.base import ModelFamily
from schemas.minimums import DataCounts, DataMinimums, data_gaps, training_part
from trainer.evaluation import time_split

MINIMUMS = DataMinimums()


def _delinquency(labelled: int, delinquent: int, train: int, train_delinquent: int) -> DataCounts:
    return DataCounts(
        labelled_observations=labelled,
        delinquent_observations=delinquent,
        train_labelled_observations=train,
        train_delinquent_observations=train_delinquent,
    )


@pytest.mark.parametrize("seed", range(40))
def test_the_training_part_from_per_day_counts_is_the_time_split_of_the_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    days = np.sort(rng.integers(20_000, 20_000 + int(rng.integers(1, 600)), size=n))
    bad = rng.random(n) < 0.2
    fraction = float(rng.choice([0.1, 0.2, 0.25, 0.5]))
    embargo = int(rng.choice([0, 30, 92]))
    split = time_split(days.astype(np.int64), fraction, embargo=embargo)
    unique, first = np.unique(days, return_index=True)
    counts = np.diff(np.append(first, n))
    per_day_bad = np.add.reduceat(bad.astype(int), first) if n else np.array([], int)
    got = training_part(
        unique.tolist(),
        counts.tolist(),
        per_day_bad.tolist(),
        holdout_fraction=fraction,
        embargo_days=embargo,
    )
    assert got == (len(split.train), int(bad[split.train].sum()))


@pytest.mark.parametrize(
    ("counts", "gaps"),
    [
        (_delinquency(500, 50, 300, 30), []),
        (
            _delinquency(99, 50, 60, 30),
            [
                "at least 100 labelled observations (statements whose 92-day horizon ended by "
                "the cutoff); found 99"
            ],
        ),
        (
            _delinquency(500, 9, 300, 5),
            ["at least 10 delinquent and 1 sound observation; found 9 delinquent of 500"],
        ),
        (
            _delinquency(500, 50, 0, 0),
            [
                "at least 10 delinquent and 1 sound observation before the holdout (the latest "
                "20% of observations and the 92 days before it); found 0 delinquent of 0"
            ],
        ),
        (
            _delinquency(500, 50, 300, 9),
            [
                "at least 10 delinquent and 1 sound observation before the holdout (the latest "
                "20% of observations and the 92 days before it); found 9 delinquent of 300"
            ],
        ),
        (
            _delinquency(500, 50, 40, 40),
            [
                "at least 10 delinquent and 1 sound observation before the holdout "
                "(the latest 20% of observations and the 92 days before "
                "it); found 40 delinquent of 40"
            ],
        ),
    ],
    ids=[
        "enough",
        "few labelled",
        "few delinquent",
        "no training part",
        "few delinquent to train on",
        "one class to train on",
    ],
)
def test_delinquency_gaps(counts: DataCounts, gaps: list[str]) -> None:
    assert data_gaps(ModelFamily.DELINQUENCY, counts, MINIMUMS) == gaps


def test_a_forced_request_needs_only_something_of_each_class() -> None:
    forced = DataMinimums.forced()
    assert data_gaps(ModelFamily.DELINQUENCY, _delinquency(2, 1, 2, 1), forced) == []
    assert data_gaps(ModelFamily.EXPENSE_FRAUD, DataCounts(expenses=2), forced) == []
    assert data_gaps(ModelFamily.EXPENSE_FRAUD, DataCounts(expenses=1), forced)
