"""The cluster path builds a customer-hash range's rows apart from the others and merges them:
the merge equals the rows one frame of every customer gives (same order, same values), however
the customers are split, so the two paths train on the same set."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import numpy as np
import pytest

from schemas.features import PROFILE_COLUMNS
from tests.unit.trainer.factories import frames, world
from trainer import families
from trainer.datasets import day_number
from trainer.families import TrainingSet
from trainer.settings import TrainerSettings

SETTINGS = TrainerSettings()


def _training_set(rows: families.DelinquencyRows) -> TrainingSet:
    return families.delinquency_training_set(rows, settings=SETTINGS, minimums=False)


@pytest.mark.parametrize("parts", [1, 3, 8])
def test_rows_built_per_customer_range_merge_into_the_rows_of_one_frame(parts: int) -> None:
    sim = frames(world(seed=13, customers=240, sheets=5))
    activity, profiles = sim.activity, sim.customers.loc[:, list(PROFILE_COLUMNS)]
    cutoff_day = day_number(datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC))
    whole = families.delinquency_rows(activity, profiles, cutoff_day=cutoff_day, settings=SETTINGS)

    def part_of(customer_ids: object) -> np.ndarray:
        ids = np.asarray(customer_ids, dtype=object)
        return np.array([zlib.crc32(str(c).encode()) % parts for c in ids])

    built = []
    for part in range(parts):
        mine_a = activity.loc[part_of(activity["customer_id"]) == part].reset_index(drop=True)
        mine_p = profiles.loc[part_of(profiles["customer_id"]) == part].reset_index(drop=True)
        built.append(
            families.delinquency_rows(mine_a, mine_p, cutoff_day=cutoff_day, settings=SETTINGS)
        )
    # The ranges arrive in any order.
    merged = families.merged_rows(built[::-1])

    np.testing.assert_array_equal(merged.matrix, whole.matrix)
    np.testing.assert_array_equal(merged.target, whole.target)
    np.testing.assert_array_equal(merged.days, whole.days)
    np.testing.assert_array_equal(merged.customer_ids, whole.customer_ids)
    assert merged.statements == whole.statements == len(activity)
    a, b = _training_set(whole), _training_set(merged)
    np.testing.assert_array_equal(b.groups, a.groups)
    np.testing.assert_array_equal(b.train_rows, a.train_rows)
    np.testing.assert_array_equal(b.holdout_rows, a.holdout_rows)
    assert dict(b.summary) == dict(a.summary)
