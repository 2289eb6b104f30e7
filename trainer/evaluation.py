"""Time-ordered holdout splits and the metrics every model version is judged by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

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

    AUC is left out when the truth has a single class: it is undefined, not 0.5.
    """
    truth = np.asarray(truth, dtype=np.bool_)
    metrics: dict[str, float] = {
        "holdout_samples": float(len(truth)),
        "holdout_positive_rate": float(truth.mean()) if len(truth) else 0.0,
    }
    if len(truth) == 0:
        return metrics
    if truth.any() and not truth.all():
        metrics["auc"] = float(roc_auc_score(truth, score))
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, flagged, average="binary", zero_division=0
    )
    metrics["precision"] = float(precision)
    metrics["recall"] = float(recall)
    metrics["f1"] = float(f1)
    return metrics


def anomaly_rate(flagged: BoolArray) -> float:
    """Share of rows an anomaly detector flags (0 for no rows)."""
    return float(np.mean(flagged)) if len(flagged) else 0.0
