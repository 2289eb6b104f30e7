"""The policy's SQL count of labelled delinquency observations equals the trainer's pandas labels
(schemas.features.delinquency_labels) on the same stored data, at several cutoffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.features import delinquency_features, delinquency_labels
from schemas.minimums import DataCounts, DataMinimums
from streams.store.counts import labelled_observations
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames, world
from trainer.evaluation import time_split

pytestmark = pytest.mark.integration

HORIZON, THRESHOLD = 92, 30
MINIMUMS = DataMinimums(horizon_days=HORIZON, delinquent_days_past_due=THRESHOLD)


def _pandas_counts(sim: Frames, cutoff: datetime) -> DataCounts:
    """What the trainer labels and splits at `cutoff`: statements and customers stored by then."""
    customers = sim.customers.loc[sim.customers["created_at"] <= cutoff, "customer_id"]
    activity = sim.activity.loc[
        (sim.activity["occurred_at"] <= cutoff)
        & (sim.activity["statement_date"].dt.date <= cutoff.date())
        & sim.activity["customer_id"].isin(customers)
    ]
    cutoff_day = (cutoff.date() - datetime(1970, 1, 1).date()).days
    labels = delinquency_labels(
        activity, cutoff_day=cutoff_day, horizon_days=HORIZON, delinquent_days_past_due=THRESHOLD
    )
    days = delinquency_features(activity, sim.customers)["statement_day"].to_numpy()[labels.known]
    delinquent = labels.delinquent[labels.known]
    split = time_split(days, MINIMUMS.holdout_fraction, embargo=MINIMUMS.horizon_days)
    return DataCounts(
        labelled_observations=int(labels.known.sum()),
        delinquent_observations=int(delinquent.sum()),
        train_labelled_observations=len(split.train),
        train_delinquent_observations=int(delinquent[split.train].sum()),
    )


async def test_sql_labelled_counts_equal_the_pandas_labels(fresh_database_url: str) -> None:
    sim = frames(world(seed=11, customers=300, sheets=5))
    await seed(fresh_database_url, sim)
    end = datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)
    first = sim.activity["occurred_at"].min().to_pydatetime()
    cutoffs = [first + (end - first) * f for f in (0.3, 0.55, 0.8)] + [end + timedelta(days=1)]
    conn = await asyncpg.connect(fresh_database_url, timeout=10)
    try:
        seen: list[DataCounts] = []
        for cutoff in cutoffs:
            expected = _pandas_counts(sim, cutoff)
            counted = await labelled_observations(conn, cutoff, MINIMUMS)
            assert counted == expected, cutoff
            seen.append(counted)
    finally:
        await conn.close()
    # The comparison means something: labels exist, of both classes, and grow with the cutoff;
    # the training part is a real part.
    assert seen[-1].labelled_observations > seen[0].labelled_observations > 0
    assert 0 < seen[-1].delinquent_observations < seen[-1].labelled_observations
    assert 0 < seen[-1].train_labelled_observations < seen[-1].labelled_observations
