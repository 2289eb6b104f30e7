"""What a trained version's report is drawn from, and keeping it with the version.

The challenger (and the champion, when it loads) are scored on the training set's holdout, the
models' own importances are read, `trainer.report` draws the page, and the registry stores it in
the transaction that records the version. A report that cannot be drawn is logged and left out:
the trained version is recorded all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import numpy as np
import numpy.typing as npt

from schemas.artifacts import ArtifactIntegrityError
from schemas.base import ModelFamily
from schemas.bundles import CLASSIFIER, ISOLATION_FOREST, RANDOM_FOREST, ModelBundle
from schemas.drift import compare
from trainer import registry
from trainer.errors import RegistryError
from trainer.families import TrainingSet
from trainer.gate import GateDecision
from trainer.report import ReportInputs, render_report

log = logging.getLogger(__name__)
T = TypeVar("T")
FloatArray = npt.NDArray[np.float64]
OffLoop = Callable[[Callable[[], T]], Awaitable[T]]

IMPORTANCE_NONE: str = "IsolationForest has no importances"


@dataclass(frozen=True)
class ScoreMeaning:
    """What a bundle's ranking score is, and the value from which it flags a row."""

    label: str
    probabilities: bool
    threshold: float


def score_meaning(bundle: ModelBundle) -> ScoreMeaning:
    """The classifier's probability when there is one, else the IsolationForest's anomaly score."""
    if bundle.family is ModelFamily.DELINQUENCY:
        return ScoreMeaning("P(delinquent)", True, bundle.threshold)
    if RANDOM_FOREST in bundle.models:
        return ScoreMeaning("P(fraud)", True, bundle.threshold)
    # The bundle's anomaly score is -score_samples; the forest flags a row when that exceeds
    # -offset_ (its decision function is score_samples - offset_ < 0).
    return ScoreMeaning("anomaly score", False, -bundle.anomaly_offset)


def holdout_scores(bundle: ModelBundle, data: TrainingSet) -> FloatArray:
    """The bundle's ranking scores of the holdout rows (what `families.evaluate` judges)."""
    rows = data.holdout_rows
    if len(rows) == 0:
        return np.array([], dtype=np.float64)
    columns = np.array([data.feature_names.index(n) for n in bundle.feature_names], np.int64)
    return bundle.score(data.features[np.ix_(rows, columns)]).score


def importances(bundle: ModelBundle) -> tuple[tuple[float, ...] | None, str]:
    """Per-feature importance of the bundle's ranking model, and what it measures.

    XGBoost: total gain of the splits on a feature. RandomForest: mean impurity decrease. An
    IsolationForest alone has no importance; the share of its splits on each feature stands in
    (a proxy without permutations: a feature trees never split on cannot make a row anomalous).
    """
    names = bundle.feature_names
    if CLASSIFIER in bundle.models:
        import xgboost as xgb

        booster = bundle.models[CLASSIFIER]
        if isinstance(booster, xgb.Booster):
            gains = booster.get_score(importance_type="total_gain")
            by_index = {f"f{i}": name for i, name in enumerate(names)}
            total = {
                by_index.get(key, key): float(value)
                for key, value in gains.items()
                if isinstance(value, float | int)
            }
            return tuple(total.get(name, 0.0) for name in names), "XGBoost total gain"
    if RANDOM_FOREST in bundle.models:
        forest = bundle.models[RANDOM_FOREST]
        values = getattr(forest, "feature_importances_", None)
        if values is not None and len(values) == len(names):
            return tuple(float(v) for v in values), "RandomForest impurity decrease"
    detector = bundle.models.get(ISOLATION_FOREST)
    if detector is not None:
        counts = np.zeros(len(names), dtype=np.float64)
        trees = getattr(detector, "estimators_", [])
        features = getattr(detector, "estimators_features_", [None] * len(trees))
        for tree, used in zip(trees, features, strict=True):
            split_on = tree.tree_.feature
            split_on = split_on[split_on >= 0]
            mapped = split_on if used is None else np.asarray(used)[split_on]
            counts += np.bincount(mapped, minlength=len(names))[: len(names)]
        if counts.sum() > 0:
            return tuple(float(c) for c in counts), "IsolationForest splits (proxy)"
    return None, IMPORTANCE_NONE


