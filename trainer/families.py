"""The two model families: from loaded frames to a training set, a fitted bundle and its metrics.

Plain NumPy/pandas/scikit-learn/XGBoost; no Kafka or database. Fitting is CPU-bound and is run
in an executor by the service.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import IsolationForest, RandomForestClassifier

from schemas.base import ModelFamily
from schemas.bundles import (
    CLASSIFIER,
    FLAGGED_BY_ISOLATION_FOREST,
    ISOLATION_FOREST,
    RANDOM_FOREST,
    ModelBundle,
    Scores,
)
from schemas.features import (
    DELINQUENCY_FEATURES,
    EXPENSE_FEATURES,
    expense_features,
    feature_matrix,
    labelled_delinquency_features,
    sort_ranks,
)
from schemas.minimums import DataCounts, DataMinimums, data_gaps
from trainer.errors import InsufficientData
from trainer.evaluation import (
    Split,
    anomaly_rate,
    binary_metrics,
    population_stability,
    time_split,
)
from trainer.gate import Overlap, UnlabelledEvidence
from trainer.selection import CustomerSelection
from trainer.settings import TrainerSettings
from trainer.thresholds import ThresholdRule, choose_threshold

log = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

US_PER_DAY = 86_400_000_000
CONTAMINATION_RANGE = (0.005, 0.5)
"""The detector's contamination when it follows the fraud-label rate is clipped to this."""


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
    embargo: int = 0
    """Training rows this close before an evaluation slice are dropped (the label horizon)."""
    groups: IntArray | None = None
    """Per row, the entity whose rows belong together (customer, sheet): folds keep them whole.
    None = every row on its own."""

    @property
    def train_rows(self) -> IntArray:
        return self.split.train

    @property
    def holdout_rows(self) -> IntArray:
        return self.split.holdout

    @property
    def all_rows(self) -> IntArray:
        """Every row up to the cutoff, holdout included: what a promoted model is refitted on."""
        return np.arange(len(self.labels), dtype=np.int64)

    def labelled(self, rows: IntArray) -> IntArray:
        return rows[~np.isnan(self.labels[rows])]

    def time_of(self, value: int) -> datetime:
        """One of `times` (days for delinquency, µs for expenses) as a UTC instant."""
        return time_of(self.family, value)


def time_of(family: ModelFamily, value: int) -> datetime:
    """A training set's time value (days for delinquency, µs for expenses) as a UTC instant."""
    if family is ModelFamily.DELINQUENCY:
        return datetime.fromtimestamp(value * 86_400, tz=UTC)
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def time_value(family: ModelFamily, instant: datetime) -> float:
    """The inverse of `time_of`: an instant in the unit of a family's training-set times."""
    seconds = instant.timestamp()
    return seconds / 86_400 if family is ModelFamily.DELINQUENCY else seconds * 1_000_000


def threshold_folds(
    data: TrainingSet, rows: IntArray, settings: TrainerSettings
) -> list[tuple[IntArray, IntArray]]:
    """Cross-fitting folds over `rows`: (fit rows, scored rows), each group in one fold only.

    The threshold is chosen on the scores every row gets from a fit that never saw its group
    (its customer, its sheet), so all training rows serve, not just a slice of them; the
    holdout is never touched. Past `threshold_max_rows` whole groups are sampled (seeded).
    """
    groups = data.groups[rows] if data.groups is not None else rows
    unique = np.unique(groups)
    if len(unique) < settings.threshold_folds:
        return []
    if len(rows) > settings.threshold_max_rows:
        rng = np.random.default_rng(settings.random_seed)
        keep = round(len(unique) * settings.threshold_max_rows / len(rows))
        chosen = rng.choice(unique, size=max(keep, settings.threshold_folds), replace=False)
        inside = np.isin(groups, chosen)
        rows, groups, unique = rows[inside], groups[inside], np.unique(chosen)
    rng = np.random.default_rng(settings.random_seed)
    fold_of_group = rng.permutation(len(unique)) % settings.threshold_folds
    fold = fold_of_group[np.searchsorted(unique, groups)]
    return [
        (rows[fold != k], rows[fold == k])
        for k in range(settings.threshold_folds)
        if (fold == k).any()
    ]


