"""The trainer's Prometheus metrics, declared once in a registry of their own; /metrics, /health.

Every label set known in advance is exported from the start (counters and histograms at 0,
the last model's scores NaN until one is trained), so `rate()` and `increase()` see the first
event. The registry also carries the process and Python collectors the worker's default one has.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from schemas.base import ModelFamily
from schemas.build import build_labels
from schemas.errors import RejectReason
from schemas.features import CATEGORICAL_FIELDS
from schemas.training_outcome import OutcomeStatus
from trainer.admission import CUTOFF_IN_FUTURE, REQUEST_ID_REUSED

if TYPE_CHECKING:
    from trainer.health import Reachability

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

BUILD_INFO = Gauge(
    "retrainer_build_info",
    "1, labelled with the running build: package version, Python version and git commit.",
    ["version", "python", "commit"],
    registry=REGISTRY,
)

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
UNKNOWN_CATEGORIES = Counter(
    "retrainer_unknown_category_total",
    "Profile values outside a field's known set, trained on as the `other` bucket, by field.",
    ["field"],
    registry=REGISTRY,
)
INVALID_REQUESTS = Counter(
    "retrainer_trainer_dead_letters_total",
    "retrain-requested messages set aside to dead-letter, by reason.",
    ["reason"],
    registry=REGISTRY,
)


def _export_known_label_sets() -> None:
    BUILD_INFO.labels(**build_labels()).set(1)
    for family in (f.value for f in ModelFamily):
        TRAINING_DURATION.labels(family)
        for status in OutcomeStatus:
            OUTCOMES.labels(family, status.value)
        for unknown_yet in (LAST_AUC, LAST_F1, LOAD_RATE):
            unknown_yet.labels(family).set(float("nan"))
    for reason in (*(r.value for r in RejectReason), CUTOFF_IN_FUTURE, REQUEST_ID_REUSED):
        INVALID_REQUESTS.labels(reason)
    for field in CATEGORICAL_FIELDS:
        UNKNOWN_CATEGORIES.labels(field)


def count_unknown_categories(counts: dict[str, int]) -> None:
    """Add what `schemas.features.unknown_categories` found to UNKNOWN_CATEGORIES."""
    for field, count in counts.items():
        if count:
            UNKNOWN_CATEGORIES.labels(field).inc(count)


_export_known_label_sets()


def _export_runner_reasons() -> None:
    """The dead-letter reasons of the runner itself, which imports this module (so: late)."""
    from trainer.runner import OUTCOME_REJECTED, UNEXPECTED_ERROR

    for reason in (UNEXPECTED_ERROR, OUTCOME_REJECTED):
        INVALID_REQUESTS.labels(reason)


class Liveness:
    """When the request consumer last came back from a poll; /health reads it."""

    # A training holds the loop between two polls; only a much longer silence means a hang.
    def __init__(self, stale_after_s: float = 900.0) -> None:
        self.stale_after_s = stale_after_s
        self._last_poll: float | None = None

    def beat(self) -> None:
        self._last_poll = time.monotonic()

    def report(self) -> tuple[bool, dict[str, object]]:
        if self._last_poll is None:
            return False, {"status": "starting", "consumer": "not polling yet"}
        age = time.monotonic() - self._last_poll
        healthy = age < self.stale_after_s
        return healthy, {
            "status": "ok" if healthy else "stalled",
            "seconds_since_poll": round(age, 1),
        }


LIVENESS = Liveness()


class _Server(ThreadingHTTPServer):
    reachability: Reachability | None = None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            body = generate_latest(REGISTRY)
            self._answer(200, body, CONTENT_TYPE_LATEST)
        elif self.path == "/health":
            reachability = self.server.reachability if isinstance(self.server, _Server) else None
            healthy, report = health_report(reachability)
            self._answer(200 if healthy else 503, json.dumps(report).encode(), "application/json")
        else:
            self._answer(404, b'{"error": "not found"}', "application/json")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes every few seconds would flood the log


def health_report(reachability: Reachability | None) -> tuple[bool, dict[str, object]]:
    """The consumer's liveness and, when probed, whether PostgreSQL and Kafka answer."""
    healthy, report = LIVENESS.report()
    if reachability is None:
        return healthy, report
    report.update(reachability.checks())
    if not reachability.healthy:
        if healthy:
            report["status"] = "degraded"
        healthy = False
    return healthy, report


def serve(
    port: int,
    reachability: Reachability | None = None,
    host: str = "0.0.0.0",  # noqa: S104 - scraped from outside
) -> None:
    """Serve /metrics and /health on `port` from a daemon thread (0 = do not serve)."""
    if port:
        _export_runner_reasons()
        server = _Server((host, port), _Handler)
        server.reachability = reachability
        threading.Thread(target=server.serve_forever, name="trainer-http", daemon=True).start()
