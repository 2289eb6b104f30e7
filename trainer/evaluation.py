"""Time-ordered holdout splits and the metrics every model version is judged by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

from schemas.drift import DEFAULT_BINS, bin_values, psi

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Split:
    """Row indices for training and for the holdout; every holdout row is later than training."""

    train: IntArray
    holdout: IntArray
    holdout_start: int
    """The first instant of the holdout, in the unit of the times that were split."""


def time_split(times: IntArray, holdout_fraction: float, embargo: int = 0) -> Split:
    """The latest `holdout_fraction` of rows (by time) are held out.

    Rows whose time ties with the first holdout row go to the holdout too, so no instant is on
    both sides. Training rows within `embargo` before the holdout start are dropped: their labels
    are decided by what happens during the holdout, which would leak into the evaluation.
    """
    n = len(times)
    order = np.argsort(times, kind="stable")
    cut = min(max(round(n * (1.0 - holdout_fraction)), 0), n)
    if cut >= n:
        return Split(order, np.array([], dtype=np.int64), int(np.iinfo(np.int64).max))
    start = int(times[order[cut]])
    in_holdout = times >= start
    keep_train = times < start - embargo
    return Split(
        train=np.flatnonzero(keep_train).astype(np.int64),
        holdout=np.flatnonzero(in_holdout).astype(np.int64),
        holdout_start=start,
    )


def binary_metrics(truth: BoolArray, score: FloatArray, flagged: BoolArray) -> dict[str, float]:
    """AUC (of the score), precision, recall and F1 (of the flags), with the counts behind them.

    The four figures are left out when the truth has a single class: AUC and recall are
    undefined then (not 0.5, not 0), and precision or F1 measured against one class say nothing
    about telling the classes apart. `holdout_samples` and `holdout_positives` are always there,
    so a reader (and the promotion gate) can tell why.
    """
    truth = np.asarray(truth, dtype=np.bool_)
    positives = int(truth.sum())
    metrics: dict[str, float] = {
        "holdout_samples": float(len(truth)),
        "holdout_positives": float(positives),
        "holdout_positive_rate": positives / len(truth) if len(truth) else 0.0,
    }
    if positives == 0 or positives == len(truth):
        return metrics
    metrics["auc"] = float(roc_auc_score(truth, score))
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, flagged, average="binary", zero_division=0
    )
    metrics["precision"] = float(precision)
    metrics["recall"] = float(recall)
    metrics["f1"] = float(f1)
    return metrics


def holdout_gap(metrics: Mapping[str, float]) -> str | None:
    """Why `metrics` are no evidence of a model's quality (its holdout lacks a class), or None.

    Reads the counts `binary_metrics` leaves; metrics with an AUC had both classes.
    """
    if "auc" in metrics:
        return None
    samples = round(metrics.get("holdout_samples", 0.0))
    positives = round(
        metrics.get("holdout_positives", metrics.get("holdout_positive_rate", 0.0) * samples)
    )
    if samples == 0:
        return "holdout has no labelled observations"
    if positives == 0:
        return f"holdout has no positives (0 of {samples})"
    if positives >= samples:
        return f"holdout has no negatives ({samples} of {samples} positive)"
    return None


def anomaly_rate(flagged: BoolArray) -> float:
    """Share of rows an anomaly detector flags (0 for no rows)."""
    return float(np.mean(flagged)) if len(flagged) else 0.0


def population_stability(
    reference: FloatArray, current: FloatArray, bins: int = DEFAULT_BINS
) -> float:
    """PSI of `current` against `reference`, on the reference's quantile bins: the drift
    module's, which the worker measures live traffic with too (0 for an empty side)."""
    if len(reference) == 0 or len(current) == 0:
        return 0.0
    return psi(bin_values(np.asarray(reference, dtype=np.float64), bins), current)
