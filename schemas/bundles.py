"""A trained version's models as one value, and how scorers and trainer turn features into scores.

Trainer and scorers both use this, so a version scores the same in evaluation and in production.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.artifacts import (
    CLASSIFIER,
    FAST_FORMATS,
    ISOLATION_FOREST,
    RANDOM_FOREST,
    ArtifactFormat,
    ArtifactIntegrityError,
    load,
    verify,
)
from schemas.base import ModelFamily
from schemas.drift import DEFAULT_BINS, build_reference
from schemas.features import FEATURES_VERSION
from schemas.forests import ArrayForest, ForestBuilder

log = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIER",
    "FLAGGED_BY_ISOLATION_FOREST",
    "FLAGGED_BY_RANDOM_FOREST",
    "FLAGGED_BY_XGBOOST",
    "ISOLATION_FOREST",
    "RANDOM_FOREST",
    "BoolArray",
    "BundleDecoding",
    "FloatArray",
    "ModelBundle",
    "Scores",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

FLAGGED_BY_XGBOOST = "xgboost"
FLAGGED_BY_RANDOM_FOREST = "random_forest"
FLAGGED_BY_ISOLATION_FOREST = "isolation_forest"


@dataclass(frozen=True)
class Scores:
    """A bundle's answer for some rows: a ranking score, flags, and the anomaly detector's flags."""

    score: FloatArray
    flagged: BoolArray
    anomaly_flagged: BoolArray | None = None
    anomaly_score: FloatArray | None = None


@dataclass(frozen=True)
class ModelBundle:
    """The fitted models of one version (role -> model) and how to use them."""

    family: ModelFamily
    models: Mapping[str, object]
    feature_names: tuple[str, ...]
    threshold: float
    notes: tuple[str, ...] = ()
    reference: Mapping[str, Any] | None = None
    """The training data's bins (schemas.drift.build_reference) live data is compared with;
    None for a version trained before references were kept."""
    threshold_source: str = ""
    """How the threshold was chosen (the rule and the rows it was chosen on, or the fallback)."""
    fitted_rows: int | None = None
    """Rows the models were fitted on (None: not recorded, a version from before it was)."""
    fitted_until: datetime | None = None
    """Time of the newest row fitted on: the champion has seen every row up to it."""

    @property
    def flagged_by(self) -> str:
        """The model whose flags are the bundle's flags (the others are a second opinion)."""
        if self.family is ModelFamily.DELINQUENCY:
            return FLAGGED_BY_XGBOOST
        return (
            FLAGGED_BY_RANDOM_FOREST
            if RANDOM_FOREST in self.models
            else (FLAGGED_BY_ISOLATION_FOREST)
        )

    @property
    def params(self) -> dict[str, Any]:
        """What the registry stores beside the artifacts so any loader can use them."""
        params: dict[str, Any] = {
            "feature_names": list(self.feature_names),
            "features_version": FEATURES_VERSION,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "flagged_by": self.flagged_by,
            "roles": sorted(self.models),
            "notes": list(self.notes),
        }
        if self.fitted_rows is not None:
            params["fitted_rows"] = self.fitted_rows
        if self.fitted_until is not None:
            params["fitted_until"] = self.fitted_until.isoformat()
        if self.reference is not None:
            params["reference"] = dict(self.reference)
        return params

    def with_reference(self, training_matrix: FloatArray, bins: int = DEFAULT_BINS) -> ModelBundle:
        """This bundle with the reference of its training rows (`training_matrix` in the columns
        of `feature_names`), scored by the bundle itself, as drift is measured against."""
        scores = self.score(training_matrix).score
        reference = build_reference(training_matrix, self.feature_names, scores, bins)
        return replace(self, reference=reference)

    @property
    def anomaly_offset(self) -> float:
        """The IsolationForest's offset: it flags a row whose anomaly score exceeds -offset."""
        detector = self.models[ISOLATION_FOREST]
        if isinstance(detector, ArrayForest):
            return detector.offset
        return float(getattr(detector, "offset_", -0.5))

    def score(self, features: FloatArray) -> Scores:
        if self.family is ModelFamily.DELINQUENCY:
            # Imported here, once a model is scored: a process that never scores (the CLI, a
            # worker before its first model) does not pay a second of XGBoost imports.
            import xgboost as xgb

            booster = self.models[CLASSIFIER]
            assert isinstance(booster, xgb.Booster)  # noqa: S101 - a bundle is built by us
            probability = np.asarray(booster.predict(xgb.DMatrix(features)), dtype=np.float64)
            return Scores(probability, probability >= self.threshold)
        # IsolationForest cannot take NaN: a missing habit baseline means "nothing unusual yet".
        anomaly, anomaly_flagged = _isolation(
            self.models[ISOLATION_FOREST], np.nan_to_num(features, nan=0.0)
        )
        classifier = self.models.get(RANDOM_FOREST)
        if classifier is None:
            return Scores(anomaly, anomaly_flagged, anomaly_flagged, anomaly)
        probability = _fraud_probability(classifier, features)
        return Scores(probability, probability >= self.threshold, anomaly_flagged, anomaly)

    @classmethod
    def from_artifacts(
        cls,
        family: ModelFamily,
        params: Mapping[str, Any],
        stored: Sequence[tuple[str, str, str, bytes]],
        *,
        prefer_fast: bool = False,
    ) -> ModelBundle:
        """Rebuild a version from its stored (role, format, sha256, bytes) rows and params.

        Every artifact is checked against its sha256 before any is decoded; a mismatch raises
        ArtifactIntegrityError and nothing is loaded. A role stored twice is decoded once: from
        its canonical form (skops, XGBoost) or, with `prefer_fast` (scorers), from its tree
        arrays when the version has them, falling back to the canonical form if those do not
        decode.
        """
        return cls.decoding(family, params, stored, prefer_fast=prefer_fast).bundle()

    @classmethod
    def decoding(
        cls,
        family: ModelFamily,
        params: Mapping[str, Any],
        stored: Sequence[tuple[str, str, str, bytes]],
        *,
        prefer_fast: bool = False,
    ) -> BundleDecoding:
        """`from_artifacts` with the forests' trees left to rebuild (BundleDecoding.build)."""
        if not stored:
            raise ArtifactIntegrityError("the version has no artifacts")
        for _, _, sha, content in stored:
            verify(content, sha)
        forms: dict[str, list[tuple[str, str, bytes]]] = {}
        for role, format_, sha, content in stored:
            forms.setdefault(role, []).append((format_, sha, content))
        decoding = BundleDecoding(family, params)
        for role, found in forms.items():
            model = _decode(role, found, prefer_fast)
            if isinstance(model, ForestBuilder):
                decoding.forests[role] = model
            else:
                decoding.models[role] = model
        return decoding


