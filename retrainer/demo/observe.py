"""What the services show, polled: PostgreSQL's requests, outcomes, policy and scores, and the
worker's /models and /metrics; the observer keeps the latest snapshot and logs what changed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from retrainer.demo.common import POLL_S, DemoError

if TYPE_CHECKING:
    from retrainer.demo.view import View
    from retrainer.harness import Services

T = TypeVar("T")

_REQUESTS = """
SELECT r.request_id::text AS request_id, r.family, r.reason, r.reason_text, r.requested_by,
       r.force, r.requested_at, l.status, l.model_version, l.metrics::text AS metrics,
       l.auc_score, l.f1_score, l.samples_trained, l.training_duration_seconds,
       l.outcome_reason, l.retrain_date, v.promoted_at
FROM retrain_requests r
LEFT JOIN model_retraining_log l ON l.request_id = r.request_id
LEFT JOIN model_versions v ON v.version = l.model_version AND l.status = 'promoted'
ORDER BY r.requested_at
"""

_POLICY = """
SELECT family, decision, reason_text, model_version, cutoff, counters::text AS counters
FROM policy_state
"""

_SCORES = """
SELECT 'expense-fraud' AS family, model_version, count(*) AS scored,
       count(*) FILTER (WHERE is_flagged) AS flagged