def report_inputs(
    record: registry.VersionRecord,
    bundle: ModelBundle,
    data: TrainingSet,
    decision: GateDecision,
    *,
    champion: registry.VersionRecord | None = None,
    champion_bundle: ModelBundle | None = None,
    drift: Mapping[str, float] | None = None,
    notes: tuple[str, ...] = (),
) -> ReportInputs:
    """The report's inputs for a version just trained on `data` (its holdout is the evidence)."""
    meaning = score_meaning(bundle)
    values, kind = importances(bundle)
    champion_scores = None
    champion_label = None
    found_notes = list(bundle.notes) + list(notes)
    if bundle.fitted_rows is not None and bundle.fitted_rows < len(data.labels):
        found_notes.append(
            f"The plots show the fit the gate judged ({bundle.fitted_rows} rows, before the "
            "holdout); a promoted version stores the same configuration refitted on every row "
            "of its window."
        )
    if champion_bundle is not None:
        if set(champion_bundle.feature_names) <= set(data.feature_names):
            champion_scores = holdout_scores(champion_bundle, data)
            champion_label = score_meaning(champion_bundle).label
        else:
            found_notes.append(
                f"champion {champion and champion.version} uses features we no longer build: "
                "not scored"
            )
    return ReportInputs(
        version=record.version,
        family=record.family.value,
        truth=data.labels[data.holdout_rows],
        challenger_scores=holdout_scores(bundle, data),
        threshold=meaning.threshold,
        metrics=record.metrics,
        promoted=decision.promote,
        decision=decision.reason,
        samples=record.samples,
        data_start=record.data_start,
        data_cutoff=record.data_cutoff,
        score_label=meaning.label,
        probabilities=meaning.probabilities,
        champion_version=champion.version if champion is not None else None,
        champion_scores=champion_scores,
        champion_score_label=champion_label,
        feature_names=bundle.feature_names,
        importances=values,
        importance_kind=kind,
        drift=drift,
        trained_at=record.created_at,
        notes=tuple(found_notes),
        extra_rows=(("models", ", ".join(sorted(bundle.models))), ("code", record.code_version)),
    )


def window_drift(champion: ModelBundle | None, data: TrainingSet) -> Mapping[str, float] | None:
    """PSI per feature of the whole training window against the champion's training reference
    (None when there is no champion, it keeps no reference, or it uses features we no longer
    build)."""
    if champion is None or champion.reference is None or len(data.labels) == 0:
        return None
    if not set(champion.feature_names) <= set(data.feature_names):
        return None
    columns = np.array([data.feature_names.index(n) for n in champion.feature_names], np.int64)
    matrix = data.features[:, columns]
    scores = champion.score(matrix).score
    return compare(champion.reference, matrix, champion.feature_names, scores).feature_psi


async def store_report(
    conn: asyncpg.Connection,
    record: registry.VersionRecord,
    bundle: ModelBundle,
    data: TrainingSet,
    decision: GateDecision,
    off_loop: OffLoop[str],
    *,
    champion: registry.VersionRecord | None = None,
    drift: Mapping[str, float] | None = None,
) -> bool:
    """Draw the report of `record` and store it (inside the caller's transaction).

    Returns whether a report was stored. `bundle` is the fit the gate judged on the holdout
    (a promoted version stores that configuration refitted on the whole window, holdout
    included, whose scores on the holdout would be in-sample). `champion` is the champion the
    version was compared with; its models are loaded again here to score the same holdout.
    """
    champion_bundle: ModelBundle | None = None
    notes: tuple[str, ...] = ()

    if champion is not None:
        try:
            champion_bundle = await registry.load_bundle(conn, champion)
        except (ArtifactIntegrityError, RegistryError, KeyError) as exc:
            notes += (f"champion {champion.version} could not be loaded: {exc}",)

    def draw() -> str:
        inputs = report_inputs(
            record,
            bundle,
            data,
            decision,
            champion=champion,
            champion_bundle=champion_bundle,
            drift=drift if drift is not None else window_drift(champion_bundle, data),
            notes=notes,
        )
        return render_report(inputs)

    try:
        page = await off_loop(draw)
    except Exception:
        # A report is a view of the version, not part of it: a plot that fails must not lose
        # the trained model. The version is recorded without a report; the log has the cause.
        log.exception("the report of %s could not be drawn; recorded without one", record.version)
        return False
    await registry.save_report(conn, record.version, page)
    return True
