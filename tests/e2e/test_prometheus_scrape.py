"""A real Prometheus scrapes a running worker and trainer; PromQL returns the retrain counters."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.e2e.conftest import DEPLOY, Prometheus
from tests.factories import customer, publish, statement, wait_until
from tests.integration.streams.conftest import Workers

pytestmark = pytest.mark.e2e

ALERTS = DEPLOY / "prometheus" / "alerts.yml"


def _when(prometheus: Prometheus, promql: str, wanted: float, timeout: float) -> float:
    """Poll `promql` until its single value reaches `wanted`; fail with the last value seen."""
    seen: list[float | None] = [None]

    def reached() -> bool:
        seen[0] = prometheus.value(promql)
        return seen[0] is not None and seen[0] >= wanted

    try:
        wait_until(reached, timeout, f"{promql} >= {wanted}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last value: {seen[0]}") from None
    assert seen[0] is not None
    return seen[0]


def test_prometheus_scrapes_the_retrain_counters(services: Workers, start_prometheus: Any) -> None:
    services.create_topics()
    (worker_port,), trainer_port = services.start_with_trainer()
    prometheus: Prometheus = start_prometheus(
        {
            "retrainer-worker": [f"127.0.0.1:{worker_port}"],
            "retrainer-trainer": [f"127.0.0.1:{trainer_port}"],
        },
        [ALERTS],
    )
    wait_until(
        lambda: prometheus.value('sum(up{job=~"retrainer-.*"})') == 2,
        30,
        "prometheus to scrape both the worker and the trainer",
    )

    # 60 new customers cross the delinquency threshold (50): one retrain request. A year of
    # statements each, every 3rd customer delinquent once (months 4 to 9): the minimum data the
    # policy checks is the trainer's, so the request is trained, not skipped.
    customers = [customer(i, services.prefix) for i in range(60)]
    publish(
        services.stack.bootstrap,
        services.topic("customer-activity"),
        [
            statement(c.customer_id, month, 45 if n % 3 == 0 and month == 4 + n // 3 % 6 else 0)
            for n, c in enumerate(customers)
            for month in range(12)
        ],
    )
    publish(services.stack.bootstrap, services.topic("customer-created"), customers)

    stored = 'sum(retrainer_events_stored_total{topic="customer-created", outcome="new"})'
    assert _when(prometheus, stored, 60, 90) == 60
    requests = 'sum(retrainer_retrain_requests_total{family="delinquency", reason="new_customers"})'
    assert _when(prometheus, requests, 1, 90) == 1
    outcomes = 'sum(retrainer_training_outcomes_total{family="delinquency"})'
    assert _when(prometheus, outcomes, 1, 120) == 1

    by_status = prometheus.query(
        'sum by (status) (retrainer_training_outcomes_total{family="delinquency"})'
    )
    # Every status has its series from the start: the other three stay at 0.
    values = {s["metric"]["status"]: float(s["value"][1]) for s in by_status}
    assert set(values) == {"promoted", "rejected", "skipped", "failed"}
    assert sum(values.values()) == 1
    assert values["skipped"] == values["failed"] == 0
    jobs = prometheus.query("sum by (job) (retrainer_retrain_requests_total)")
    assert [s["metric"]["job"] for s in jobs] == ["retrainer-worker"]
    duration = prometheus.value(
        'sum(retrainer_training_duration_seconds_count{job="retrainer-trainer"})'
    )
    assert duration == 1

    # Every alert rule of deploy/ loads and evaluates against these real series without error.
    def rules_evaluated() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules)
        return rules if done else []

    rules = wait_until(rules_evaluated, 30, "prometheus to evaluate every alert rule")
    assert isinstance(rules, list)
    declared = yaml.safe_load(ALERTS.read_text())["groups"]
    assert len(rules) == sum(len(group["rules"]) for group in declared)
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert broken == {}
