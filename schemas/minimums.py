"""The minimum data a training needs: one definition, read by the worker's policy and the trainer.

The policy checks the counts before it asks for a training and the trainer checks the same counts
of what it loaded, with the same thresholds and the same words, so a request the policy sends is
never skipped by the trainer for a minimum the policy did not know about. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from schemas.families import ModelFamily


@dataclass(frozen=True)
class DataMinimums:
    """The thresholds (the earlier systems' gates before training)."""

    min_expenses: int = 50
    min_sheets: int = 2
    min_lines_per_sheet: int = 5
    min_observations: int = 100
    """Labelled delinquency observations: statements whose horizon ended by the cutoff."""
    min_positive_observations: int = 10
    """Of which delinquent (and at least one sound)."""
    horizon_days: int = 92
    """How a delinquency observation is labelled: delinquent if the customer reaches
    `delinquent_days_past_due` within this many days (schemas.features.delinquency_labels)."""
    delinquent_days_past_due: int = 30
    holdout_fraction: float = 0.2
    """The latest share of labelled observations held out to evaluate; the `horizon_days` before
    the holdout are left out of training too (their labels are decided inside the holdout)."""

    @classmethod
    def forced(cls, horizon_days: int = 92, holdout_fraction: float = 0.2) -> DataMinimums:
        """What a forced request still needs: something of each class to fit on."""
        return cls(
            min_expenses=2,
            min_sheets=0,
            min_lines_per_sheet=1,
            min_observations=2,
            min_positive_observations=1,
            horizon_days=horizon_days,
            holdout_fraction=holdout_fraction,
        )


@dataclass(frozen=True)
class DataCounts:
    """What there is, counted the same way by the policy (SQL) and the trainer (pandas)."""

    expenses: int = 0
    sheets_with_min_lines: int = 0
    """Sheets with at least `min_lines_per_sheet` lines."""
    labelled_observations: int = 0
    delinquent_observations: int = 0
    train_labelled_observations: int = 0
    """Labelled observations before the holdout and its embargo (see `training_part`)."""
    train_delinquent_observations: int = 0


def training_part(
    days: Sequence[int],
    labelled: Sequence[int],
    delinquent: Sequence[int],
    *,
    holdout_fraction: float,
    embargo_days: int,
) -> tuple[int, int]:
    """(labelled, delinquent) observations a delinquency fit trains on, from per-day counts.

    `days` ascending, one entry per statement day with its labelled and delinquent observations.
    The same split as trainer.evaluation.time_split: the latest `holdout_fraction` of the rows
    (whole days) is held out, and rows within `embargo_days` before its first day are dropped.
    """
    total = int(sum(labelled))
    cut = min(max(round(total * (1.0 - holdout_fraction)), 0), total)
    if cut >= total:
        return total, int(sum(delinquent))
    seen = 0
    start = days[-1]
    for day, count in zip(days, labelled, strict=True):
        if seen + count > cut:
            start = day
            break
        seen += count
    train_labelled = train_delinquent = 0
    for day, count, bad in zip(days, labelled, delinquent, strict=True):
        if day < start - embargo_days:
            train_labelled += count
            train_delinquent += bad
    return train_labelled, train_delinquent


def data_gaps(family: ModelFamily, counts: DataCounts, minimums: DataMinimums) -> list[str]:
    """What is missing before a model of `family` can be trained; empty when nothing is."""
    gaps: list[str] = []
    if family is ModelFamily.EXPENSE_FRAUD:
        if counts.expenses < minimums.min_expenses:
            gaps.append(f"at least {minimums.min_expenses} expenses; found {counts.expenses}")
        if counts.sheets_with_min_lines < minimums.min_sheets:
            gaps.append(
                f"at least {minimums.min_sheets} sheets with {minimums.min_lines_per_sheet}+ "
                f"expenses each; found {counts.sheets_with_min_lines}"
            )
        return gaps
    observations, positives = counts.labelled_observations, counts.delinquent_observations
    if observations < minimums.min_observations:
        gaps.append(
            f"at least {minimums.min_observations} labelled observations (statements whose "
            f"{minimums.horizon_days}-day horizon ended by the cutoff); found {observations}"
        )
    # Both classes are needed to fit, unless the minimums are turned off (0).
    one_class = minimums.min_observations > 0 and positives == observations
    if positives < minimums.min_positive_observations or one_class:
        gaps.append(
            f"at least {minimums.min_positive_observations} delinquent and 1 sound observation; "
            f"found {positives} delinquent of {observations}"
        )
    if not gaps and minimums.min_observations > 0:
        # Enough in all, yet the fit trains only on what lies before the holdout and its
        # embargo: the delinquent minimum (and one sound) must be there.
        train, train_bad = counts.train_labelled_observations, counts.train_delinquent_observations
        if train_bad < minimums.min_positive_observations or train_bad == train:
            gaps.append(
                f"at least {minimums.min_positive_observations} delinquent and 1 sound "
                f"observation before the holdout (the latest "
                f"{minimums.holdout_fraction:.0%} of observations and the "
                f"{minimums.horizon_days} days before it); found {train_bad} delinquent of "
                f"{train}"
            )
    return gaps