FROM expense_scores WHERE scoring_run = 'live' GROUP BY model_version
UNION ALL
SELECT 'delinquency', model_version, count(*), count(*) FILTER (WHERE is_flagged)
FROM customer_scores WHERE scoring_run = 'live' GROUP BY model_version
"""

NEW_SHEETS = """
SELECT count(*) FROM sheets
WHERE ingested_at > coalesce((SELECT cutoff FROM policy_state WHERE family = $1), '-infinity')
"""


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


@dataclass(frozen=True)
class Request:
    """A retrain request as PostgreSQL has it, with the trainer's outcome once there is one."""

    request_id: str
    family: str
    reason: str
    reason_text: str
    requested_by: str
    requested_at: float
    status: str | None
    version: str | None
    metrics: dict[str, float]
    samples: int | None
    duration_s: float | None
    outcome_reason: str | None
    finished_at: float | None
    promoted_at: float | None

    @classmethod
    def of(cls, row: Any) -> Request:
        metrics = json.loads(row["metrics"]) if row["metrics"] else {}
        return cls(
            request_id=row["request_id"],
            family=row["family"],
            reason=row["reason"],
            reason_text=row["reason_text"],
            requested_by=row["requested_by"],
            requested_at=row["requested_at"].timestamp(),
            status=row["status"],
            version=row["model_version"],
            metrics={k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
            samples=row["samples_trained"],
            duration_s=row["training_duration_seconds"],
            outcome_reason=row["outcome_reason"],
            finished_at=_epoch(row["retrain_date"]),
            promoted_at=_epoch(row["promoted_at"]),
        )

    def metrics_text(self) -> str:
        m = self.metrics
        # Without an AUC the holdout had no labelled fraud, and its F1 would say nothing.
        shown = [f"AUC {m['auc']:.3f}", f"F1 {m.get('f1', 0.0):.3f}"] if "auc" in m else []
        if "anomaly_rate" in m:
            shown.append(f"anomaly rate {m['anomaly_rate']:.1%}")
        return " · ".join(shown) or "—"


@dataclass(frozen=True)
class Policy:
    """A family's row of policy_state: the decision, and the champion's anomaly window."""

    decision: str
    reason_text: str
    model_version: str | None
    window_scored: int
    window_flagged: int

    @property
    def anomaly_rate(self) -> float | None:
        return self.window_flagged / self.window_scored if self.window_scored else None


@dataclass(frozen=True)
class Snapshot:
    """One look at everything, taken every POLL_S seconds."""

    taken_at: float
    requests: tuple[Request, ...] = ()
    policy: dict[str, Policy] = field(default_factory=dict)
    scored: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    loaded: dict[str, str | None] = field(default_factory=dict)
    consumed: dict[str, float] = field(default_factory=dict)
    stored: dict[str, float] = field(default_factory=dict)
    dead: dict[str, float] = field(default_factory=dict)
    dead_reasons: dict[str, float] = field(default_factory=dict)
    worker_answers: bool = False
    follower_ready: bool = False

    def request(self, request_id: str) -> Request | None:
        return next((r for r in self.requests if r.request_id == request_id), None)


def call(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
    """GET `url` (POST `body` with the bearer `token`); the status and the body."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers)  # noqa: S310 - http://127.0.0.1
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 - see above
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


def _parse_metrics(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return samples


def _by_label(
    samples: dict[str, list[tuple[dict[str, str], float]]],
    name: str,
    label: str,
    **wanted: str,
) -> dict[str, float]:
    totals: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        if all(labels.get(k) == v for k, v in wanted.items()) and value == value:  # not NaN
            key = labels.get(label, "")
            totals[key] = totals.get(key, 0.0) + value
    return totals


class Observer:
    """Polls PostgreSQL and the worker; keeps the latest snapshot and reports what changed."""

    def __init__(self, web: str, conn: Any, services: Services, view: View) -> None:
        self.web = web
        self.conn = conn
        self.services = services
        self.view = view
        self.latest = Snapshot(taken_at=time.time())
        self.reloaded_at = view.reloaded_at
        self._polled = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def snapshot(self) -> Snapshot:
        requests = tuple(Request.of(r) for r in await self.conn.fetch(_REQUESTS))
        policy: dict[str, Policy] = {}
        for row in await self.conn.fetch(_POLICY):
            counters = json.loads(row["counters"]) if row["counters"] else {}
            policy[row["family"]] = Policy(
                decision=row["decision"],
                reason_text=row["reason_text"],
                model_version=row["model_version"],
                window_scored=int(counters.get("window_scored", 0)),
                window_flagged=int(counters.get("window_flagged", 0)),
            )
        scored = {
            (r["family"], r["model_version"]): (int(r["scored"]), int(r["flagged"]))
            for r in await self.conn.fetch(_SCORES)
        }
        try:
            _, models_body = await asyncio.to_thread(call, f"{self.web}/models")
            _, metrics_body = await asyncio.to_thread(call, f"{self.web}/metrics")
        except OSError:
            # The worker is starting, or busy past the timeout: show the database's side now.
            return Snapshot(
                taken_at=time.time(),
                requests=requests,
                policy=policy,
                scored=scored,
                loaded=self.latest.loaded,
                consumed=self.latest.consumed,
                stored=self.latest.stored,
                dead=self.latest.dead,
                dead_reasons=self.latest.dead_reasons,
            )
        models = json.loads(models_body)
        loaded = {family: entry.get("version") for family, entry in models["loaded"].items()}
        samples = _parse_metrics(metrics_body.decode())
        return Snapshot(
            taken_at=time.time(),
            requests=requests,
            policy=policy,
            scored=scored,
            loaded=loaded,
            consumed=_by_label(samples, "retrainer_events_consumed_total", "topic"),
            stored=_by_label(samples, "retrainer_events_stored_total", "topic", outcome="new"),
            dead=_by_label(samples, "retrainer_dead_letters_total", "topic"),
            dead_reasons=_by_label(samples, "retrainer_dead_letters_total", "reason"),
            worker_answers=True,
            follower_ready=bool(models.get("follower_ready")),
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="demo-observer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # The cancellation asked for just above is how the loop ends.
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            self.services.check()
            current = await self.snapshot()
            self._report(self.latest, current)
            self.latest = current
            self.view.snapshot = current
            polled, self._polled = self._polled, asyncio.Event()
            polled.set()
            await asyncio.sleep(POLL_S)

    def _report(self, before: Snapshot, now: Snapshot) -> None:
        old = {r.request_id: r for r in before.requests}
        for request in now.requests:
            previous = old.get(request.request_id)
            if previous is None:
                self.view.log(
                    f"request  {request.family}: {request.reason} — “{request.reason_text}” "
                    f"(by {request.requested_by})",
                    "cyan",
                )
            if request.status and (previous is None or previous.status != request.status):
                samples = f"{request.samples} samples, " if request.samples else ""
                took = f"{request.duration_s:.1f} s" if request.duration_s is not None else ""
                self.view.log(
                    f"trained  {request.family} {request.version or ''}: "
                    f"{request.metrics_text()} ({samples}{took}) → {request.status}"
                    + (f" ({request.outcome_reason})" if request.outcome_reason else ""),
                    "green" if request.status == "promoted" else "yellow",
                )
        for family, version in now.loaded.items():
            if version and version != before.loaded.get(family):
                self.reloaded_at.setdefault((family, version), now.taken_at)
                self.view.log(f"reload   the worker now scores {family} with {version}", "magenta")
        new_dead = sum(now.dead.values()) - sum(before.dead.values())
        if new_dead > 0:
            reasons = ", ".join(
                f"{reason} {int(n - before.dead_reasons.get(reason, 0))}"
                for reason, n in sorted(now.dead_reasons.items())
                if n > before.dead_reasons.get(reason, 0)
            )
            self.view.log(f"dead-letter +{int(new_dead)} ({reasons})", "red")

    async def until(self, check: Callable[[Snapshot], T | None], within: float, what: str) -> T:
        """Wait for a snapshot on which `check` returns something; fail at the deadline."""
        deadline = time.monotonic() + within
        while True:
            if self._task is not None and self._task.done():
                self._task.result()  # re-raises why the observer stopped
                raise DemoError("the observer stopped")
            found = check(self.latest)
            if found is not None and found is not False:
                return found
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DemoError(f"timed out after {within:.0f} s waiting for {what}")
            try:
                await asyncio.wait_for(self._polled.wait(), timeout=min(remaining, 5.0))
            except TimeoutError:
                continue
