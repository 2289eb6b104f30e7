"""The promotion gate as a table: which evidence decides, and what it decides."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trainer.gate import (
    EVIDENCE_AUC,
    EVIDENCE_NO_CHAMPION,
    EVIDENCE_NONE,
    EVIDENCE_UNLABELLED,
    Overlap,
    UnlabelledEvidence,
    UnlabelledRule,
    decide,
)

BOTH = {"auc": 0.80, "holdout_samples": 100.0, "holdout_positives": 10.0}
ONE_CLASS = {"holdout_samples": 40.0, "holdout_positives": 0.0, "holdout_positive_rate": 0.0}
UNLABELLED = {"holdout_samples": 0.0, "holdout_positives": 0.0}
BAND = UnlabelledRule(band=(0.05, 0.30))
NO_BAND = UnlabelledRule()


def flags(
    rate: float, champion: float, agreement: float = 0.95, psi: float | None = 0.05
) -> UnlabelledEvidence:
    return UnlabelledEvidence(
        rows=200, flag_rate=rate, champion_flag_rate=champion, agreement=agreement, score_psi=psi
    )


@dataclass(frozen=True)
class Case:
    name: str
    challenger: dict[str, float]
    champion: dict[str, float] | None
    promote: bool
    evidence: str
    says: str
    version: str | None = "v1"
    force: bool = False
    overridden: bool = False
    supervised: bool = True
    overlap: Overlap | None = None
    unlabelled: UnlabelledEvidence | None = None
    rule: UnlabelledRule = NO_BAND


CASES = [
    Case("first model", BOTH, None, True, EVIDENCE_NO_CHAMPION, "no champion", version=None),
    Case(
        "first model, one class",
        ONE_CLASS,
        None,
        True,
        EVIDENCE_NO_CHAMPION,
        "no champion yet",
        version=None,
    ),
    Case("auc within tolerance", BOTH, {"auc": 0.805}, True, EVIDENCE_AUC, "auc 0.8000 vs v1"),
    Case("auc worse", BOTH, {"auc": 0.9}, False, EVIDENCE_AUC, "rejected: auc 0.8000 is worse"),
    Case(
        "auc worse, forced",
        BOTH,
        {"auc": 0.9},
        True,
        EVIDENCE_AUC,
        "forced: promoted although",
        force=True,
        overridden=True,
    ),
    Case(
        "champion refitted on part of the holdout: compared on the rest",
        BOTH,
        {"auc": 0.95},
        True,
        EVIDENCE_AUC,
        "on the 60 holdout rows newer than v1's data",
        overlap=Overlap(40, 100, {"auc": 0.78}, {"auc": 0.77}),
    ),
    Case(
        "champion refitted on part of the holdout: the rest lacks a class",
        BOTH,
        {"auc": 0.95},
        False,
        EVIDENCE_AUC,
        "on the whole holdout, though v1's data reach 40 of the 100 holdout rows (40%)",
        overlap=Overlap(40, 100),
    ),
    Case(
        "champion refitted on the whole holdout: compared with its recorded holdout auc",
        BOTH,
        {"auc": 0.99},
        True,
        EVIDENCE_AUC,
        "auc 0.8000 vs v1 0.8050 on its own holdout (v1's data reach 100 of the 100 holdout "
        "rows (100%) and the 0 newer rows lack a class, so its 0.9900 on them is not out of "
        "sample)",
        overlap=Overlap(100, 100, champion_recorded_auc=0.805),
    ),
    Case(
        "recorded holdout auc decides against the challenger too",
        BOTH,
        {"auc": 0.99},
        False,
        EVIDENCE_AUC,
        "is worse than v1's 0.8500 on its own holdout",
        overlap=Overlap(100, 100, champion_recorded_auc=0.85),
    ),
    Case(
        "one class, champion scored: similar behaviour promotes",
        ONE_CLASS,
        {"holdout_samples": 40.0},
        True,
        EVIDENCE_UNLABELLED,
        "behaves like v1",
        unlabelled=flags(0.02, 0.03, agreement=0.97, psi=0.04),
    ),
    Case(
        "one class: never promoted on 'champion has no auc' when it changes behaviour",
        ONE_CLASS,
        {"holdout_samples": 40.0},
        False,
        EVIDENCE_UNLABELLED,
        "changes behaviour without labelled evidence",
        unlabelled=flags(0.25, 0.03, agreement=0.7, psi=0.9),
    ),
    Case(
        "one class, behaviour change, forced",
        ONE_CLASS,
        {"holdout_samples": 40.0},
        True,
        EVIDENCE_UNLABELLED,
        "forced: promoted",
        force=True,
        overridden=True,
        unlabelled=flags(0.25, 0.03, agreement=0.7, psi=0.9),
    ),
    Case(
        "scores on different scales: agreement alone",
        UNLABELLED,
        {},
        True,
        EVIDENCE_UNLABELLED,
        "agreement 95.0%",
        unlabelled=flags(0.10, 0.10, agreement=0.95, psi=None),
    ),
    Case(
        "unlabelled, leaves the anomaly band the champion keeps",
        UNLABELLED,
        {},
        False,
        EVIDENCE_UNLABELLED,
        "leaves the band 5%–30%",
        unlabelled=flags(0.45, 0.10),
        rule=BAND,
    ),
    Case(
        "unlabelled, back into the band",
        UNLABELLED,
        {},
        True,
        EVIDENCE_UNLABELLED,
        "back into the band",
        unlabelled=flags(0.12, 0.45, agreement=0.5, psi=2.0),
        rule=BAND,
    ),
    Case(
        "unlabelled, both outside, challenger nearer",
        UNLABELLED,
        {},
        True,
        EVIDENCE_UNLABELLED,
        "the challenger nearer",
        unlabelled=flags(0.35, 0.60),
        rule=BAND,
    ),
    Case(
        "unlabelled, both outside, champion nearer",
        UNLABELLED,
        {},
        False,
        EVIDENCE_UNLABELLED,
        "v1 nearer",
        unlabelled=flags(0.01, 0.04),
        rule=BAND,
    ),
    Case(
        "unlabelled, detector in band and alike",
        UNLABELLED,
        {},
        True,
        EVIDENCE_UNLABELLED,
        "refresh on newer data",
        supervised=False,
        unlabelled=flags(0.10, 0.11),
        rule=BAND,
    ),
    Case(
        "unusable champion, supervised, one class: nothing to compare",
        ONE_CLASS,
        None,
        False,
        EVIDENCE_NONE,
        "cannot be compared",
    ),
    Case(
        "unusable champion, detector",
        UNLABELLED,
        None,
        True,
        EVIDENCE_NONE,
        "refreshed on new data",
        supervised=False,
    ),
    Case(
        "unusable champion, both classes",
        BOTH,
        None,
        True,
        EVIDENCE_AUC,
        "v1 has no auc",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gate(case: Case) -> None:
    decision = decide(
        case.challenger,
        case.champion,
        tolerance=0.01,
        force=case.force,
        champion_version=case.version,
        supervised=case.supervised,
        overlap=case.overlap,
        unlabelled=case.unlabelled,
        rule=case.rule,
    )
    assert decision.promote is case.promote, decision.reason
    assert decision.evidence == case.evidence
    assert case.says in decision.reason
    assert decision.overridden is case.overridden
    one_class = case.challenger is not BOTH
    assert (decision.holdout_gap is not None) is one_class
    if one_class and case.evidence == EVIDENCE_UNLABELLED:
        # A one-class holdout is reported, never counted.
        assert "no evidence" in decision.reason


def test_a_force_does_not_override_a_missing_comparison() -> None:
    decision = decide(ONE_CLASS, None, tolerance=0.01, force=True, champion_version="v1")
    assert not decision.promote
    assert "force does not override" in decision.reason
