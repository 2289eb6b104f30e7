"""Realised quality of live scores once their labels are known: rank-based AUC, precision and
recall at the flags. Pure NumPy, so the worker needs no scikit-learn to measure its champion.

It also labels scored delinquency statements with the trainer's own rule
(`schemas.features.delinquency_labels`), so realised and holdout figures mean the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from schemas.features import (
    ACTIVITY_COLUMNS,
    DEFAULT_DELINQUENT_DAYS_PAST_DUE,
    DEFAULT_HORIZON_DAYS,
    delinquency_labels,
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def rank_auc(truth: BoolArray, score: FloatArray) -> float | None:
    """Area under the ROC curve from ranks (Mann–Whitney U), ties counted as half.

    None when `truth` holds a single class: the AUC is undefined then, not 0.5.
    """
    truth = np.asarray(truth, dtype=np.bool_)
    score = np.asarray(score, dtype=np.float64)
    if truth.shape != score.shape:
        raise ValueError(f"{truth.shape} labels for {score.shape} scores")
    if not np.all(np.isfinite(score)):
        raise ValueError("scores must be finite")
    positives = int(truth.sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    # The average rank (1-based) of each group of tied scores, then of each row.
    ends = np.cumsum(counts).astype(np.float64)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = float(ranks[truth].sum()) - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


@dataclass(frozen=True)
class RealisedQuality:
    """A version's live scores measured against the labels that arrived since."""

    samples: int
    positives: int
    auc: float | None
    precision: float | None
    """Share of flagged rows that were positive; None when nothing was flagged."""
    recall: float | None
    """Share of positives that were flagged; None without positives."""

    @property
    def both_classes(self) -> bool:
        return 0 < self.positives < self.samples


def realised_quality(truth: BoolArray, score: FloatArray, flagged: BoolArray) -> RealisedQuality:
    """AUC of the score, precision and recall of the flags; rows with no finite score are left
    out of the AUC (a line scored without a model has none) but not of the flags."""
    truth = np.asarray(truth, dtype=np.bool_)
    score = np.asarray(score, dtype=np.float64)
    flagged = np.asarray(flagged, dtype=np.bool_)
    finite = np.isfinite(score)
    positives = int(truth.sum())
    flagged_count = int(flagged.sum())
    hits = int((truth & flagged).sum())
    return RealisedQuality(
        samples=len(truth),
        positives=positives,
        auc=rank_auc(truth[finite], score[finite]),
        precision=hits / flagged_count if flagged_count else None,
        recall=hits / positives if positives else None,
    )


def statements_in_label_order(activity: pd.DataFrame) -> pd.DataFrame:
    """Statements sorted as `delinquency_labels` answers (customer, date, statement id)."""
    frame = activity.loc[:, list(ACTIVITY_COLUMNS)].copy()
    frame["_day"] = pd.to_datetime(frame["statement_date"]).to_numpy(dtype="datetime64[D]")
    frame = frame.sort_values(["customer_id", "_day", "statement_id"], kind="stable")
    return frame.drop(columns="_day").reset_index(drop=True)


def known_delinquency(
    activity: pd.DataFrame,
    *,
    cutoff_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    delinquent_days_past_due: int = DEFAULT_DELINQUENT_DAYS_PAST_DUE,
) -> pd.Series:
    """statement_id -> delinquent, for the statements whose label is known at `cutoff_day`
    (a day number since 1970-01-01), by the trainer's labelling rule."""
    ordered = statements_in_label_order(activity)
    labels = delinquency_labels(
        ordered,
        cutoff_day=cutoff_day,
        horizon_days=horizon_days,
        delinquent_days_past_due=delinquent_days_past_due,
    )
    known = ordered.loc[labels.known, "statement_id"].to_numpy()
    return pd.Series(labels.delinquent[labels.known], index=known, dtype=bool)