def out_of_fold_threshold(
    data: TrainingSet,
    rows: IntArray,
    settings: TrainerSettings,
    fit_and_score: Callable[[IntArray, IntArray], FloatArray],
) -> tuple[float, str, list[str]]:
    """The threshold the configured rule picks on out-of-fold scores of the labelled `rows`.

    `fit_and_score(fit_rows, scored_rows)` fits the family's configuration on the first and
    scores the second. Folds whose fit part lacks a class are left out.
    """
    checked: list[IntArray] = []
    scores: list[FloatArray] = []
    for fit_rows, scored_rows in threshold_folds(data, data.labelled(rows), settings):
        if _both_classes(data.labels[fit_rows]) and len(scored_rows):
            checked.append(scored_rows)
            scores.append(fit_and_score(fit_rows, scored_rows))
    if not checked:
        empty = np.array([], dtype=np.float64)
        return chosen_threshold(np.array([], dtype=np.bool_), empty, settings)
    truth = data.labels[np.concatenate(checked)] >= 0.5
    return chosen_threshold(truth, np.concatenate(scores), settings)


def bundle_scores(bundle: ModelBundle, data: TrainingSet, rows: IntArray) -> Scores:
    """The bundle's scores for `rows` of `data` (its features picked by name)."""
    columns = np.array([data.feature_names.index(n) for n in bundle.feature_names], np.int64)
    return bundle.score(data.features[np.ix_(rows, columns)])


def evaluate(
    bundle: ModelBundle, data: TrainingSet, rows: IntArray | None = None
) -> dict[str, float]:
    """The bundle's metrics on the holdout of `data`, or on `rows` of it (champions are scored
    with this too)."""
    rows = data.holdout_rows if rows is None else rows
    metrics: dict[str, float] = {}
    if len(rows) == 0:
        return metrics
    scores = bundle_scores(bundle, data, rows)
    labelled = ~np.isnan(data.labels[rows])
    truth = data.labels[rows][labelled] >= 0.5
    metrics.update(binary_metrics(truth, scores.score[labelled], scores.flagged[labelled]))
    metrics["threshold"] = bundle.threshold
    metrics["flag_rate"] = anomaly_rate(scores.flagged)
    if data.family is ModelFamily.DELINQUENCY and "f1" in metrics:
        past_due = data.features[rows, data.feature_names.index("days_past_due")] > 0
        rule = binary_metrics(truth, past_due[labelled].astype(np.float64), past_due[labelled])
        metrics["past_due_rule_f1"] = rule["f1"]
    if "f1" in metrics and bundle.flagged_by != FLAGGED_BY_ISOLATION_FOREST:
        metrics.update(_threshold_yardsticks(truth, scores.score[labelled]))
    if scores.anomaly_flagged is not None and scores.anomaly_score is not None:
        metrics["anomaly_rate"] = anomaly_rate(scores.anomaly_flagged)
        detector = bundle.models[ISOLATION_FOREST]
        if isinstance(detector, IsolationForest) and isinstance(detector.contamination, float):
            metrics["isolation_contamination"] = detector.contamination
        if truth.any() and not truth.all():
            second_opinion = binary_metrics(
                truth, scores.anomaly_score[labelled], scores.anomaly_flagged[labelled]
            )
            metrics["isolation_forest_auc"] = second_opinion["auc"]
    metrics["train_samples"] = float(len(data.train_rows))
    return metrics


def _threshold_yardsticks(truth: BoolArray, probability: FloatArray) -> dict[str, float]:
    """What the chosen threshold is measured against on the same holdout: the F1 of flagging
    from 0.5 (the fixed threshold of old), and the best F1 any threshold reaches (chosen in
    hindsight, on the holdout itself: a bound, not something a model can deploy)."""
    at_half = binary_metrics(truth, probability, probability >= 0.5)
    best = choose_threshold(truth, probability, ThresholdRule.parse("max_f1"))
    return {
        "f1_at_0_5": at_half["f1"],
        "best_f1": best.f1 if best is not None else at_half["f1"],
    }


@dataclass(frozen=True)
class ChampionEvidence:
    """The champion on the challenger's holdout: what the gate compares them on."""

    metrics: dict[str, float]
    """The champion's metrics on the whole holdout."""
    overlap: Overlap
    unlabelled: UnlabelledEvidence


