"""The promotion gate: a pure decision from the challenger's and champion's holdout metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

GATE_METRIC = "auc"
"""Both models are scored on the same holdout; this is the number they are compared on."""


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, why (for people and the log), and whether force overrode a rejection."""

    promote: bool
    reason: str
    overridden: bool = False


def decide(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    tolerance: float,
    force: bool = False,
    champion_version: str | None = None,
) -> GateDecision:
    """Promote unless the challenger is worse than the champion by more than `tolerance`.

    `champion` holds the champion's metrics on the challenger's holdout (None = no champion, or
    none that can be scored on it). A forced request promotes even a worse challenger, and the
    decision says it was overridden.
    """
    name = champion_version or "the champion"
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
