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
    threshold_folds,
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
    assert bundle.fitted_rows == len(data.train_rows)
    detector_only = fit(expense_set(sim.expenses, sim.labels.head(10), settings=SETTINGS), SETTINGS)
    assert detector_only.flagged_by == "isolation_forest"


def test_threshold_folds_keep_customers_whole_and_never_touch_the_holdout(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    assert data.groups is not None
    folds = threshold_folds(data, data.train_rows, SETTINGS)
    assert len(folds) == SETTINGS.threshold_folds
    scored = np.concatenate([check for _, check in folds])
    # Every training row is scored once, by a fit that never saw its customer.
    assert sorted(scored.tolist()) == sorted(data.train_rows.tolist())
    holdout = set(data.holdout_rows.tolist())
    for fit_rows, check in folds:
        assert not set(data.groups[fit_rows].tolist()) & set(data.groups[check].tolist())
        assert not (set(fit_rows.tolist()) | set(check.tolist())) & holdout
    bundle = fit(data, SETTINGS)
    assert bundle.flagged_by == "xgboost"
    assert bundle.fitted_rows == len(data.train_rows)
    assert bundle.threshold_source.startswith(f"max_f1 on {len(data.train_rows)} out-of-fold rows")
    metrics = evaluate(bundle, data)
    assert 0.0 <= metrics["past_due_rule_f1"] <= 1.0


def test_threshold_folds_sample_whole_groups_past_the_row_limit(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    assert data.groups is not None
    limited = SETTINGS.model_copy(update={"threshold_max_rows": len(data.train_rows) // 4})
    folds = threshold_folds(data, data.train_rows, limited)
    scored = np.concatenate([check for _, check in folds])
    assert len(scored) < len(data.train_rows) // 2
    customers = set(data.groups[scored].tolist())
    # Whole customers: every training row of a sampled customer is scored.
    every = data.train_rows[np.isin(data.groups[data.train_rows], list(customers))]
    assert sorted(every.tolist()) == sorted(scored.tolist())


def test_scores_without_a_class_fall_back_to_the_decision_threshold(sim) -> None:  # type: ignore[no-untyped-def]
    data = delinquency_set(
        sim.activity, sim.customers, cutoff_day=_cutoff_day(sim), settings=SETTINGS
    )
    labels = data.labels.copy()
    # One delinquent customer only: every fold's fit part or scored part lacks a class.
    assert data.groups is not None
    positive = data.groups[(labels >= 0.5)][0]
    labels[(data.groups != positive)] = 0.0
    labels[(data.groups == positive)] = 1.0
    bundle = fit(replace(data, labels=labels), SETTINGS)
    assert bundle.threshold == SETTINGS.decision_threshold
    assert bundle.threshold_source == "decision_threshold"
    assert any("lack a class" in note for note in bundle.notes)


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
