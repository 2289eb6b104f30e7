"""The worker's loader rebuilds a version's forests on the event loop in small steps: other
callbacks run between the steps, and the model it returns scores as the trainer's does."""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
import numpy as np
import pytest

from schemas import artifacts
from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST, BundleDecoding
from schemas.forests import ArrayForest
from streams import models
from streams.models import ModelHolder, ModelLoader, build_model
from streams.scoring_frames import LoadedModel
from streams.store.models import StoredVersion
from tests.unit.trainer.factories import frames, world
from trainer.families import expense_set, fit
from trainer.settings import TrainerSettings

SETTINGS = TrainerSettings(training_threads=1, forest_trees=40)


async def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the loader is handed a stored version; it reads no registry")


def test_forests_are_rebuilt_between_the_loops_other_callbacks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = frames(world(seed=4, customers=100, sheets=120, label_fraction=0.5))
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    bundle = fit(data, SETTINGS)
    stored_artifacts = [
        a for role, m in sorted(bundle.models.items()) for a in artifacts.dump_all(role, m)
    ]
    stored = StoredVersion(
        family=bundle.family,
        version="v1",
        params=bundle.params,
        request_id=None,
        artifacts=[(a.role, a.format.value, a.sha256, a.content) for a in stored_artifacts],
        digests={},
    )
    # One tree per step; note how far another task got at each step.
    monkeypatch.setattr(models, "STEP_S", 0.0)
    ticks = 0
    seen_at_steps: list[int] = []
    build = BundleDecoding.build

    def counted(self: BundleDecoding, trees: int | None = None) -> bool:
        seen_at_steps.append(ticks)
        return build(self, trees)

    monkeypatch.setattr(BundleDecoding, "build", counted)

    async def load_beside_a_ticker() -> LoadedModel:
        nonlocal ticks
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        model = await ModelLoader(ModelHolder(), _no_pool).build(stored)
        done.set()
        await task
        return model

    model = asyncio.run(load_beside_a_ticker())
    # 80 trees (the first of each forest rebuilt while reading it): one step each for the rest,
    # and the other task ran between every two.
    assert len(seen_at_steps) == 2 * SETTINGS.forest_trees - 2
    assert all(b > a for a, b in itertools.pairwise(seen_at_steps))
    assert set(model.bundle.models) == {ISOLATION_FOREST, RANDOM_FOREST}
    assert all(isinstance(m, ArrayForest) for m in model.bundle.models.values())

    rows = data.features[data.holdout_rows]
    ours = model.bundle.score(rows)
    theirs = build_model(stored, prefer_fast=False).bundle.score(rows)
    np.testing.assert_allclose(ours.score, theirs.score, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.flagged, theirs.flagged)
    np.testing.assert_array_equal(ours.anomaly_flagged, theirs.anomaly_flagged)
