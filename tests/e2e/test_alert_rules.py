"""The alert rules cover what operators must hear about, with exported metrics and a runbook."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from streams.settings import StreamsSettings
from tests.e2e.conftest import DEPLOY
from tests.e2e.promql import PROMETHEUS_OWN, exported_metric_names, metric_names

pytestmark = pytest.mark.e2e

# What issue 7 asks alerts for → the alert that covers it.
REQUIRED = {
    "no promotion for N hours while data arrives": "RetrainerNoPromotionWhileDataArrives",
    "dead-letter rate": "RetrainerDeadLetterRateHigh",
    "consumer lag": "RetrainerConsumerLagHigh",
    "reload failures": "RetrainerModelReloadFailed",
    "anomaly rate out of band": "RetrainerAnomalyRateOutOfBand",
    "trainer failures": "RetrainerTrainingFailed",
}


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alerts_the_issue_asks_for_exist() -> None:
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names)), "alert names are unique"
    missing = {what: name for what, name in REQUIRED.items() if name not in names}
    assert missing == {}


def test_every_alert_explains_itself() -> None:
    for rule in rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook"}, rule["alert"]
        assert all(len(text) > 20 for text in annotations.values()), rule["alert"]


def test_alert_expressions_name_exported_metrics() -> None:
    exported = exported_metric_names()
    known = exported["worker"] | exported["trainer"] | PROMETHEUS_OWN
    unknown = {
        rule["alert"]: sorted(metric_names(rule["expr"]) - known)
        for rule in rules()
        if metric_names(rule["expr"]) - known or not metric_names(rule["expr"])
    }
    assert unknown == {}


def test_thresholds_follow_the_policy_defaults() -> None:
    by_name = {rule["alert"]: rule for rule in rules()}
    defaults = StreamsSettings.model_fields
    band = by_name["RetrainerAnomalyRateOutOfBand"]["expr"]
    assert f"< {defaults['anomaly_rate_low'].default:.2f}" in band
    assert f"> {defaults['anomaly_rate_high'].default:.2f}" in band
    # "No promotion for N hours" must leave the interval trigger time to fire and train.
    stale = by_name["RetrainerNoPromotionWhileDataArrives"]["expr"]
    windows = {int(hours) for hours in re.findall(r"\[(\d+)h\]", stale)}
    assert len(windows) == 1
    assert windows.pop() > defaults["interval_hours"].default
