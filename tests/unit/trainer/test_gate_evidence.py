"""The promotion gate on holdouts that lack a class: no evidence, so no silent promotion."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluation import binary_metrics, holdout_gap
from trainer.gate import decide

NO_POSITIVES = binary_metrics(np.zeros(40, dtype=bool), np.linspace(0, 1, 40), np.ones(40, bool))
NO_NEGATIVES = binary_metrics(np.ones(8, dtype=bool), np.linspace(0, 1, 8), np.ones(8, bool))
UNLABELLED = binary_metrics(np.zeros(0, dtype=bool), np.zeros(0), np.zeros(0, dtype=bool))
BOTH = binary_metrics(np.array([True, False, False]), np.array([0.9, 0.2, 0.1]), np.ones(3, bool))


def test_single_class_holdouts_report_counts_not_zeros() -> None:
    assert NO_POSITIVES == {
        "holdout_samples": 40.0,
        "holdout_positives": 0.0,
        "holdout_positive_rate": 0.0,
    }
    assert "f1" not in NO_NEGATIVES
    assert NO_NEGATIVES["holdout_positives"] == 8.0
    assert {"auc", "precision", "recall", "f1"} <= set(BOTH)


@pytest.mark.parametrize(
    ("metrics", "gap"),
    [
        (NO_POSITIVES, "holdout has no positives (0 of 40)"),
        (NO_NEGATIVES, "holdout has no negatives (8 of 8 positive)"),
        (UNLABELLED, "holdout has no labelled observations"),
        ({}, "holdout has no labelled observations"),
        # Metrics recorded before the counts existed: the rate tells as much.
        (
            {"holdout_samples": 40.0, "holdout_positive_rate": 0.0, "f1": 0.0},
            "holdout has no positives (0 of 40)",
        ),
        (BOTH, None),
        ({"auc": 0.7}, None),
    ],
)
def test_holdout_gap(metrics: dict[str, float], gap: str | None) -> None:
    assert holdout_gap(metrics) == gap


@pytest.mark.parametrize("force", [False, True])
def test_a_champion_is_not_replaced_on_a_holdout_without_positives(force: bool) -> None:
    decision = decide(
        NO_POSITIVES, {}, tolerance=0.01, force=force, champion_version="delinquency_v1"
    )
    assert not decision.promote
    assert not decision.overridden
    assert decision.reason.startswith("rejected: holdout has no positives (0 of 40)")
    assert "delinquency_v1" in decision.reason
    assert "retrainer models promote" in decision.reason
    assert ("force does not override" in decision.reason) is force


def test_an_unusable_champion_is_still_a_champion() -> None:
    """No metrics for the champion (its artifact failed to load), but it exists: keep it."""
    decision = decide(NO_POSITIVES, None, tolerance=0.01, champion_version="v1")
    assert not decision.promote
    assert decision.holdout_gap == "holdout has no positives (0 of 40)"


@pytest.mark.parametrize("metrics", [NO_POSITIVES, NO_NEGATIVES, UNLABELLED])
def test_a_first_model_is_promoted_flagged_as_unevaluated(metrics: dict[str, float]) -> None:
    decision = decide(metrics, None, tolerance=0.01, force=True)
    assert decision.promote
    assert decision.unevaluated
    assert not decision.overridden
    assert decision.reason.startswith(f"unevaluated: {holdout_gap(metrics)}")
    assert "no champion yet" in decision.reason


def test_an_unsupervised_detector_is_refreshed_and_says_it_was_not_evaluated() -> None:
    decision = decide(UNLABELLED, {}, tolerance=0.01, champion_version="v1", supervised=False)
    assert decision.promote
    assert decision.unevaluated
    assert "unsupervised" in decision.reason
    assert "replacing v1" in decision.reason
    # A supervised challenger on the same holdout is not.
    assert not decide(UNLABELLED, {}, tolerance=0.01, champion_version="v1").promote


def test_a_holdout_with_both_classes_is_gated_as_before() -> None:
    assert decide(BOTH, None, tolerance=0.01).holdout_gap is None
    assert not decide(BOTH, None, tolerance=0.01).unevaluated
    worse = decide(BOTH, {"auc": 1.5}, tolerance=0.01, champion_version="v1")
    assert not worse.promote
    assert worse.holdout_gap is None
    assert decide(BOTH, {"auc": 1.5}, tolerance=0.01, force=True).overridden