def champion_evidence(
    challenger: ModelBundle,
    champion: ModelBundle,
    data: TrainingSet,
    champion_data_end: datetime,
    champion_recorded_auc: float | None = None,
) -> ChampionEvidence:
    """Score the champion on the holdout beside the challenger.

    `champion_data_end` is the time of the newest row the champion was fitted on (its data
    cutoff when the version does not record it): holdout rows up to it may be in its fit.
    `champion_recorded_auc` is the AUC recorded when the champion was evaluated.
    """
    rows = data.holdout_rows
    seen = data.times[rows] <= time_value(data.family, champion_data_end)
    unseen = rows[~seen]
    overlap = Overlap(
        seen_rows=int(seen.sum()),
        holdout_rows=len(rows),
        champion_recorded_auc=champion_recorded_auc,
    )
    if seen.any() and len(unseen):
        ours, theirs = evaluate(challenger, data, unseen), evaluate(champion, data, unseen)
        if "auc" in ours and "auc" in theirs:
            overlap = replace(overlap, unseen_challenger=ours, unseen_champion=theirs)
    ours_scores = bundle_scores(challenger, data, rows)
    their_scores = bundle_scores(champion, data, rows)
    same_scale = challenger.flagged_by == champion.flagged_by
    unlabelled = UnlabelledEvidence(
        rows=len(rows),
        flag_rate=anomaly_rate(ours_scores.flagged),
        champion_flag_rate=anomaly_rate(their_scores.flagged),
        agreement=float(np.mean(ours_scores.flagged == their_scores.flagged)) if len(rows) else 0.0,
        score_psi=(
            population_stability(their_scores.score, ours_scores.score) if same_scale else None
        ),
    )
    return ChampionEvidence(evaluate(champion, data), overlap, unlabelled)


def _threads(settings: TrainerSettings) -> int:
    return settings.training_threads or os.cpu_count() or 1


# --- delinquency -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DelinquencyRows:
    """The labelled statements of some customers, before the split: what a delinquency training
    set is assembled from. Rows in (customer, date, statement id) order; a customer's rows are
    never split between two of these, so parts built apart (one per customer-hash range on a
    cluster) merge back into what one frame would have given (`merged_rows`)."""

    matrix: FloatArray
    """DELINQUENCY_FEATURES of the statements whose label is known."""
    target: FloatArray
    days: IntArray
    customer_ids: npt.NDArray[np.object_]
    statements: int
    """Statements read, labelled or not."""


def delinquency_rows(
    activity: pd.DataFrame, profiles: pd.DataFrame, *, cutoff_day: int, settings: TrainerSettings
) -> DelinquencyRows:
    """Features and point-in-time labels of `activity`, the rows whose label is known."""
    built = labelled_delinquency_features(
        activity,
        profiles,
        cutoff_day=cutoff_day,
        horizon_days=settings.delinquency_horizon_days,
        delinquent_days_past_due=settings.delinquent_days_past_due,
    )
    features, labels = built.features, built.labels
    known = labels.known
    return DelinquencyRows(
        matrix=_known_matrix(features, DELINQUENCY_FEATURES, known),
        target=labels.delinquent[known].astype(np.float64),
        days=features["statement_day"].to_numpy(dtype=np.int64)[known],
        customer_ids=features["customer_id"].to_numpy(dtype=object)[known],
        statements=len(features),
    )


def merged_rows(parts: list[DelinquencyRows]) -> DelinquencyRows:
    """Parts over disjoint sets of customers (at least one) as one: customers in the order one
    frame of all of them would have had (pandas' sort order of the ids), each customer's rows as
    they were."""
    ids = np.concatenate([p.customer_ids for p in parts])
    order = np.argsort(sort_ranks(pd.Series(ids, dtype=object)), kind="stable")
    # Where each part's rows go, written straight into one column-major matrix: the matrix is
    # the largest thing a training holds, and a concatenate-then-reorder copied it three times.
    destination = np.empty_like(order)
    destination[order] = np.arange(len(order))
    width = parts[0].matrix.shape[1]
    matrix = np.empty((len(ids), width), dtype=np.float64, order="F")
    start = 0
    for part in parts:
        rows = destination[start : start + len(part.target)]
        for column in range(width):
            matrix[rows, column] = part.matrix[:, column]
        start += len(part.target)
    return DelinquencyRows(
        matrix=matrix,
        target=np.concatenate([p.target for p in parts])[order],
        days=np.concatenate([p.days for p in parts])[order],
        customer_ids=ids[order],
        statements=sum(p.statements for p in parts),
    )


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
    rows = delinquency_rows(activity, profiles, cutoff_day=cutoff_day, settings=settings)
    return delinquency_training_set(rows, settings=settings, selection=selection, minimums=minimums)


