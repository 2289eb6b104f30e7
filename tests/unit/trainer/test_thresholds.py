"""The threshold rule: parsed as users write it, and picking the threshold its name promises."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from trainer.settings import TrainerSettings
from trainer.thresholds import RuleKind, ThresholdRule, choose_threshold

# Ranked from the top: P P N P N N P N N N. Flagging the top k rows gives
#   k:          1     2     3     4     5     6     7     8     9     10
#   precision:  1     1     .67   .75   .6    .5    .57   .5    .44   .4
#   recall:     .25   .5    .5    .75   .75   .75   1     1     1     1
#   F1:         .4    .67   .57   .75   .67   .6    .73   .67   .62   .57
SCORE = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
TRUTH = np.array([1, 1, 0, 1, 0, 0, 1, 0, 0, 0], dtype=bool)


def _flagged_top(threshold: float) -> int:
    return int((threshold <= SCORE).sum())


def test_max_f1_picks_the_best_cut_and_sits_between_two_scores() -> None:
    choice = choose_threshold(TRUTH, SCORE, ThresholdRule.parse("max_f1"))
    assert choice is not None
    assert _flagged_top(choice.threshold) == 4
    assert choice.threshold == pytest.approx(0.65)
    assert choice.f1 == pytest.approx(0.75)
    assert (choice.precision, choice.recall) == pytest.approx((0.75, 0.75))


@pytest.mark.parametrize(
    ("rule", "flagged", "precision", "recall"),
    [
        ("precision:0.80", 2, 1.0, 0.5),  # the most recall with precision >= .8
        ("precision:0.7", 4, 0.75, 0.75),
        # Recall 1 at k=7 (precision .57) and k=8 (.5): the tie keeps the higher precision.
        ("precision:0.5", 7, 4 / 7, 1.0),
        ("recall:0.70", 4, 0.75, 0.75),  # the most precision with recall >= .7
        ("recall:1", 7, 4 / 7, 1.0),
        ("recall:0.5", 2, 1.0, 0.5),
    ],
)
def test_precision_and_recall_targets(
    rule: str, flagged: int, precision: float, recall: float
) -> None:
    choice = choose_threshold(TRUTH, SCORE, ThresholdRule.parse(rule))
    assert choice is not None
    assert _flagged_top(choice.threshold) == flagged
    assert (choice.precision, choice.recall) == pytest.approx((precision, recall))


def test_ties_in_scores_are_flagged_together() -> None:
    score = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    truth = np.array([True, True, False, False, False])
    choice = choose_threshold(truth, score, ThresholdRule.parse("recall:1"))
    assert choice is not None
    assert choice.threshold == pytest.approx(0.3)  # all three 0.5s flagged, none split
    assert choice.precision == pytest.approx(0.5)


def test_no_choice_without_both_classes_or_a_reachable_target() -> None:
    rule = ThresholdRule.parse("max_f1")
    assert choose_threshold(np.zeros(5, bool), SCORE[:5], rule) is None
    assert choose_threshold(np.ones(5, bool), SCORE[:5], rule) is None
    inverted = ThresholdRule.parse("precision:0.9")
    assert choose_threshold(np.array([False, True]), np.array([0.9, 0.1]), inverted) is None


@pytest.mark.parametrize(
    ("text", "kind", "target"),
    [
        ("max_f1", RuleKind.MAX_F1, None),
        (" MAX_F1 ", RuleKind.MAX_F1, None),
        ("precision:0.80", RuleKind.PRECISION, 0.8),
        ("recall:1", RuleKind.RECALL, 1.0),
    ],
)
def test_rules_parse(text: str, kind: RuleKind, target: float | None) -> None:
    rule = ThresholdRule.parse(text)
    assert (rule.kind, rule.target) == (kind, target)
    assert ThresholdRule.parse(str(rule)) == rule


@pytest.mark.parametrize(
    "text", ["f1", "precision", "precision:", "precision:high", "recall:0", "recall:1.5", "auc:0.7"]
)
def test_a_bad_rule_is_a_settings_error_naming_the_variable(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAINER_THRESHOLD_RULE", text)
    with pytest.raises(ValidationError, match="RETRAINER_THRESHOLD_RULE"):
        TrainerSettings()


def test_the_settings_default_is_max_f1() -> None:
    assert TrainerSettings().rule == ThresholdRule(RuleKind.MAX_F1)
