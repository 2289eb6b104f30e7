"""Customer selection and the minimum data on the real PostgreSQL: the policy's count and the
trainer's check agree, a capped set is topped up to the minimum, and a rerun at a past cutoff
selects the same customers whatever was trained since."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.base import ModelFamily
from schemas.minimums import data_gaps
from schemas.training_outcome import OutcomeStatus
from streams.store.counts import labelled_observations
from tests.integration.trainer.kafka_helpers import request
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import frames, world
from trainer import datasets, outcomes
from trainer.service import Trainer
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(fresh_database_url: str) -> tuple[str, datetime, datetime]:
    """A seeded database, the first statement's time and the end of the simulated world."""
    sim = frames(world(seed=17, customers=300, sheets=5))
    await seed(fresh_database_url, sim)
    first = sim.activity["occurred_at"].min().to_pydatetime()
    return fresh_database_url, first, datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)


async def _policy_gaps(conn: asyncpg.Connection, at: datetime, s: TrainerSettings) -> list[str]:
    """What the worker's policy finds missing at `at` (its count, the shared definition)."""
    counts = await labelled_observations(conn, at, s.minimums())
    return data_gaps(ModelFamily.DELINQUENCY, counts, s.minimums())


async def test_a_request_the_policy_sends_is_not_skipped_for_minimum_data(
    seeded: tuple[str, datetime, datetime],
) -> None:
    url, first, _ = seeded
    # A tiny cap: without the top-up, 5 customers never hold 100 labelled observations.
    settings = TrainerSettings(database_url=url, max_customers=5, training_threads=1)  # type: ignore[arg-type]
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        # The first day the policy would send a request, and the day before.
        at = first + timedelta(days=settings.delinquency_horizon_days)
        async with pool.acquire() as conn:
            while await _policy_gaps(conn, at, settings):
                at += timedelta(days=1)
            before = await _policy_gaps(conn, at - timedelta(days=1), settings)
        assert before, "the policy's minimum is crossed on a day the test can find"
        with ThreadPoolExecutor(max_workers=1) as executor:
            trainer = Trainer(settings, pool, executor)
            sent = await trainer.handle(request(ModelFamily.DELINQUENCY, at))
            held = await trainer.handle(request(ModelFamily.DELINQUENCY, at - timedelta(days=1)))
    finally:
        await pool.close()
    assert sent.status is not OutcomeStatus.SKIPPED, sent.outcome.reason
    assert sent.detail is not None
    assert sent.detail.selection is not None
    assert sent.detail.selection.topped_up > 0
    assert sent.detail.training_set.summary["observations"] >= settings.min_observations
    # The day before, the trainer skips with the policy's very words.
    assert held.status is OutcomeStatus.SKIPPED
    assert held.outcome.reason == "insufficient data: " + "; ".join(before)


async def test_a_rerun_at_a_past_cutoff_selects_the_same_customers(
    seeded: tuple[str, datetime, datetime],
) -> None:
    url, _, end = seeded
    settings = TrainerSettings(database_url=url, max_customers=40)  # type: ignore[arg-type]
    early, late = end - timedelta(days=60), end
    source = datasets.Source(url)
    conn = await asyncpg.connect(url)
    try:
        at_early = await datasets.load_delinquency(source, early, settings)
        again = await datasets.load_delinquency(source, early, settings)
        assert again.selection == at_early.selection
        assert at_early.selection.new_selected == len(at_early.selection.customer_ids)
        # A later request (e.g. after the first was rejected) picks other customers.
        other = await datasets.load_delinquency(source, early + timedelta(minutes=1), settings)
        assert set(other.selection.customer_ids) != set(at_early.selection.customer_ids)

        # The early set is promoted a day after its cutoff.
        promoted_at = early + timedelta(days=1)
        await outcomes.mark_customers_trained(conn, at_early.selection.customer_ids, promoted_at)
        rerun = await datasets.load_delinquency(source, early, settings)
        assert rerun.selection == at_early.selection
        assert rerun.activity.equals(at_early.activity)
        # At a later cutoff those customers are existing ones: the cap mixes both groups.
        after = await datasets.load_delinquency(source, late, settings)
        assert after.selection.existing_selected == 20
        assert after.selection.new_selected == 20
        assert set(after.selection.customer_ids) & set(at_early.selection.customer_ids)
        # A second promotion later does not move when they were first trained.
        await outcomes.mark_customers_trained(conn, at_early.selection.customer_ids, late)
        assert (await datasets.load_delinquency(source, early, settings)).selection == (
            at_early.selection
        )
    finally:
        await conn.close()
