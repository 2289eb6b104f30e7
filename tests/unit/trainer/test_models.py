"""Families fit and score; artifacts round-trip without pickle and refuse tampered bytes."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import artifacts
from schemas.base import ModelFamily
from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST
from tests.unit.trainer.factories import frames, world
from trainer.errors import ArtifactIntegrityError, InsufficientData
from trainer.families import (
    delinquency_set,
    evaluate,
    expense_set,
    fit,
)
from trainer.settings import TrainerSettings

SETTINGS = TrainerSettings(training_threads=1, forest_trees=30)


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    return frames(world(seed=9, customers=300, sheets=150, label_fraction=0.5))


def _cutoff_day(sim) -> int:  # type: ignore[no-untyped-def]
    return int(sim.end_us // 86_400_000_000)


def test_delinquency_model_learns_and_round_trips(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    bundle = fit(data, SETTINGS)
    metrics = evaluate(bundle, data)
    assert metrics["auc"] > 0.8
    stored = [artifacts.dump(role, model) for role, model in bundle.models.items()]
    assert [a.format for a in stored] == [artifacts.ArtifactFormat.XGBOOST_UBJ]
    loaded = artifacts.load(stored[0].format, stored[0].content, stored[0].sha256)
    x = data.features[data.holdout_rows]
    import xgboost as xgb

    assert isinstance(loaded, xgb.Booster)
    np.testing.assert_allclose(loaded.predict(xgb.DMatrix(x)), bundle.score(x).score, rtol=1e-6)


def test_expense_models_and_skops_round_trip(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    bundle = fit(data, SETTINGS)
    assert set(bundle.models) == {ISOLATION_FOREST, RANDOM_FOREST}
    metrics = evaluate(bundle, data)
    assert 0.0 < metrics["anomaly_rate"] < 0.5
    assert metrics["auc"] > 0.7
    for role, model in bundle.models.items():
        stored = artifacts.dump(role, model)
        assert stored.format is artifacts.ArtifactFormat.SKOPS
        assert b"pickle" not in stored.content[:64]
        back = artifacts.load(stored.format, stored.content, stored.sha256)
        assert type(back) is type(model)


def test_random_forest_is_skipped_without_enough_labels(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels.head(10), settings=SETTINGS)
    bundle = fit(data, SETTINGS)
    assert set(bundle.models) == {ISOLATION_FOREST}
    assert "random forest skipped" in bundle.notes[0]
    assert "labelled expenses" in bundle.notes[0]


def test_minimum_data_is_explained(sim) -> None:  # type: ignore[no-untyped-def]
    few = sim.expenses.head(30)
    with pytest.raises(InsufficientData, match="at least 50 expenses; found 30"):
        expense_set(few, sim.labels, settings=SETTINGS)
    one_customer = sim.activity.head(12)
    with pytest.raises(InsufficientData, match="labelled observations"):
        delinquency_set(one_customer, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS)


def test_tampered_or_untrusted_artifacts_are_refused(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    model = fit(data, SETTINGS).models[ISOLATION_FOREST]
    stored = artifacts.dump(ISOLATION_FOREST, model)
    tampered = stored.content[:-1] + bytes([stored.content[-1] ^ 1])
    with pytest.raises(ArtifactIntegrityError, match="digest mismatch"):
        artifacts.load(stored.format, tampered, stored.sha256)
    with pytest.raises(ArtifactIntegrityError):
        artifacts.dump("thing", object())


def test_family_of_a_bundle(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    assert fit(data, SETTINGS).family is ModelFamily.DELINQUENCY
