"""Drift and realised performance through a running worker: live scores keep the feature vector
of the champion's features, labels that arrive later are measured against those scores, and
the figures reach the metrics and `GET /retraining/status`."""

from __future__ import annotations

import json

from tests.factories import label, publish, sheet, wait_until
from tests.integration.streams.conftest import Workers
from tests.integration.streams.test_scorers import _loaded, _promoted_for, _query, _scalar, _trigger

ENV = {
    # Only the test's forced trigger trains: the count and band triggers stay out of reach.
    "RETRAINER_NEW_SHEETS_THRESHOLD": "100000000",
    "RETRAINER_ANOMALY_MIN_SAMPLE": "100000000",
    "RETRAINER_POLICY_TICK_S": "1",
    "RETRAINER_QUALITY_REFRESH_S": "1",
    "RETRAINER_PERFORMANCE_MIN_SAMPLE": "1000000",  # measured, never a trigger here
    "RETRAINER_PERFORMANCE_MAX_SAMPLE": "1000000",
    "RETRAINER_DRIFT_MIN_SAMPLE": "1000000",
    "RETRAINER_DRIFT_MAX_SAMPLE": "1000000",
}
TRAINER_ENV = {"RETRAINER_FOREST_TREES": "20", "RETRAINER_TRAINING_THREADS": "1"}
FAMILY = "expense-fraud"


def test_live_scores_keep_features_and_late_labels_are_measured(workers: Workers) -> None:
    workers.extra_env.update(ENV)
    workers.create_topics()
    (port,), _ = workers.start_with_trainer(**TRAINER_ENV)
    dsn = workers.database_url
    sheets_topic = workers.topic("expense-sheet")

    training = [sheet(i, lines=10, prefix=workers.prefix) for i in range(60)]
    publish(workers.stack.bootstrap, sheets_topic, training)
    wait_until(lambda: _scalar(dsn, "SELECT count(*) FROM expenses") == 600, 90, "600 lines")
    version = _promoted_for(workers, _trigger(port))
    wait_until(lambda: _loaded(workers) == version, 60, f"the worker to load {version}")

    live = [sheet(1000 + i, lines=10, prefix=workers.prefix) for i in range(30)]
    publish(workers.stack.bootstrap, sheets_topic, live)
    count_live = "SELECT count(*) FROM expense_scores WHERE model_version = $1"
    wait_until(lambda: _scalar(dsn, count_live, version) == 300, 90, "300 lines scored")

    # Each live score kept the vector of the version's features, in the version's order.
    [params] = [
        json.loads(row["params"])
        for row in _query(
            dsn, "SELECT params::text FROM model_versions WHERE version = $1", version
        )
    ]
    lengths = _query(
        dsn,
        "SELECT DISTINCT array_length(features, 1) AS n FROM expense_scores "
        "WHERE model_version = $1",
        version,
    )
    assert [row["n"] for row in lengths] == [len(params["feature_names"])]

    # Labels arrive late, for 100 of the live lines; the lines scored before the model (warm-up)
    # have no version and stay out.
    lines = [line.expense_id for s in live for line in s.lines][:100]
    labels = [label(expense_id, i % 4 == 0) for i, expense_id in enumerate(lines)]
    publish(workers.stack.bootstrap, workers.topic("expense-label"), labels)

    def measured() -> bool:
        return workers.metric("retrainer_realised_labelled_events", family=FAMILY) == 100

    wait_until(measured, 90, "the 100 labelled live scores measured")
    auc = workers.metric("retrainer_realised_auc_ratio", family=FAMILY)
    assert 0.0 <= auc <= 1.0

    status = workers.get(f"/retraining/status?family={FAMILY}", port)
    quality = status["quality"]
    [champion] = [p for p in quality["performance"] if p["champion"]]
    assert champion["model_version"] == version
    assert (champion["samples"], champion["positives"]) == (100, 25)
    assert champion["auc"] == auc
    drift = quality["drift"]
    assert drift["model_version"] == version
    # The trainer stores the reference of the rows it fitted: every live row is compared with it.
    assert "reference" in params
    assert drift["samples"] == 300
    assert set(drift["feature_psi"]) == set(params["feature_names"])
    assert drift["note"] is None
    for value in drift["feature_psi"].values():
        assert value >= 0.0
    assert status["reason"] == "No training needed"