@dataclass
class BundleDecoding:
    """A version's artifacts verified and decoded, but for the trees of its array forests.

    Those are rebuilt a few at a time (`build`), so an event loop can rebuild them between its
    own work instead of waiting for a thread that holds the GIL."""

    family: ModelFamily
    params: Mapping[str, Any]
    models: dict[str, object] = field(default_factory=dict)
    forests: dict[str, ForestBuilder] = field(default_factory=dict)

    def build(self, trees: int | None = None) -> bool:
        """Rebuild up to `trees` more trees (all when None); True once every forest is whole."""
        for builder in self.forests.values():
            if not builder.done:
                builder.build(trees)
                break
        return all(builder.done for builder in self.forests.values())

    def bundle(self) -> ModelBundle:
        """The bundle, rebuilding whatever trees are left first."""
        models = dict(self.models)
        models.update({role: builder.forest() for role, builder in self.forests.items()})
        params = self.params
        return ModelBundle(
            family=self.family,
            models=models,
            feature_names=tuple(params["feature_names"]),
            threshold=float(params["threshold"]),
            notes=tuple(params.get("notes", ())),
            reference=params.get("reference"),
            threshold_source=str(params.get("threshold_source", "")),
            fitted_rows=int(params["fitted_rows"]) if "fitted_rows" in params else None,
            fitted_until=(
                datetime.fromisoformat(params["fitted_until"])
                if params.get("fitted_until")
                else None
            ),
        )


def _decode(role: str, forms: Sequence[tuple[str, str, bytes]], prefer_fast: bool) -> object:
    """One role's model (or the builder of its forest) from the forms it is stored in, their
    digests already verified."""
    fast = [f for f in forms if ArtifactFormat(f[0]) in FAST_FORMATS]
    canonical = [f for f in forms if ArtifactFormat(f[0]) not in FAST_FORMATS]
    if len(canonical) > 1:
        raise ArtifactIntegrityError(f"{role} is stored in {len(canonical)} canonical forms")
    if fast and (prefer_fast or not canonical):
        format_, _, content = fast[0]
        try:
            return ArrayForest.parse(content)
        except ArtifactIntegrityError as exc:
            if not canonical:
                raise
            log.warning(
                "%s: the %s form does not decode (%s); loading %s",
                role,
                format_,
                exc,
                canonical[0][0],
            )
    format_, sha, content = canonical[0]
    return load(format_, content, sha)


def _isolation(detector: object, rows: FloatArray) -> tuple[FloatArray, BoolArray]:
    """The detector's anomaly score (-score_samples) and flags (predict == -1) of `rows`."""
    if isinstance(detector, ArrayForest):
        anomaly = detector.anomaly_score(rows)
        return anomaly, detector.anomaly_flags(anomaly)
    from sklearn.ensemble import IsolationForest

    assert isinstance(detector, IsolationForest)  # noqa: S101 - a bundle is built by us
    anomaly = -np.asarray(detector.score_samples(rows), dtype=np.float64)
    # predict() is decision_function < 0, and decision_function is score_samples - offset_:
    # the same comparison, without scoring the rows a second time.
    return anomaly, np.asarray((-anomaly - detector.offset_) < 0, dtype=np.bool_)


def _fraud_probability(classifier: object, features: FloatArray) -> FloatArray:
    """The RandomForest's probability of fraud (its second class) for each row."""
    if isinstance(classifier, ArrayForest):
        return classifier.probability(features)
    from sklearn.ensemble import RandomForestClassifier

    assert isinstance(classifier, RandomForestClassifier)  # noqa: S101
    return np.asarray(classifier.predict_proba(features)[:, 1], dtype=np.float64)
