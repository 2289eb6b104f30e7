"""Where a probability becomes a flag: the rule users configure and how it picks a threshold.

Plain NumPy, no scikit-learn: the settings parse the rule, the trainer applies it to the scores
of rows held out of the fit that scored them (never the holdout the gate judges on).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    BoolArray = npt.NDArray[np.bool_]

RULE_VARIABLE = "RETRAINER_THRESHOLD_RULE"


class RuleKind(StrEnum):
    MAX_F1 = "max_f1"
    PRECISION = "precision"
    RECALL = "recall"


@dataclass(frozen=True)
class ThresholdRule:
    """`max_f1`, `precision:T` (most recall at precision ≥ T) or `recall:T` (most precision at
    recall ≥ T)."""

    kind: RuleKind
    target: float | None = None

    @classmethod
    def parse(cls, text: str) -> ThresholdRule:
        """Read the rule as users write it; ValueError names the variable and the forms."""
        forms = "max_f1, precision:<0..1> or recall:<0..1> (e.g. precision:0.80)"
        value = text.strip().lower()
        if value == RuleKind.MAX_F1:
            return cls(RuleKind.MAX_F1)
        name, _, number = value.partition(":")
        if name in (RuleKind.PRECISION, RuleKind.RECALL) and number:
            try:
                target = float(number)
            except ValueError:
                target = float("nan")
            if 0.0 < target <= 1.0:
                return cls(RuleKind(name), target)
            raise ValueError(f"{RULE_VARIABLE}={text!r}: the target must lie in (0, 1]; {forms}")
        raise ValueError(f"{RULE_VARIABLE}={text!r} is not a threshold rule; use {forms}")

    def __str__(self) -> str:
        return self.kind.value if self.target is None else f"{self.kind.value}:{self.target:g}"


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and what it achieves on the rows it was chosen on."""

    threshold: float
    precision: float
    recall: float
    f1: float


def choose_threshold(
    truth: BoolArray, score: FloatArray, rule: ThresholdRule
) -> ThresholdChoice | None:
    """The threshold `rule` picks on (truth, score); None when no threshold meets its target or
    the rows lack a class.

    Candidates are the distinct scores; a score counts as flagged when `score >= threshold`. The
    threshold returned lies halfway between the lowest flagged score and the next lower one, so
    the same rows are flagged while unseen scores near the boundary are not decided by a tie.
    """
    # Here, not at the top: the settings import this module, and a CLI command that only reads
    # them should not pay for NumPy.
    import numpy as np

    truth = np.asarray(truth, dtype=np.bool_)
    score = np.asarray(score, dtype=np.float64)
    positives = int(truth.sum())
    if positives == 0 or positives == len(truth):
        return None
    order = np.argsort(-score, kind="stable")
    ranked, hits = score[order], truth[order]
    true_positives = np.cumsum(hits)
    # The last row of each run of equal scores: flagging from a threshold takes whole runs.
    last = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    flagged = last + 1
    tp = true_positives[last].astype(np.float64)
    precision = tp / flagged
    recall = tp / positives
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(tp > 0, 2 * precision * recall / (precision + recall), 0.0)
    if rule.kind is RuleKind.MAX_F1:
        candidates = np.flatnonzero(f1 == f1.max())
        # Ties: the fewest flags (highest threshold).
        best = int(candidates[0])
    elif rule.kind is RuleKind.PRECISION:
        assert rule.target is not None  # noqa: S101 - parse sets it
        ok = np.flatnonzero(precision >= rule.target - 1e-12)
        if len(ok) == 0:
            return None
        best = int(ok[np.lexsort((-precision[ok], -recall[ok]))[0]])
    else:
        assert rule.target is not None  # noqa: S101
        ok = np.flatnonzero(recall >= rule.target - 1e-12)
        if len(ok) == 0:
            return None
        best = int(ok[np.lexsort((-recall[ok], -precision[ok]))[0]])
    lowest_flagged = float(ranked[last[best]])
    below = last[best] + 1
    threshold = lowest_flagged
    if below < len(ranked):
        threshold = (lowest_flagged + float(ranked[below])) / 2
    return ThresholdChoice(
        threshold=threshold,
        precision=float(precision[best]),
        recall=float(recall[best]),
        f1=float(f1[best]),
    )
