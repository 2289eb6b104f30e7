"""The trainer's Prometheus metrics, declared once, in a registry of their own; /metrics server."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

TRAINING_DURATION = Histogram(
    "retrainer_training_duration_seconds",
    "Wall time from a retrain request's start to its recorded outcome.",
    ["family"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
    registry=REGISTRY,
)
OUTCOMES = Counter(
    "retrainer_training_outcomes_total",
    "Retrain requests by how they ended.",
    ["family", "status"],
    registry=REGISTRY,
)
LAST_AUC = Gauge(
    "retrainer_training_auc_ratio",
    "Holdout AUC of the last model trained.",
    ["family"],
    registry=REGISTRY,
)
LAST_F1 = Gauge(
    "retrainer_training_f1_ratio",
    "Holdout F1 of the last model trained.",
    ["family"],
    registry=REGISTRY,
)
CHAMPION = Info(
    "retrainer_champion_version",
    "The version currently promoted for each family.",
    ["family"],
    registry=REGISTRY,
)
LOAD_RATE = Gauge(
    "retrainer_training_load_rows_per_second",
    "Rows per second of the last training data load from PostgreSQL.",
    ["family"],
    registry=REGISTRY,
)
INVALID_REQUESTS = Counter(
    "retrainer_trainer_dead_letters_total",
    "retrain-requested messages that could not be decoded and went to dead-letter.",
    ["reason"],
    registry=REGISTRY,
)


def serve(port: int) -> None:
    """Serve /metrics on `port` from a daemon thread (0 = do not serve)."""
    if port:
        start_http_server(port, registry=REGISTRY)
