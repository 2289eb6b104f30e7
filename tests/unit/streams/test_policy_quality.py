"""The drift and realised-performance triggers, table-driven: at the threshold, below it, on a
sample under the minimum, for another version, and never while a request is in flight."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.base import ModelFamily
from schemas.drift import build_reference
from schemas.retrain_requested import RetrainReason
from streams.policy import (
    Action,
    Counters,
    FamilyState,
    InFlight,
    PolicyConfig,
    decide,
    start_flight,
)
from streams.quality import (
    DriftFigures,
    QualityConfig,
    QualityFigures,
    VersionPerformance,
    drift_figures,
    performance_figures,
)
from streams.services.policy import PolicyState

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CONFIG = PolicyConfig()
Q = CONFIG.quality
FRAUD = ModelFamily.EXPENSE_FRAUD
DELINQ = ModelFamily.DELINQUENCY
CHAMPION = "delinquency-v3"
# Enough stored data that the minimum-data gate is open, no count trigger near its threshold.
PLENTY = Counters(
    observed_at=NOW,
    total_expenses=500,
    sheets_with_min_lines=20,
    total_customers=500,
    total_statements=3000,
    labelled_observations=2000,
    delinquent_observations=150,
    train_labelled_observations=1200,
    train_delinquent_observations=90,
)
# A champion trained long enough ago that no hold applies, and less than the interval ago.
STATE = FamilyState(
    DELINQ,
    cutoff=NOW - timedelta(hours=2),
    last_trained_at=NOW - timedelta(hours=2),
    model_version=CHAMPION,
)


def drift(
    psi: float, samples: int = Q.drift_min_sample, score_psi: float = 0.01, version: str = CHAMPION
) -> QualityFigures:
    figures = DriftFigures(version, samples, {"utilization": psi, "age": 0.02}, score_psi, 0.1)
    return QualityFigures(DELINQ, version, NOW, drift=figures)


def performance(
    auc: float,
    samples: int = Q.performance_min_sample,
    positives: int = 40,
    holdout: float | None = 0.8,
    version: str = CHAMPION,
) -> QualityFigures:
    figures = VersionPerformance(version, samples, positives, auc, 0.5, 0.5, holdout)
    return QualityFigures(DELINQ, version, NOW, performance={version: figures})


CASES = [
    # (id, figures, action, reason, text)
    ("no figures", None, Action.NONE, None, "No training needed"),
    ("psi below", drift(0.199), Action.NONE, None, "No training needed"),
    (
        "psi at threshold",
        drift(0.2),
        Action.REQUEST,
        RetrainReason.DRIFT,
        "Drift: PSI 0.20 on utilization (threshold 0.2; 500 scored)",
    ),
    (
        "psi above",
        drift(0.31),
        Action.REQUEST,
        RetrainReason.DRIFT,
        "Drift: PSI 0.31 on utilization (threshold 0.2; 500 scored)",
    ),
    (
        "psi on the score",
        drift(0.05, score_psi=0.4),
        Action.REQUEST,
        RetrainReason.DRIFT,
        "Drift: PSI 0.40 on the score (threshold 0.2; 500 scored)",
    ),
    (
        "psi on a sample under the minimum",
        drift(0.9, samples=499),
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "psi of another version",
        drift(0.9, version="delinquency-v2"),
        Action.NONE,
        None,
        "No training needed",
    ),
    ("auc above floor and margin", performance(0.75), Action.NONE, None, "No training needed"),
    ("auc at floor", performance(0.6, holdout=None), Action.NONE, None, "No training needed"),
    (
        "auc under floor",
        performance(0.59, holdout=None),
        Action.REQUEST,
        RetrainReason.PERFORMANCE,
        "Realised AUC 0.59 under the floor 0.6 (200 labelled, 40 positive)",
    ),
    (
        "auc exactly the margin under holdout",
        performance(0.7, holdout=0.8),
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "auc more than the margin under holdout",
        performance(0.69, holdout=0.8),
        Action.REQUEST,
        RetrainReason.PERFORMANCE,
        "Realised AUC 0.69 more than 0.1 under the holdout AUC 0.80 (200 labelled, 40 positive)",
    ),
    (
        "auc on a sample under the minimum",
        performance(0.4, samples=199),
        Action.NONE,
        None,
        "No training needed",
    ),
    ("auc on one class", performance(0.4, positives=0), Action.NONE, None, "No training needed"),
    (
        "auc of another version",
        performance(0.4, version="delinquency-v2"),
        Action.NONE,
        None,
        "No training needed",
    ),
]


@pytest.mark.parametrize(
    ("figures", "action", "reason", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_quality_triggers(
    figures: QualityFigures | None, action: Action, reason: RetrainReason | None, text: str
) -> None:
    decision = decide(DELINQ, PLENTY, STATE, CONFIG, NOW, quality=figures)
    assert (decision.action, decision.reason, decision.reason_text) == (action, reason, text)


def test_drift_takes_precedence_over_performance_and_counts_over_drift() -> None:
    both = replace(drift(0.5), performance=performance(0.3).performance)
    assert decide(DELINQ, PLENTY, STATE, CONFIG, NOW, quality=both).reason is RetrainReason.DRIFT
    counted = replace(PLENTY, new_customers=CONFIG.new_customers_threshold)
    decision = decide(DELINQ, counted, STATE, CONFIG, NOW, quality=both)
    assert decision.reason is RetrainReason.NEW_CUSTOMERS


def test_drift_wins_over_the_interval_trigger() -> None:
    old = replace(STATE, last_trained_at=NOW - timedelta(days=2))
    counted = replace(PLENTY, new_statements=5)
    assert decide(DELINQ, counted, old, CONFIG, NOW).reason is RetrainReason.INTERVAL
    decision = decide(DELINQ, counted, old, CONFIG, NOW, quality=drift(0.4))
    assert decision.reason is RetrainReason.DRIFT


def test_a_quality_trigger_waits_while_its_request_is_in_flight() -> None:
    first = decide(DELINQ, PLENTY, STATE, CONFIG, NOW, quality=drift(0.4))
    assert first.action is Action.REQUEST
    flying = start_flight(STATE, first, uuid.uuid4(), NOW, NOW)
    for later in (NOW + timedelta(seconds=1), NOW + CONFIG.request_timeout / 2):
        again = decide(DELINQ, PLENTY, flying, CONFIG, later, quality=drift(0.9))
        assert again.action is Action.WAIT
        assert again.reason is RetrainReason.DRIFT


def test_a_quality_trigger_is_held_and_blocked_like_the_others() -> None:
    recent = replace(STATE, last_trained_at=NOW - timedelta(minutes=1))
    assert decide(DELINQ, PLENTY, recent, CONFIG, NOW, quality=drift(0.4)).action is Action.HELD
    empty = Counters(observed_at=NOW)
    assert decide(DELINQ, empty, STATE, CONFIG, NOW, quality=drift(0.4)).action is Action.BLOCKED


def test_thresholds_come_from_the_config() -> None:
    strict = replace(CONFIG, quality=QualityConfig(drift_psi_threshold=0.5, drift_min_sample=10))
    assert decide(DELINQ, PLENTY, STATE, strict, NOW, quality=drift(0.4)).action is Action.NONE
    assert decide(DELINQ, PLENTY, STATE, strict, NOW, quality=drift(0.5, samples=10)).action is (
        Action.REQUEST
    )


def test_no_champion_no_quality_trigger() -> None:
    fresh = FamilyState(FRAUD)
    assert decide(FRAUD, PLENTY, fresh, CONFIG, NOW, quality=drift(0.9)).action is Action.NONE


def test_drift_figures_from_rows() -> None:

    rng = np.random.default_rng(3)
    train = rng.normal(size=(1000, 2))
    reference = build_reference(train, ["a", "b"], train[:, 0])
    live = [([float(x) + 2.0, float(y)], float(x) + 2.0) for x, y in rng.normal(size=(600, 2))]
    live += [(None, 0.5), ([1.0], 0.5)]  # no vector (an old row), a vector of another length
    figures = drift_figures("v1", reference, ["a", "b"], live)
    assert figures.samples == 600
    assert figures.largest() is not None
    assert figures.feature_psi["a"] > 1.0 > 0.2 > figures.feature_psi["b"]
    assert drift_figures("v1", None, ["a"], live).note == "the version keeps no training reference"
    unusable = drift_figures("v1", {"features": {"a": {"edges": [1.0]}}}, ["a", "b"], live)
    assert unusable.note is not None


def test_performance_figures_per_version() -> None:
    rows = [
        ("v1", 0.9, True, True),
        ("v1", 0.1, False, False),
        ("v1", None, False, True),
        ("v2", 0.4, False, False),
    ]
    figures = performance_figures(rows, {"v1": 0.8})
    assert set(figures) == {"v1", "v2"}
    assert figures["v1"].samples == 3
    assert figures["v1"].auc == 1.0
    assert figures["v1"].recall == 0.5
    assert figures["v1"].holdout_auc == 0.8
    assert figures["v2"].auc is None
    assert figures["v2"].holdout_auc is None


def test_in_flight_state_round_trips_with_the_new_reasons() -> None:
    flight = InFlight(uuid.uuid4(), RetrainReason.PERFORMANCE, "Realised AUC 0.5", NOW, NOW)
    state = PolicyState(replace(STATE, in_flight=flight))
    assert PolicyState.from_json(DELINQ, state.to_json()) == state
