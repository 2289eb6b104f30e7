"""The champion's live quality as the policy reads it: drift of its features and scores against
its training reference, and its realised performance on labels that arrived late.

Pure: rows in (as `streams.store.quality` reads them), figures out; the policy decides on them
(streams.policy) and the engine (streams.services.quality) reads, caches and refreshes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from schemas.base import ModelFamily
from schemas.drift import ReferenceError, compare
from schemas.quality import realised_quality


@dataclass(frozen=True)
class QualityConfig:
    """The numbers of the drift and performance triggers, and how often their figures are read.

    Defaults: PSI 0.2 is the usual line between a moderate and a significant shift, on at least
    500 scored rows of the last 7 days (PSI on fewer rows is mostly noise). The performance
    trigger needs 200 labelled scores with both classes in 90 days (365 for delinquency, whose
    labels come a whole horizon late); it fires under an AUC of 0.6 (barely better than chance)
    or 0.1 under the version's holdout AUC. Figures are read again at most every 5 minutes.
    """

    drift_psi_threshold: float = 0.2
    drift_min_sample: int = 500
    drift_max_sample: int = 5000
    drift_window: timedelta = timedelta(days=7)
    performance_auc_floor: float = 0.6
    performance_auc_margin: float = 0.1
    performance_min_sample: int = 200
    performance_max_sample: int = 50_000
    performance_window: timedelta = timedelta(days=90)
    delinquency_performance_window: timedelta = timedelta(days=365)
    delinquency_horizon_days: int = 92
    delinquent_days_past_due: int = 30
    refresh: timedelta = timedelta(minutes=5)

    def window(self, family: ModelFamily) -> timedelta:
        """The rolling window of the performance figures of `family`."""
        if family is ModelFamily.DELINQUENCY:
            return self.delinquency_performance_window
        return self.performance_window


@dataclass(frozen=True)
class DriftFigures:
    """PSI per feature and of the score, KS distance of the score, of one version's live rows."""

    model_version: str
    samples: int
    feature_psi: Mapping[str, float] = field(default_factory=dict)
    score_psi: float | None = None
    score_ks: float | None = None
    note: str | None = None
    """Why there are no figures (no reference kept with the version), when there are none."""

    def largest(self) -> tuple[str, float] | None:
        """The feature (or "the score") with the largest PSI, and that PSI."""
        candidates = list(self.feature_psi.items())
        if self.score_psi is not None:
            candidates.append(("the score", self.score_psi))
        return max(candidates, key=lambda pair: pair[1]) if candidates else None


@dataclass(frozen=True)
class VersionPerformance:
    """One version's live scores against the labels known now."""

    model_version: str
    samples: int
    positives: int
    auc: float | None
    precision: float | None
    recall: float | None
    holdout_auc: float | None
    """The AUC the trainer measured on the version's holdout (its registry metrics)."""


@dataclass(frozen=True)
class QualityFigures:
    """What the drift and performance triggers read, as computed at `computed_at`."""

    family: ModelFamily
    model_version: str | None
    computed_at: datetime
    drift: DriftFigures | None = None
    performance: Mapping[str, VersionPerformance] = field(default_factory=dict)
    """Per version with labelled live scores in the window, the champion's among them."""

    @property
    def champion_performance(self) -> VersionPerformance | None:
        if self.model_version is None:
            return None
        return self.performance.get(self.model_version)


def drift_figures(
    version: str,
    reference: Mapping[str, Any] | None,
    feature_names: Sequence[str],
    rows: Sequence[tuple[Sequence[float] | None, float | None]],
) -> DriftFigures:
    """Drift of a version's live rows, each (feature vector in `feature_names` order, score).

    Rows without a feature vector (scored before vectors were kept) are left out; a missing
    score is a non-finite value (its own bin).
    """
    if reference is None:
        return DriftFigures(version, 0, note="the version keeps no training reference")
    vectors = [
        (vector, score)
        for vector, score in rows
        if vector is not None and len(vector) == len(feature_names)
    ]
    if not vectors:
        return DriftFigures(version, 0)
    matrix = np.array([vector for vector, _ in vectors], dtype=np.float64)
    scores = np.array(
        [np.nan if score is None else score for _, score in vectors], dtype=np.float64
    )
    try:
        report = compare(reference, matrix, feature_names, scores)
    except ReferenceError as exc:
        return DriftFigures(
            version, len(vectors), note=f"the version's reference is unusable: {exc}"
        )
    return DriftFigures(
        version, report.samples, report.feature_psi, report.score_psi, report.score_ks
    )


def performance_figures(
    rows: Sequence[tuple[str, float | None, bool, bool]],
    holdout_auc: Mapping[str, float | None],
) -> dict[str, VersionPerformance]:
    """Per version, the realised quality of its labelled live scores.

    Each row is (version, score, flagged, truth); `holdout_auc` maps versions to their holdout
    AUC (None or absent when the registry has none).
    """
    by_version: dict[str, list[tuple[float | None, bool, bool]]] = {}
    for version, score, flagged, truth in rows:
        by_version.setdefault(version, []).append((score, flagged, truth))
    figures: dict[str, VersionPerformance] = {}
    for version, labelled in sorted(by_version.items()):
        scores = np.array([np.nan if s is None else s for s, _, _ in labelled], dtype=np.float64)
        flags = np.array([f for _, f, _ in labelled], dtype=np.bool_)
        truths = np.array([t for _, _, t in labelled], dtype=np.bool_)
        quality = realised_quality(truths, scores, flags)
        figures[version] = VersionPerformance(
            model_version=version,
            samples=quality.samples,
            positives=quality.positives,
            auc=quality.auc,
            precision=quality.precision,
            recall=quality.recall,
            holdout_auc=holdout_auc.get(version),
        )
    return figures
