"""The trainer's Prometheus metrics, declared once in a registry of their own; /metrics, /health."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

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


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            body = generate_latest(REGISTRY)
            self._answer(200, body, CONTENT_TYPE_LATEST)
        elif self.path == "/health":
            healthy, report = LIVENESS.report()
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


def serve(port: int, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
    """Serve /metrics and /health on `port` from a daemon thread (0 = do not serve)."""
    if port:
        server = ThreadingHTTPServer((host, port), _Handler)
        threading.Thread(target=server.serve_forever, name="trainer-http", daemon=True).start()