def delinquency_training_set(
    rows: DelinquencyRows,
    *,
    settings: TrainerSettings,
    selection: CustomerSelection | None = None,
    minimums: bool = True,
) -> TrainingSet:
    """The training set of `rows`: split by statement date, checked against the minimums."""
    matrix, target, days = rows.matrix, rows.target, rows.days
    observations = len(target)
    positives = int(target.sum())
    groups = pd.factorize(pd.Series(rows.customer_ids, dtype=object))[0].astype(np.int64)
    customers = int(groups.max(initial=-1)) + 1  # codes are 0, 1, … (-1: no customer id)
    split = time_split(days, settings.holdout_fraction, embargo=settings.delinquency_horizon_days)
    counts = DataCounts(
        labelled_observations=observations,
        delinquent_observations=positives,
        train_labelled_observations=len(split.train),
        train_delinquent_observations=int(target[split.train].sum()),
    )
    _require(ModelFamily.DELINQUENCY, counts, settings, minimums)
    return TrainingSet(
        family=ModelFamily.DELINQUENCY,
        features=matrix,
        labels=target,
        times=days,
        split=split,
        feature_names=DELINQUENCY_FEATURES,
        embargo=settings.delinquency_horizon_days,
        groups=groups,
        customers=customers,
        summary={
            "statements_loaded": float(rows.statements),
            "observations": float(observations),
            "positive_rate": positives / observations,
            "selected_customers": float(len(selection.customer_ids) if selection else customers),
            "new_customers_selected": float(selection.new_selected if selection else 0),
            "train_positive_rate": float(target[split.train].mean()) if len(split.train) else 0.0,
            "holdout_positive_rate": (
                float(target[split.holdout].mean()) if len(split.holdout) else 0.0
            ),
        },
    )


def _known_matrix(features: pd.DataFrame, names: tuple[str, ...], known: BoolArray) -> FloatArray:
    """`feature_matrix` of the `known` rows, filled column by column (no copy of the frame)."""
    # Column-major, as DataFrame.to_numpy gives it.
    matrix = np.empty((int(known.sum()), len(names)), dtype=np.float64, order="F")
    for j, name in enumerate(names):
        matrix[:, j] = features[name].to_numpy(dtype=np.float64)[known]
    return matrix


Boost = Callable[[FloatArray, IntArray, FloatArray, TrainerSettings], xgb.Booster]
"""Fits gradient-boosted trees on (features, rows of them, truth of those rows): in this
process, or on a cluster (which copies the rows it sends block by block, not all at once)."""


def xgboost_params(settings: TrainerSettings) -> dict[str, object]:
    """The booster's parameters on either path (threads aside)."""
    return {
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "tree_method": "hist",
        "max_depth": settings.xgb_max_depth,
        "eta": settings.xgb_learning_rate,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 2.0,
        "seed": settings.random_seed,
    }


def _xgboost(
    features: FloatArray, rows: IntArray, truth: FloatArray, settings: TrainerSettings
) -> xgb.Booster:
    """Gradient-boosted trees (histogram method) with the configured depth, rate and rounds."""
    params = {**xgboost_params(settings), "nthread": _threads(settings)}
    return xgb.train(params, xgb.DMatrix(features[rows], label=truth), settings.xgb_rounds)


def _both_classes(truth: FloatArray) -> bool:
    return len(truth) >= 2 and bool(truth.min() != truth.max())


def chosen_threshold(
    truth: BoolArray, score: FloatArray, settings: TrainerSettings
) -> tuple[float, str, list[str]]:
    """The threshold the configured rule picks on held-out scores: (threshold, how, notes).

    Falls back to `decision_threshold`, with a note saying why, when the scores lack
    a class or no threshold meets the rule's target.
    """
    rule, fallback = settings.rule, settings.decision_threshold
    rows = len(truth)
    positives = int(np.sum(truth))
    if positives == 0 or positives == rows:
        why = f"the out-of-fold scores ({rows} labelled rows, {positives} positive) lack a class"
    else:
        choice = choose_threshold(truth, score, rule)
        if choice is not None:
            how = (
                f"{rule} on {rows} out-of-fold rows (precision {choice.precision:.3f}, "
                f"recall {choice.recall:.3f}, F1 {choice.f1:.3f})"
            )
            return choice.threshold, how, []
        why = f"no threshold reaches {rule} on the {rows} out-of-fold rows"
    note = f"threshold {fallback:g} (RETRAINER_DECISION_THRESHOLD): {why}"
    return fallback, "decision_threshold", [note]


