"""Benchmarks of the upstream simulator: generation and publish rates, and the signal it carries."""

from __future__ import annotations

import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.publish import PublishOptions, run_publish
from retrainer.simulator.scenario import Scenario
from retrainer.simulator.signal import delinquency_dataset, expense_dataset
from retrainer.simulator.world import simulate
from tests.bench.harness import BenchContext, BenchResult, Figure


def _scenario(customers: int, sheets: int, seed: int = 1) -> ScenarioConfig:
    return ScenarioConfig(
        seed=seed,
        customers=CustomerConfig(customers=customers, statements_per_customer=12),
        expenses=ExpenseConfig(sheets=sheets),
    )


def bench_simulator_generation(ctx: BenchContext) -> BenchResult:
    """How fast the world is simulated, and how fast it becomes encoded messages (no Kafka)."""
    config = _scenario(customers=10_000, sheets=5_000)
    began = time.perf_counter()
    world = simulate(config)
    world_seconds = time.perf_counter() - began
    records = len(world.timeline) + world.expenses.line_count
    yield Figure("simulator_world_10k_customers_seconds", world_seconds, "s")
    yield Figure("simulator_world_records_per_s", records / world_seconds, "records/s")

    scenario = Scenario(_scenario(customers=2_000, sheets=2_000))
    _ = scenario.world  # the messages are what is timed here
    began = time.perf_counter()
    count = sum(1 for _ in scenario.messages())
    yield Figure("simulator_messages_per_s", count / (time.perf_counter() - began), "events/s")


def bench_simulator_publish(ctx: BenchContext) -> BenchResult:
    """Messages per second from the simulator into the real broker, every delivery confirmed."""
    overrides = {topic: ctx.topic(topic) for topic in UPSTREAM_TOPICS}
    options = PublishOptions(
        scenario=_scenario(customers=2_000, sheets=2_000),
        bootstrap=ctx.bootstrap,
        topic_overrides=overrides,
    )
    summary = run_publish(options)
    if not summary.ok:
        raise RuntimeError(f"delivery failures: {summary.failure_samples}")
    yield Figure("simulator_publish_events_per_s", summary.rate, "events/s")
    yield Figure("simulator_publish_events", summary.total_sent, "events")


def bench_simulator_delinquency_auc(ctx: BenchContext) -> BenchResult:
    """XGBoost on simple statement features, scored on the latest 30 % of statements."""
    world = simulate(_scenario(customers=10_000, sheets=0, seed=2))
    train, holdout = delinquency_dataset(world.customers).time_split(0.7)
    params = {"n_estimators": 150, "max_depth": 4, "learning_rate": 0.1, "min_child_weight": 20}
    model = XGBClassifier(**params, n_jobs=1).fit(train.features, train.target)
    auc = roc_auc_score(holdout.target, model.predict_proba(holdout.features)[:, 1])
    yield Figure("simulator_delinquency_xgboost_auc", float(auc), "auc")
    rng = np.random.default_rng(0)
    shuffled = [
        roc_auc_score(
            holdout.target,
            XGBClassifier(**params, n_jobs=1)
            .fit(train.features, rng.permutation(train.target))
            .predict_proba(holdout.features)[:, 1],
        )
        for _ in range(5)
    ]
    yield Figure("simulator_delinquency_shuffled_auc_mean", float(np.mean(shuffled)), "auc")
    yield Figure("simulator_delinquency_positive_rate", float(holdout.target.mean()), "fraction")


def bench_simulator_fraud_auc(ctx: BenchContext) -> BenchResult:
    """IsolationForest (no labels) on simple expense-line features against the injected fraud."""
    world = simulate(_scenario(customers=0, sheets=5_000, seed=3))
    data = expense_dataset(world.expenses, world.config.expenses.approval_limit)
    forest = IsolationForest(n_estimators=200, random_state=0).fit(data.features)
    auc = roc_auc_score(data.target, -forest.score_samples(data.features))
    yield Figure("simulator_fraud_isolation_forest_auc", float(auc), "auc")
    yield Figure("simulator_fraud_rate", float(data.target.mean()), "fraction")
