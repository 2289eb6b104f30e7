"""The two model families: from loaded frames to a training set, a fitted bundle and its metrics.

Plain NumPy/pandas/scikit-learn/XGBoost; no Kafka or database. Fitting is CPU-bound and is run
in an executor by the service.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import IsolationForest, RandomForestClassifier

from schemas.base import ModelFamily
from schemas.bundles import (
    CLASSIFIER,
    ISOLATION_FOREST,
    RANDOM_FOREST,
    ModelBundle,
)
from schemas.features import (
    DELINQUENCY_FEATURES,
    EXPENSE_FEATURES,
    delinquency_features,
    delinquency_labels,
    expense_features,
    feature_matrix,
)
from trainer.errors import InsufficientData
from trainer.evaluation import Split, anomaly_rate, binary_metrics, time_split
from trainer.selection import CustomerSelection
from trainer.settings import TrainerSettings

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class TrainingSet:
    """Features, labels (NaN = unlabelled) and the time-ordered split of one family's data."""

    family: ModelFamily
    features: FloatArray
    labels: FloatArray
    times: IntArray
    split: Split
    feature_names: tuple[str, ...]
    customers: int | None = None
    summary: Mapping[str, float] = field(default_factory=dict)
    """What was loaded, for the log and `retrainer check` (observations, positive rate, …)."""

    @property
    def train_rows(self) -> IntArray:
        return self.split.train

    @property
    def holdout_rows(self) -> IntArray:
        return self.split.holdout

    def labelled(self, rows: IntArray) -> IntArray:
        return rows[~np.isnan(self.labels[rows])]


def evaluate(bundle: ModelBundle, data: TrainingSet) -> dict[str, float]:
    """The bundle's metrics on the holdout of `data` (champions are scored with this too)."""
    rows = data.holdout_rows
    metrics: dict[str, float] = {}
    if len(rows) == 0:
        return metrics
    columns = np.array([data.feature_names.index(n) for n in bundle.feature_names], np.int64)
    scores = bundle.score(data.features[np.ix_(rows, columns)])
    labelled = ~np.isnan(data.labels[rows])
    truth = data.labels[rows][labelled] >= 0.5
    metrics.update(binary_metrics(truth, scores.score[labelled], scores.flagged[labelled]))
    if scores.anomaly_flagged is not None and scores.anomaly_score is not None:
        metrics["anomaly_rate"] = anomaly_rate(scores.anomaly_flagged)
        if truth.any() and not truth.all():
            detector = binary_metrics(
                truth, scores.anomaly_score[labelled], scores.anomaly_flagged[labelled]
            )
            metrics["isolation_forest_auc"] = detector["auc"]
    metrics["train_samples"] = float(len(data.train_rows))
    return metrics


def _threads(settings: TrainerSettings) -> int:
    return settings.training_threads or os.cpu_count() or 1


# --- delinquency -------------------------------------------------------------------------------


def delinquency_set(
    activity: pd.DataFrame,
    profiles: pd.DataFrame,
    *,
    cutoff_day: int,
    settings: TrainerSettings,
    selection: CustomerSelection | None = None,
    minimums: bool = True,
) -> TrainingSet:
    """Labelled statements of the selected customers, split by statement date.

    Raises InsufficientData when there are too few labelled observations (always when there is
    nothing to fit; with `minimums` also below the configured minimums).
    """
    features = delinquency_features(activity, profiles)
    labels = delinquency_labels(
        activity,
        cutoff_day=cutoff_day,
        horizon_days=settings.delinquency_horizon_days,
        delinquent_days_past_due=settings.delinquent_days_past_due,
    )
    known = labels.known
    observations = int(known.sum())
    positives = int(labels.delinquent[known].sum())
    need_rows = settings.min_observations if minimums else 2
    need_positives = settings.min_positive_observations if minimums else 1
    missing: list[str] = []
    if observations < need_rows:
        missing.append(
            f"at least {need_rows} labelled observations (statements whose "
            f"{settings.delinquency_horizon_days}-day horizon ended by the cutoff); "
            f"found {observations}"
        )
    if positives < need_positives or positives == observations:
        missing.append(
            f"at least {need_positives} delinquent and 1 sound observation; "
            f"found {positives} delinquent of {observations}"
        )
    if missing:
        raise InsufficientData("; ".join(missing))
    kept = features.loc[known].reset_index(drop=True)
    matrix = feature_matrix(kept, DELINQUENCY_FEATURES)
    target = labels.delinquent[known].astype(np.float64)
    days = kept["statement_day"].to_numpy(dtype=np.int64)
    split = time_split(days, settings.holdout_fraction, embargo=settings.delinquency_horizon_days)
    return TrainingSet(
        family=ModelFamily.DELINQUENCY,
        features=matrix,
        labels=target,
        times=days,
        split=split,
        feature_names=DELINQUENCY_FEATURES,
        customers=int(kept["customer_id"].nunique()),
        summary={
            "statements_loaded": float(len(features)),
            "observations": float(observations),
            "positive_rate": positives / observations,
            "selected_customers": float(
                len(selection.customer_ids) if selection else kept["customer_id"].nunique()
            ),
            "new_customers_selected": float(selection.new_selected if selection else 0),
            "train_positive_rate": float(target[split.train].mean()) if len(split.train) else 0.0,
            "holdout_positive_rate": (
                float(target[split.holdout].mean()) if len(split.holdout) else 0.0
            ),
        },
    )


