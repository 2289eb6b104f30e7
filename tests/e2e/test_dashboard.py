"""The Grafana dashboard parses, and every PromQL expression in it names a metric we export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from streams.settings import StreamsSettings
from tests.e2e.conftest import DEPLOY
from tests.e2e.promql import all_names, exported_metric_names, metric_names

pytestmark = pytest.mark.e2e

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "retrainer.json"

# What the issue asks the dashboard to show, and a series each of those panels must query.
REQUIRED = {
    "throughput": {"retrainer_events_consumed_total", "retrainer_events_stored_total"},
    "lag": {"retrainer_consumer_lag_messages"},
    "counters against thresholds": {
        "retrainer_policy_counted_events",
        "retrainer_policy_threshold_events",
    },
    "anomaly rate": {"retrainer_anomaly_rate_ratio"},
    "retrain reasons": {"retrainer_retrain_requests_total"},
    "training duration": {"retrainer_training_duration_seconds_bucket"},
    "AUC and F1": {"retrainer_training_auc_ratio", "retrainer_training_f1_ratio"},
    "reloads": {"retrainer_model_reloads_total"},
}


def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD.read_text())
    assert isinstance(loaded, dict)
    return loaded


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def expressions(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every query: panel targets, annotations, template variables."""
    for panel in panels(board["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for annotation in board["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            assert text.startswith("label_values("), text
            assert text.endswith(")"), text
            metric = text.removeprefix("label_values(").split(",")[0].strip()
            yield f"variable {variable['name']!r}", metric


def test_every_query_names_an_exported_metric() -> None:
    exported = exported_metric_names()
    known = exported["worker"] | exported["trainer"]
    found = list(expressions(dashboard()))
    assert len(found) >= 20
    unknown = {
        where: sorted(metric_names(expr) - known)
        for where, expr in found
        if metric_names(expr) - known or not metric_names(expr)
    }
    assert unknown == {}, "queries naming no metric, or metrics no service exports"


def test_the_panels_the_issue_asks_for_are_there() -> None:
    used = all_names(expr for _, expr in expressions(dashboard()))
    missing = {what: sorted(names - used) for what, names in REQUIRED.items() if names - used}
    assert missing == {}


def test_the_anomaly_band_is_the_policy_default() -> None:
    defaults = StreamsSettings.model_fields
    band = [p for p in panels(dashboard()["panels"]) if "anomaly" in p["title"].lower()]
    assert len(band) == 1
    steps = band[0]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps[1:]] == [
        defaults["anomaly_rate_low"].default,
        defaults["anomaly_rate_high"].default,
    ]
    assert [s["color"] for s in steps] == ["red", "green", "red"]


def test_layout_and_datasource() -> None:
    board = dashboard()
    assert board["uid"] == "retrainer-overview"
    seen: set[int] = set()
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(board["panels"]):
        assert panel["id"] not in seen, f"duplicate panel id {panel['id']}"
        seen.add(panel["id"])
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel.get("description"), f"{panel['title']!r} says what it shows"
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "retrainer.yml").read_text()
    )
    assert provider["apiVersion"] == 1
    assert [p["options"]["path"] for p in provider["providers"]] == ["/etc/grafana/dashboards"]
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [source] = sources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == (
        "prometheus",
        "http://prometheus:9090",
        True,
    )
