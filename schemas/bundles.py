"""A trained version's models as one value, and how scorers and trainer turn features into scores.

Trainer and scorers both use this, so a version scores the same in evaluation and in production.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.artifacts import (
    CLASSIFIER,
    ISOLATION_FOREST,
    RANDOM_FOREST,
    ArtifactIntegrityError,
    load,
)
from schemas.base import ModelFamily
from schemas.drift import DEFAULT_BINS, build_reference
from schemas.features import FEATURES_VERSION

__all__ = [
    "CLASSIFIER",
    "FLAGGED_BY_ISOLATION_FOREST",
    "FLAGGED_BY_RANDOM_FOREST",
    "FLAGGED_BY_XGBOOST",
    "ISOLATION_FOREST",
    "RANDOM_FOREST",
    "BoolArray",
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

    def score(self, features: FloatArray) -> Scores:
        # Imported here, once a model is scored: a process that never scores (the CLI, a worker
        # before its first model) does not pay seconds of XGBoost and scikit-learn imports.
        import xgboost as xgb
        from sklearn.ensemble import IsolationForest, RandomForestClassifier

        if self.family is ModelFamily.DELINQUENCY:
            booster = self.models[CLASSIFIER]
            assert isinstance(booster, xgb.Booster)  # noqa: S101 - a bundle is built by us
            probability = np.asarray(booster.predict(xgb.DMatrix(features)), dtype=np.float64)
            return Scores(probability, probability >= self.threshold)
        forest = self.models[ISOLATION_FOREST]
        assert isinstance(forest, IsolationForest)  # noqa: S101
        # IsolationForest cannot take NaN: a missing habit baseline means "nothing unusual yet".
        filled = np.nan_to_num(features, nan=0.0)
        anomaly = -np.asarray(forest.score_samples(filled), dtype=np.float64)
        anomaly_flagged = np.asarray(forest.predict(filled) == -1, dtype=np.bool_)
        classifier = self.models.get(RANDOM_FOREST)
        if classifier is None:
            return Scores(anomaly, anomaly_flagged, anomaly_flagged, anomaly)
        assert isinstance(classifier, RandomForestClassifier)  # noqa: S101
        probability = np.asarray(classifier.predict_proba(features)[:, 1], dtype=np.float64)
        return Scores(probability, probability >= self.threshold, anomaly_flagged, anomaly)

    @classmethod
    def from_artifacts(
        cls,
        family: ModelFamily,
        params: Mapping[str, Any],
        stored: Sequence[tuple[str, str, str, bytes]],
    ) -> ModelBundle:
        """Rebuild a version from its stored (role, format, sha256, bytes) rows and params.

        Every artifact is checked against its sha256 before it is decoded; a mismatch raises
        ArtifactIntegrityError and nothing is loaded.
        """
        if not stored:
            raise ArtifactIntegrityError("the version has no artifacts")
        models = {role: load(format_, content, sha) for role, format_, sha, content in stored}
        return cls(
            family=family,
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