def fit_delinquency(
    data: TrainingSet, settings: TrainerSettings, boost: Boost = _xgboost
) -> ModelBundle:
    """XGBoost on the training split, flagging from the threshold the configured rule chose.

    The threshold is chosen on out-of-fold scores of the training split (folds of whole
    customers, see `threshold_folds`); the model is then fitted on the whole training split, the
    threshold carried over.
    """
    rows = data.train_rows
    truth = data.labels[rows]
    if not _both_classes(truth):
        raise InsufficientData(
            f"the training part ({len(rows)} observations before the holdout) needs both "
            "delinquent and sound observations"
        )

    def fit_and_score(fit_rows: IntArray, scored_rows: IntArray) -> FloatArray:
        trial = boost(data.features, fit_rows, data.labels[fit_rows], settings)
        return np.asarray(trial.predict(xgb.DMatrix(data.features[scored_rows])), np.float64)

    threshold, how, notes = out_of_fold_threshold(data, rows, settings, fit_and_score)
    return ModelBundle(
        family=ModelFamily.DELINQUENCY,
        models={CLASSIFIER: boost(data.features, rows, truth, settings)},
        feature_names=data.feature_names,
        threshold=threshold,
        notes=tuple(notes),
        threshold_source=how,
        fitted_rows=len(rows),
        fitted_until=data.time_of(int(data.times[rows].max())),
    )


# --- expense fraud -----------------------------------------------------------------------------


def _require(
    family: ModelFamily, counts: DataCounts, settings: TrainerSettings, minimums: bool
) -> None:
    """Raise InsufficientData with the gaps of schemas.minimums (the policy checks the same).

    Without `minimums` (a forced request) only what any fit needs is required.
    """
    needed = (
        settings.minimums()
        if minimums
        else DataMinimums.forced(settings.delinquency_horizon_days, settings.holdout_fraction)
    )
    gaps = data_gaps(family, counts, needed)
    if gaps:
        raise InsufficientData("; ".join(gaps))


def check_expense_minimums(
    expenses: pd.DataFrame, settings: TrainerSettings, minimums: bool = True
) -> None:
    """The expense app's gate: enough expenses, and enough sheets with enough lines each."""
    lines_per_sheet = expenses.groupby("sheet_id", sort=False).size()
    full_sheets = int((lines_per_sheet >= settings.min_lines_per_sheet).sum())
    counts = DataCounts(expenses=len(expenses), sheets_with_min_lines=full_sheets)
    _require(ModelFamily.EXPENSE_FRAUD, counts, settings, minimums)


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
    check_expense_minimums(expenses, settings, minimums)
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
        groups=pd.factorize(features["sheet_id"])[0].astype(np.int64),
        summary={
            "expenses_loaded": float(len(features)),
            "sheets_loaded": float(features["sheet_id"].nunique()),
            "labelled_expenses": float(labelled.sum()),
            "positive_rate": float(np.nanmean(target)) if labelled.any() else 0.0,
        },
    )


def detector_rows(data: TrainingSet, rows: IntArray) -> IntArray:
    """The rows the anomaly detector learns "normal" from: every line not labelled fraud.

    Known fraud left in would teach it that fraud is normal (after a fraud-heavy spell, most of
    all); unlabelled lines stay, they are what the detector is for.
    """
    return rows[~(data.labels[rows] >= 0.5)]


def detector_contamination(
    data: TrainingSet, rows: IntArray, settings: TrainerSettings
) -> tuple[float, str]:
    """The detector's contamination and where it came from.

    With `min_labelled_expenses` labels among `rows` (and label-following on) it is the observed
    fraud rate, clipped to CONTAMINATION_RANGE; otherwise the configured value.
    """
    labelled = data.labelled(rows)
    if settings.contamination_follows_labels and len(labelled) >= settings.min_labelled_expenses:
        rate = float(np.mean(data.labels[labelled] >= 0.5))
        low, high = CONTAMINATION_RANGE
        clipped = min(max(rate, low), high)
        return clipped, f"fraud-label rate {rate:.3f} of {len(labelled)} labels"
    return settings.isolation_contamination, "RETRAINER_ISOLATION_CONTAMINATION"