def fit_delinquency(data: TrainingSet, settings: TrainerSettings) -> ModelBundle:
    """An XGBoost classifier on the training rows (gradient-boosted trees, histogram method)."""
    rows = data.train_rows
    truth = data.labels[rows]
    if len(rows) < 2 or truth.min() == truth.max():
        raise InsufficientData(
            f"the training part ({len(rows)} observations before the holdout) needs both "
            "delinquent and sound observations"
        )
    params = {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": settings.xgb_max_depth,
        "eta": settings.xgb_learning_rate,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 2.0,
        "nthread": _threads(settings),
        "seed": settings.random_seed,
    }
    booster = xgb.train(params, xgb.DMatrix(data.features[rows], label=truth), settings.xgb_rounds)
    return ModelBundle(
        family=ModelFamily.DELINQUENCY,
        models={CLASSIFIER: booster},
        feature_names=data.feature_names,
        threshold=settings.decision_threshold,
    )


# --- expense fraud -----------------------------------------------------------------------------


def check_expense_minimums(expenses: pd.DataFrame, settings: TrainerSettings) -> None:
    """The expense app's gate: enough expenses, and enough sheets with enough lines each."""
    lines_per_sheet = expenses.groupby("sheet_id", sort=False).size()
    full_sheets = int((lines_per_sheet >= settings.min_lines_per_sheet).sum())
    missing: list[str] = []
    if len(expenses) < settings.min_expenses:
        missing.append(f"at least {settings.min_expenses} expenses; found {len(expenses)}")
    if full_sheets < settings.min_sheets:
        missing.append(
            f"at least {settings.min_sheets} sheets with {settings.min_lines_per_sheet}+ "
            f"expenses each; found {full_sheets}"
        )
    if missing:
        raise InsufficientData("; ".join(missing))


def expense_set(
    expenses: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    settings: TrainerSettings,
    minimums: bool = True,
) -> TrainingSet:
    """Every expense line with its latest label (if any), split by submission time.

    `labels` has expense_id and is_fraud, one row per labelled expense (the latest verdict).
    """
    if minimums:
        check_expense_minimums(expenses, settings)
    elif len(expenses) < 2:
        raise InsufficientData(f"at least 2 expenses to fit anything; found {len(expenses)}")
    features = expense_features(
        expenses,
        approval_limit=settings.approval_limit,
        history_days=settings.expense_history_days,
    )
    verdict = labels.drop_duplicates("expense_id", keep="last").set_index("expense_id")["is_fraud"]
    mapped = features["expense_id"].map(verdict.astype(np.float64))
    target: FloatArray = np.asarray(mapped.to_numpy(dtype=np.float64), dtype=np.float64)
    times = features["submitted_us"].to_numpy(dtype=np.int64)
    split = time_split(times, settings.holdout_fraction)
    labelled = ~np.isnan(target)
    return TrainingSet(
        family=ModelFamily.EXPENSE_FRAUD,
        features=feature_matrix(features, EXPENSE_FEATURES),
        labels=target,
        times=times,
        split=split,
        feature_names=EXPENSE_FEATURES,
        summary={
            "expenses_loaded": float(len(features)),
            "sheets_loaded": float(features["sheet_id"].nunique()),
            "labelled_expenses": float(labelled.sum()),
            "positive_rate": float(np.nanmean(target)) if labelled.any() else 0.0,
        },
    )


def fit_expense_fraud(data: TrainingSet, settings: TrainerSettings) -> ModelBundle:
    """An IsolationForest on every training line; a RandomForest too once labels suffice."""
    rows = data.train_rows
    if len(rows) < 2:
        raise InsufficientData(f"at least 2 expenses before the holdout; found {len(rows)}")
    detector = IsolationForest(
        n_estimators=settings.forest_trees,
        contamination=settings.isolation_contamination,
        random_state=settings.random_seed,
        n_jobs=_threads(settings),
    )
    detector.fit(np.nan_to_num(data.features[rows], nan=0.0))
    models: dict[str, object] = {ISOLATION_FOREST: detector}
    labelled = data.labelled(rows)
    frauds = int((data.labels[labelled] >= 0.5).sum())
    sound = len(labelled) - frauds
    notes: list[str] = []
    if (
        len(labelled) >= settings.min_labelled_expenses
        and frauds >= settings.min_fraud_labels
        and sound >= 1
    ):
        classifier = RandomForestClassifier(
            n_estimators=settings.forest_trees,
            min_samples_leaf=2,
            class_weight="balanced",
            random_state=settings.random_seed,
            n_jobs=_threads(settings),
        )
        classifier.fit(data.features[labelled], data.labels[labelled] >= 0.5)
        models[RANDOM_FOREST] = classifier
    else:
        notes.append(
            f"random forest skipped: {len(labelled)} labelled expenses with {frauds} frauds "
            f"before the holdout (needs {settings.min_labelled_expenses} labelled and "
            f"{settings.min_fraud_labels} frauds)"
        )
    return ModelBundle(
        family=ModelFamily.EXPENSE_FRAUD,
        models=models,
        feature_names=data.feature_names,
        threshold=settings.decision_threshold,
        notes=tuple(notes),
    )


def fit(data: TrainingSet, settings: TrainerSettings) -> ModelBundle:
    if data.family is ModelFamily.DELINQUENCY:
        return fit_delinquency(data, settings)
    return fit_expense_fraud(data, settings)
