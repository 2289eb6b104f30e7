"""The promotion gate: a pure decision from what the challenger and the champion did on one holdout.

It always compares something, and says which evidence decided (`GateDecision.evidence`):

- `no-champion`: the family has no champion yet; the challenger is promoted (flagged as
  unevaluated when its holdout lacks a class).
- `auc`: the holdout holds both classes. The challenger's AUC must not be below the champion's by
  more than the tolerance. A champion refitted on its whole window may have been fitted on part of
  this holdout (its newest fitted row is later than the holdout start): then both are compared on
  the holdout rows newer than the champion's data when those still hold both classes; else the
  challenger's holdout AUC is compared with the champion's recorded holdout AUC (the out-of-sample
  figure of its own evaluation) or, for a champion that recorded none, with its AUC on the whole
  holdout. The reason says how much of the holdout the champion had seen.
- `unlabelled`: the holdout has no labels or one class, so its AUC, precision, recall and F1 are
  reported but never count. Compared instead, on the same holdout rows (`UnlabelledEvidence`):
  1. where the family has a flag-rate band (expense-fraud: the policy's anomaly band), a
     challenger whose flag rate leaves the band while the champion's is inside is worse; one that
     brings it back inside is better; with both outside, the one nearer the band is better;
  2. otherwise the challenger is a refresh of the champion on newer data when it behaves like it:
     score PSI (challenger vs champion) at most `max_score_psi`, or flags agreeing on at least
     `min_flag_agreement` of the rows. A challenger that does neither changes behaviour without
     labelled evidence, and is worse.
- `none`: nothing can be compared (the champion cannot be scored and the holdout lacks a class).
  A supervised challenger is then rejected whatever the request says; an unsupervised detector is
  refreshed on new data by design.

`force` overrides a worse comparison (the decision says it was overridden), never a missing one:
a person who wants such a model promotes it by hand (`retrainer models promote VERSION --force`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trainer.evaluation import holdout_gap

GATE_METRIC = "auc"
"""Both models are scored on the same holdout; with both classes, they are compared on this."""

EVIDENCE_AUC = "auc"
EVIDENCE_UNLABELLED = "unlabelled"
EVIDENCE_NO_CHAMPION = "no-champion"
EVIDENCE_NONE = "none"


@dataclass(frozen=True)
class Overlap:
    """How much of the holdout the champion had been fitted on, and both models on the rest."""

    seen_rows: int
    holdout_rows: int
    unseen_challenger: Mapping[str, float] | None = None
    """The challenger's metrics on the holdout rows newer than the champion's data."""
    unseen_champion: Mapping[str, float] | None = None
    champion_recorded_auc: float | None = None
    """The champion's AUC on its own holdout when it was evaluated (out of sample for it)."""

    def seen_text(self, name: str) -> str:
        share = self.seen_rows / self.holdout_rows if self.holdout_rows else 0.0
        return (
            f"{name}'s data reach {self.seen_rows} of the {self.holdout_rows} holdout rows "
            f"({share:.0%})"
        )


@dataclass(frozen=True)
class UnlabelledEvidence:
    """Challenger and champion on the same holdout rows, without labels."""

    rows: int
    flag_rate: float
    champion_flag_rate: float
    agreement: float
    """Share of the rows both models flag alike."""
    score_psi: float | None
    """PSI of the challenger's scores against the champion's; None when they are not on one scale
    (different models flag)."""


@dataclass(frozen=True)
class UnlabelledRule:
    """The limits of the unlabelled comparison (see the module's docstring)."""

    band: tuple[float, float] | None = None
    max_score_psi: float = 0.25
    min_flag_agreement: float = 0.9


@dataclass(frozen=True)
class GateDecision:
    """Whether to promote, why (for people and the log), and whether force overrode a rejection."""

    promote: bool
    reason: str
    overridden: bool = False
    holdout_gap: str | None = None
    """Why the challenger's holdout metrics are no evidence (e.g. "holdout has no positives
    (0 of 40)"); None when the holdout holds both classes."""
    evidence: str = EVIDENCE_AUC
    """What decided: "auc", "unlabelled", "no-champion" or "none"."""

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
    overlap: Overlap | None = None,
    unlabelled: UnlabelledEvidence | None = None,
    rule: UnlabelledRule | None = None,
) -> GateDecision:
    """Promote unless the challenger compares worse than the champion (see the module docstring).

    `champion` holds the champion's metrics on the challenger's holdout (None = no champion, or
    none that can be scored on it: `champion_version` tells the two apart). `supervised` says
    whether the challenger learnt from labels at all.
    """
    name = champion_version or "the champion"
    gap = holdout_gap(challenger)
    if champion is None and champion_version is None:
        if gap is None:
            return GateDecision(True, "no champion to compare with", evidence=EVIDENCE_NO_CHAMPION)
        return GateDecision(
            True,
            f"unevaluated: {gap}, so its metrics say nothing about its quality; promoted only "
            "because the family has no champion yet",
            holdout_gap=gap,
            evidence=EVIDENCE_NO_CHAMPION,
        )
    if gap is None:
        return _on_auc(challenger, champion, name, tolerance, force, overlap)
    if unlabelled is not None and unlabelled.rows > 0:
        return _on_unlabelled(gap, unlabelled, rule or UnlabelledRule(), name, force)
    return _without_evidence(gap, name, supervised, force)