def _isolation_forest(
    data: TrainingSet, rows: IntArray, settings: TrainerSettings
) -> IsolationForest:
    contamination, source = detector_contamination(data, rows, settings)
    log.debug("isolation forest contamination %.3f (%s)", contamination, source)
    detector = IsolationForest(
        n_estimators=settings.forest_trees,
        contamination=contamination,
        random_state=settings.random_seed,
        n_jobs=_threads(settings),
    )
    detector.fit(np.nan_to_num(data.features[detector_rows(data, rows)], nan=0.0))
    return detector


def _random_forest(
    data: TrainingSet, rows: IntArray, settings: TrainerSettings
) -> RandomForestClassifier:
    classifier = RandomForestClassifier(
        n_estimators=settings.forest_trees,
        min_samples_leaf=2,
        class_weight="balanced",
        random_state=settings.random_seed,
        n_jobs=_threads(settings),
    )
    labelled = data.labelled(rows)
    classifier.fit(data.features[labelled], data.labels[labelled] >= 0.5)
    return classifier


def fit_expense_fraud(data: TrainingSet, settings: TrainerSettings) -> ModelBundle:
    """An IsolationForest on the training lines not labelled fraud; a RandomForest too once labels
    suffice, which then flags (its threshold chosen on out-of-fold scores) while the detector
    gives a second opinion."""
    rows = data.train_rows
    if len(rows) < 2:
        raise InsufficientData(f"at least 2 expenses before the holdout; found {len(rows)}")
    labelled = data.labelled(rows)
    frauds = int((data.labels[labelled] >= 0.5).sum())
    sound = len(labelled) - frauds
    notes: list[str] = []
    supervised = (
        len(labelled) >= settings.min_labelled_expenses
        and frauds >= settings.min_fraud_labels
        and sound >= 1
    )
    models: dict[str, object] = {ISOLATION_FOREST: _isolation_forest(data, rows, settings)}
    threshold, how = settings.decision_threshold, "decision_threshold"
    if supervised:
        # As for delinquency: the threshold from out-of-fold scores, the model from the whole
        # training split.
        def fit_and_score(fit_rows: IntArray, scored_rows: IntArray) -> FloatArray:
            trial = _random_forest(data, fit_rows, settings)
            return np.asarray(trial.predict_proba(data.features[scored_rows])[:, 1], np.float64)

        threshold, how, fallback = out_of_fold_threshold(data, rows, settings, fit_and_score)
        notes.extend(fallback)
        models[RANDOM_FOREST] = _random_forest(data, rows, settings)
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
        threshold=threshold,
        notes=tuple(notes),
        threshold_source=how,
        fitted_rows=len(rows),
        fitted_until=data.time_of(int(data.times[rows].max())),
    )


def refit(
    data: TrainingSet, settings: TrainerSettings, evaluated: ModelBundle, boost: Boost = _xgboost
) -> ModelBundle:
    """The evaluated configuration fitted again on every row up to the cutoff, holdout included.

    What the gate promotes is this: same settings, same models, the threshold chosen for the
    evaluated fit carried over. Nothing is held out any more, so the promoted model has seen the
    newest labelled data of its window.
    """
    rows = data.all_rows
    models: dict[str, object]
    if data.family is ModelFamily.DELINQUENCY:
        models = {CLASSIFIER: boost(data.features, rows, data.labels[rows], settings)}
    else:
        models = {ISOLATION_FOREST: _isolation_forest(data, rows, settings)}
        if RANDOM_FOREST in evaluated.models:
            models[RANDOM_FOREST] = _random_forest(data, rows, settings)
    return replace(
        evaluated,
        models=models,
        fitted_rows=len(rows),
        fitted_until=data.time_of(int(data.times[rows].max())),
    )


def fit(data: TrainingSet, settings: TrainerSettings, boost: Boost = _xgboost) -> ModelBundle:
    if data.family is ModelFamily.DELINQUENCY:
        return fit_delinquency(data, settings, boost)
    return fit_expense_fraud(data, settings)
