"""The promotion gate: a pure decision from the challenger's and champion's holdout metrics.

Holdout metrics are evidence only when the holdout holds both classes: with no positives (or
no negatives) AUC is undefined and precision, recall and F1 say nothing. Such a challenger is
promoted only where nothing better can be had, and then flagged as unevaluated:

- the family has no champion at all (its first model), or
- it is an unsupervised detector (expense-fraud's IsolationForest without labels enough for a
  RandomForest), which is refreshed on new data by design and was never judged on labels.

Otherwise it is rejected whatever the request says: `force` overrides a worse comparison, not a
missing one. A person who wants it all the same promotes it by hand (`retrainer models
promote VERSION --force`), where the choice is theirs and is logged as theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trainer.evaluation import holdout_gap

GATE_METRIC = "auc"
"""Both models are scored on the same holdout; this is the number they are compared on."""


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, why (for people and the log), and whether force overrode a rejection."""

    promote: bool
    reason: str
    overridden: bool = False
    holdout_gap: str | None = None
    """Why the challenger's holdout metrics are no evidence (e.g. "holdout has no positives
    (0 of 40)"); None when the holdout holds both classes."""

    @property
    def unevaluated(self) -> bool:
        """Promoted although its holdout could not tell whether it is any good."""
        return self.promote and self.holdout_gap is not None


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    tolerance: float,
    force: bool = False,
    champion_version: str | None = None,
    supervised: bool = True,
) -> GateDecision:
    """Promote unless the challenger is worse than the champion by more than `tolerance`.

    `champion` holds the champion's metrics on the challenger's holdout (None = no champion, or
    none that can be scored on it: `champion_version` tells the two apart). A forced request
    promotes even a worse challenger, and the decision says it was overridden. A holdout without
    both classes is no evidence either way (see the module's docstring); `supervised` says
    whether the challenger learnt from labels at all.
    """
    name = champion_version or "the champion"
    gap = holdout_gap(challenger)
    if gap is not None:
        return _without_evidence(
            gap, champion is not None or champion_version is not None, name, supervised, force
        )
    if champion is None:
        return GateDecision(True, "no champion to compare with")
    ours, theirs = challenger.get(GATE_METRIC), champion.get(GATE_METRIC)
    if theirs is None:
        return GateDecision(True, f"{name} has no {GATE_METRIC} on this holdout")
    if ours is None:
        verdict = f"challenger has no {GATE_METRIC} on the holdout ({name}: {theirs:.4f})"
    elif ours >= theirs - tolerance:
        return GateDecision(
            True,
            f"{GATE_METRIC} {ours:.4f} vs {name} {theirs:.4f} (tolerance {tolerance:g})",
        )
    else:
        verdict = (
            f"{GATE_METRIC} {ours:.4f} is worse than {name}'s {theirs:.4f} "
            f"by more than {tolerance:g}"
        )
    if force:
        return GateDecision(True, f"forced: promoted although {verdict}", overridden=True)
    return GateDecision(False, f"rejected: {verdict}")


def _without_evidence(
    gap: str, has_champion: bool, name: str, supervised: bool, force: bool
) -> GateDecision:
    if not has_champion:
        return GateDecision(
            True,
            f"unevaluated: {gap}, so its metrics say nothing about its quality; promoted only "
            "because the family has no champion yet",
            holdout_gap=gap,
        )
    if not supervised:
        return GateDecision(
            True,
            f"unevaluated: {gap}; the unsupervised anomaly detector is refreshed on new data "
            f"without labelled evidence (replacing {name})",
            holdout_gap=gap,
        )
    forced = " (force does not override a holdout that cannot compare)" if force else ""
    return GateDecision(
        False,
        f"rejected: {gap}, which is no evidence that it does as well as {name}{forced}; "
        "promote it by hand with `retrainer models promote VERSION --force` if you must",
        holdout_gap=gap,
    )
