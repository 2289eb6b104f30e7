"""What is promoted has seen its whole window: the gate judges the fit made before the holdout,
and the version stores the same configuration refitted on every row up to the cutoff."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import numpy as np
import pytest

from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus
from tests.conftest import Stack, TopicFactory
from tests.integration.trainer.kafka_helpers import request, settings_for
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import frames, world
from trainer import families, registry
from trainer.bootstrap import build

pytestmark = pytest.mark.integration


async def test_a_promoted_model_was_fitted_on_the_newest_labelled_rows_of_its_window(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    world_frames = frames(world(seed=9, customers=300, sheets=20))
    await seed(fresh_database_url, world_frames)
    settings = settings_for(
        stack, fresh_database_url, make_topic, training_threads=1, max_customers=0
    )
    cutoff = datetime.fromtimestamp(world_frames.end_us / 1_000_000, tz=UTC)
    app = await build(settings)
    try:
        result = await app.trainer.handle(request(ModelFamily.DELINQUENCY, cutoff))
    finally:
        await app.close()
    assert result.status is OutcomeStatus.PROMOTED, result.outcome.reason
    assert result.detail is not None
    data = result.detail.training_set
    holdout = data.holdout_rows
    newest = data.times.max()
    assert newest >= data.split.holdout_start  # the newest labelled rows are in the holdout

    conn = await asyncpg.connect(fresh_database_url)
    try:
        record = await registry.champion(conn, ModelFamily.DELINQUENCY)
        assert record is not None
        stored = await registry.load_bundle(conn, record)
        logged = await conn.fetchval(
            "SELECT samples_trained FROM model_retraining_log WHERE model_version = $1",
            record.version,
        )
    finally:
        await conn.close()

    # The version's data window and sample count are the whole window, holdout included.
    everything = len(data.labels)
    assert record.samples == everything == logged
    assert record.params["fitted_rows"] == everything
    assert record.metrics["refit_samples"] == everything
    assert record.metrics["evaluated_fitted_rows"] == len(data.train_rows) < everything
    assert stored.fitted_until == data.time_of(int(newest))
    assert record.metrics["fitted_until_epoch_s"] == data.time_of(int(newest)).timestamp()
    assert record.data_start == data.time_of(int(data.times.min()))
    # ... while its recorded holdout figures are those of the fit the gate judged.
    evaluated = families.fit(data, settings)
    assert record.metrics["auc"] == pytest.approx(families.evaluate(evaluated, data)["auc"])
    assert stored.threshold == evaluated.threshold
    assert record.metrics["threshold"] == evaluated.threshold

    # Its scores on the newest labelled rows are those only fitting them explains: the same
    # configuration fitted on everything, not the fit that never saw the holdout.
    x = data.features[holdout]
    refitted = families.refit(data, settings, evaluated)
    np.testing.assert_allclose(stored.score(x).score, refitted.score(x).score, rtol=1e-6)
    assert not np.allclose(stored.score(x).score, evaluated.score(x).score, rtol=1e-3)
    # Fitting the holdout's labels pulls its delinquent rows up and its sound rows down.
    truth = data.labels[holdout] >= 0.5
    gain = stored.score(x).score - evaluated.score(x).score
    assert gain[truth].mean() > gain[~truth].mean()
