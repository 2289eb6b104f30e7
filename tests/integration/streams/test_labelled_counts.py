"""The policy's SQL count of labelled delinquency observations equals the trainer's pandas labels
(schemas.features.delinquency_labels) on the same stored data, at several cutoffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from schemas.features import delinquency_labels
from streams.store.counts import labelled_observations
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames, world

pytestmark = pytest.mark.integration

HORIZON, THRESHOLD = 92, 30


def _pandas_counts(sim: Frames, cutoff: datetime) -> tuple[int, int]:
    """What the trainer labels at `cutoff`: statements and customers stored by then."""
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
    return int(labels.known.sum()), int(labels.delinquent[labels.known].sum())


async def test_sql_labelled_counts_equal_the_pandas_labels(fresh_database_url: str) -> None:
    sim = frames(world(seed=11, customers=300, sheets=5))
    await seed(fresh_database_url, sim)
    end = datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)
    first = sim.activity["occurred_at"].min().to_pydatetime()
    cutoffs = [first + (end - first) * f for f in (0.3, 0.55, 0.8)] + [end + timedelta(days=1)]
    conn = await asyncpg.connect(fresh_database_url, timeout=10)
    try:
        seen: list[tuple[int, int]] = []
        for cutoff in cutoffs:
            expected = _pandas_counts(sim, cutoff)
            counted = await labelled_observations(conn, cutoff, HORIZON, THRESHOLD)
            assert counted == expected, cutoff
            seen.append(counted)
    finally:
        await conn.close()
    labelled = np.array([s[0] for s in seen])
    # The comparison means something: labels exist, of both classes, and grow with the cutoff.
    assert labelled[-1] > labelled[0] > 0
    assert 0 < seen[-1][1] < seen[-1][0]