def _on_auc(
    challenger: Mapping[str, float],
    champion: Mapping[str, float] | None,
    name: str,
    tolerance: float,
    force: bool,
    overlap: Overlap | None,
) -> GateDecision:
    ours = challenger.get(GATE_METRIC)
    theirs = None if champion is None else champion.get(GATE_METRIC)
    if ours is None:
        known = "" if theirs is None else f" ({name}: {theirs:.4f})"
        return _worse(
            f"challenger has no {GATE_METRIC} on the holdout{known}", force, EVIDENCE_AUC, None
        )
    if theirs is None:
        return GateDecision(
            True, f"{name} has no {GATE_METRIC} on this holdout (challenger {ours:.4f})"
        )
    where = ""
    if overlap is not None and overlap.seen_rows > 0:
        unseen_ours = (overlap.unseen_challenger or {}).get(GATE_METRIC)
        unseen_theirs = (overlap.unseen_champion or {}).get(GATE_METRIC)
        unseen = overlap.holdout_rows - overlap.seen_rows
        if unseen_ours is not None and unseen_theirs is not None:
            ours, theirs = unseen_ours, unseen_theirs
            where = f" on the {unseen} holdout rows newer than {name}'s data"
        elif overlap.champion_recorded_auc is not None:
            where = (
                f" on its own holdout ({overlap.seen_text(name)} and the {unseen} newer rows lack "
                f"a class, so its {theirs:.4f} on them is not out of sample)"
            )
            theirs = overlap.champion_recorded_auc
        else:
            where = (
                f" on the whole holdout, though {overlap.seen_text(name)} (the {unseen} newer "
                "rows lack a class)"
            )
    if ours >= theirs - tolerance:
        return GateDecision(
            True,
            f"{GATE_METRIC} {ours:.4f} vs {name} {theirs:.4f}{where} (tolerance {tolerance:g})",
        )
    verdict = (
        f"{GATE_METRIC} {ours:.4f} is worse than {name}'s {theirs:.4f}{where} "
        f"by more than {tolerance:g}"
    )
    return _worse(verdict, force, EVIDENCE_AUC, None)


def _band_distance(rate: float, band: tuple[float, float]) -> float:
    low, high = band
    return max(low - rate, rate - high, 0.0)


def _on_unlabelled(
    gap: str, seen: UnlabelledEvidence, rule: UnlabelledRule, name: str, force: bool
) -> GateDecision:
    """Compare flag rates, flag agreement and score shift (rule in the module's docstring)."""
    facts = (
        f"{gap}, so its metrics are no evidence; compared on {seen.rows} holdout rows without "
        f"labels: flag rate {seen.flag_rate:.1%} ({name} {seen.champion_flag_rate:.1%}), "
        f"agreement {seen.agreement:.1%}"
        + ("" if seen.score_psi is None else f", score PSI {seen.score_psi:.3f}")
    )
    if rule.band is not None:
        low, high = rule.band
        ours = _band_distance(seen.flag_rate, rule.band)
        theirs = _band_distance(seen.champion_flag_rate, rule.band)
        band = f"band {low:.0%}–{high:.0%}"
        if ours > 0 and theirs == 0:
            return _worse(
                f"{facts}; its flag rate leaves the {band} that {name}'s keeps",
                force,
                EVIDENCE_UNLABELLED,
                gap,
            )
        if ours == 0 and theirs > 0:
            return GateDecision(
                True,
                f"{facts}; it brings the flag rate back into the {band}",
                holdout_gap=gap,
                evidence=EVIDENCE_UNLABELLED,
            )
        if ours > 0 and theirs > 0:
            if ours < theirs:
                return GateDecision(
                    True,
                    f"{facts}; both outside the {band}, the challenger nearer",
                    holdout_gap=gap,
                    evidence=EVIDENCE_UNLABELLED,
                )
            return _worse(
                f"{facts}; both outside the {band}, {name} nearer", force, EVIDENCE_UNLABELLED, gap
            )
    similar_scores = seen.score_psi is not None and seen.score_psi <= rule.max_score_psi
    similar_flags = seen.agreement >= rule.min_flag_agreement
    if similar_scores or similar_flags:
        return GateDecision(
            True,
            f"{facts}; a refresh on newer data that behaves like {name} (PSI at most "
            f"{rule.max_score_psi:g} or agreement at least {rule.min_flag_agreement:.0%})",
            holdout_gap=gap,
            evidence=EVIDENCE_UNLABELLED,
        )
    return _worse(
        f"{facts}; it changes behaviour without labelled evidence (PSI above "
        f"{rule.max_score_psi:g} and agreement below {rule.min_flag_agreement:.0%})",
        force,
        EVIDENCE_UNLABELLED,
        gap,
    )


def _worse(verdict: str, force: bool, evidence: str, gap: str | None) -> GateDecision:
    if force:
        return GateDecision(
            True,
            f"forced: promoted although {verdict}",
            overridden=True,
            holdout_gap=gap,
            evidence=evidence,
        )
    return GateDecision(False, f"rejected: {verdict}", holdout_gap=gap, evidence=evidence)


def _without_evidence(gap: str, name: str, supervised: bool, force: bool) -> GateDecision:
    if not supervised:
        return GateDecision(
            True,
            f"unevaluated: {gap}; the unsupervised anomaly detector is refreshed on new data "
            f"without labelled evidence (replacing {name}, which cannot be scored on it)",
            holdout_gap=gap,
            evidence=EVIDENCE_NONE,
        )
    forced = " (force does not override a holdout that cannot compare)" if force else ""
    return GateDecision(
        False,
        f"rejected: {gap}, which is no evidence that it does as well as {name}, and {name} "
        f"cannot be compared on its flags{forced}; promote it by hand with "
        "`retrainer models promote VERSION --force` if you must",
        holdout_gap=gap,
        evidence=EVIDENCE_NONE,
    )
