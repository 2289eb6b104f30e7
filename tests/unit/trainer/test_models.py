"""Families fit and score; artifacts round-trip without pickle and refuse tampered bytes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from schemas import artifacts
from schemas.base import ModelFamily
from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST
from tests.unit.trainer.factories import frames, world
from trainer.errors import ArtifactIntegrityError, InsufficientData
from trainer.evaluation import population_stability
from trainer.families import (
    champion_evidence,
    delinquency_set,
    detector_contamination,
    detector_rows,
    evaluate,
    expense_set,
    fit,
    refit,
    validation_split,
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


def test_the_detector_does_not_learn_known_fraud(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    rows = data.train_rows
    learnt = detector_rows(data, rows)
    fraud = rows[data.labels[rows] >= 0.5]
    assert len(fraud) > 0
    assert not set(fraud.tolist()) & set(learnt.tolist())
    # Unlabelled and sound lines stay.
    assert set(learnt.tolist()) == set(rows.tolist()) - set(fraud.tolist())


def test_detector_contamination_follows_the_fraud_label_rate(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    rows = data.train_rows
    labelled = data.labelled(rows)
    rate = float(np.mean(data.labels[labelled] >= 0.5))
    assert detector_contamination(data, rows, SETTINGS)[0] == pytest.approx(
        min(max(rate, 0.005), 0.5)
    )
    off = SETTINGS.model_copy(update={"contamination_follows_labels": False})
    assert detector_contamination(data, rows, off)[0] == off.isolation_contamination
    few = SETTINGS.model_copy(update={"min_labelled_expenses": len(labelled) + 1})
    assert detector_contamination(data, rows, few)[0] == few.isolation_contamination
    # Every label fraud: clipped, never 1.
    all_fraud = replace(data, labels=np.where(np.isnan(data.labels), np.nan, 1.0))
    assert detector_contamination(all_fraud, rows, SETTINGS)[0] == 0.5


def test_the_random_forest_flags_and_the_threshold_is_chosen_on_data(sim) -> None:  # type: ignore[no-untyped-def]
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    bundle = fit(data, SETTINGS)
    assert bundle.flagged_by == "random_forest"
    assert bundle.params["flagged_by"] == "random_forest"
    assert bundle.threshold_source.startswith("max_f1 on ")
    validation = validation_split(data, SETTINGS.validation_fraction)
    assert bundle.fitted_rows == len(data.train_rows)
    assert not set(validation.holdout.tolist()) & set(validation.train.tolist())
    assert set(validation.holdout.tolist()) <= set(data.train_rows.tolist())
    assert data.times[validation.train].max() < data.times[validation.holdout].min()
    detector_only = fit(expense_set(sim.expenses, sim.labels.head(10), settings=SETTINGS), SETTINGS)
    assert detector_only.flagged_by == "isolation_forest"


def test_delinquency_validation_slice_is_embargoed(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    validation = validation_split(data, SETTINGS.validation_fraction)
    gap = data.times[validation.holdout].min() - data.times[validation.train].max()
    assert gap > SETTINGS.delinquency_horizon_days
    bundle = fit(data, SETTINGS)
    assert bundle.flagged_by == "xgboost"
    assert bundle.fitted_rows == len(data.train_rows)
    metrics = evaluate(bundle, data)
    assert 0.0 <= metrics["past_due_rule_f1"] <= 1.0


def test_a_validation_slice_without_a_class_falls_back_to_the_decision_threshold(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    validation = validation_split(data, SETTINGS.validation_fraction)
    labels = data.labels.copy()
    labels[validation.holdout] = 0.0
    bundle = fit(replace(data, labels=labels), SETTINGS)
    assert bundle.threshold == SETTINGS.decision_threshold
    assert bundle.threshold_source == "decision_threshold"
    assert any("lacks a class" in note for note in bundle.notes)


def test_population_stability() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert population_stability(reference, reference) == pytest.approx(0.0)
    assert population_stability(reference, rng.normal(size=5000)) < 0.05
    assert population_stability(reference, rng.normal(loc=1.0, size=5000)) > 0.25
    assert population_stability(np.zeros(100), np.zeros(100)) == pytest.approx(0.0)


def test_champion_evidence_splits_the_holdout_at_the_champions_data(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    challenger = fit(data, SETTINGS)
    champion = refit(data, SETTINGS, challenger)
    holdout_days = np.sort(data.times[data.holdout_rows])
    middle = int(holdout_days[len(holdout_days) // 2])
    evidence = champion_evidence(challenger, champion, data, data.time_of(middle), 0.8)
    assert evidence.overlap.seen_rows == int((holdout_days <= middle).sum())
    assert evidence.overlap.holdout_rows == len(holdout_days)
    assert evidence.overlap.champion_recorded_auc == 0.8
    assert evidence.overlap.unseen_challenger is not None
    assert evidence.unlabelled.score_psi is not None  # both flag with XGBoost
    assert 0.0 <= evidence.unlabelled.agreement <= 1.0
    # A champion whose data end before the holdout has seen none of it.
    before = champion_evidence(challenger, champion, data, data.time_of(int(holdout_days[0]) - 1))
    assert before.overlap.seen_rows == 0
