"""`retrainer demo`: the whole service on the local stack, driven through every retraining trigger.

A worker and a trainer run as processes on topics and a database private to the run; simulated
upstream traffic arrives in phases that each fire one trigger, and the screen shows what follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from retrainer.simulator.config import FraudKind
    from retrainer.simulator.scenario import SimMessage
    from streams.policy import PolicyConfig

T = TypeVar("T")

BUDGET_S = 180.0
"""What the demo promises: everything, setup and cleanup included, within three minutes."""

UPSTREAM = ("customer-created", "customer-activity", "expense-label", "expense-sheet")
TOPICS = (
    *UPSTREAM,
    "retrain-requested",
    "model-updated",
    "training-outcome",
    "expense-scored",
    "customer-scored",
    "dead-letter",
    "policy-signals",
)
DELINQUENCY = "delinquency"
EXPENSE_FRAUD = "expense-fraud"
ANOMALY_REASONS = ("anomaly_rate_high", "anomaly_rate_low")

# The data of each phase. The worker and trainer run with every policy default but one (below);
# these numbers are chosen so that the defaults fire, each trigger on its own.
DEMO_MIN_TRAINING_INTERVAL_S = 0
"""The one policy setting the demo changes: no minimum interval between automatic trainings,
so its four triggers fit in three minutes."""
CUSTOMERS = 60
"""Phase 1 simulates these, with their statements, and publishes them up to the 50th
well-formed one: the count trigger fires on it, and the request's data cutoff holds every customer
published, so the manual retraining of phase 4 learns from the same data and passes the gate."""
STATEMENTS_PER_CUSTOMER = 24
"""Two years of monthly statements: enough delinquencies among 50 customers to learn from."""
BAD_RATE = 0.01
"""Phase 1: about 1 % of its messages are malformed on purpose, to be dead-lettered."""
SHEETS_BEFORE_DRIFT = 10
"""Phase 2: the 10 new sheets the count trigger needs, no more (a sheet stored after the
request's data cutoff would count toward phase 3); each has 5+ lines (the trainer's minimum)."""
LABEL_FRACTION = 0.25
"""Phase 2: audit labels for a quarter of the lines: too few for the RandomForest (50), so
expense-fraud scores with its IsolationForest, whose flags make the anomaly rate."""
DRIFT_SHEET_POOL = 400
"""Sheets simulated over the scenario; phase 3 takes the largest ones after the drift."""
DRIFT_EMPLOYEES = 8
"""Few employees, so phase 3's sheets come from people whose habits phase 2 showed."""
DRIFT_AT = 0.15
"""The drift switch, as a fraction of the scenario's time span."""
DRIFTED_FRAUD_RATE = 0.9
"""Phase 3: heavy fraud after the drift (see drifted_fraud_mix for its kinds)."""
DRIFT_LINES = 220
"""Phase 3: enough lines for the anomaly rate's minimum sample (200) in under 10 sheets."""

STARTUP_S = 90.0
PHASE_S = 60.0
STOP_GRACE_S = 20.0
POLL_S = 0.25

SQL_LOG = (
    "SELECT retrain_id, retrain_date, family, trigger_reason, status, model_version, "
    "auc_score, f1_score, samples_trained, training_duration_seconds "
    "FROM model_retraining_log ORDER BY retrain_id;"
)


class DemoError(Exception):
    """A step of the demo failed; the message says which step and why."""


# -- the run: names, ports, folders ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_database(dsn: str, name: str) -> str:
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{name}"


@dataclass(frozen=True)
class DemoRun:
    """Everything private to one run: its id, topic prefix, database, ports, token, folder."""

    run_id: str
    bootstrap: str
    admin_dsn: str
    folder: Path
    web_port: int
    trainer_port: int
    token: str
    seed: int

    @classmethod
    def create(cls, bootstrap: str, admin_dsn: str, seed: int) -> DemoRun:
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return cls(
            run_id=run_id,
            bootstrap=bootstrap,
            admin_dsn=admin_dsn,
            folder=Path(cache) / "retrainer" / "demo" / run_id,
            web_port=_free_port(),
            trainer_port=_free_port(),
            token=secrets.token_urlsafe(18),
            seed=seed,
        )

    @property
    def prefix(self) -> str:
        """Starts every topic and consumer group name of the run."""
        return f"demo-{self.run_id}"

    @property
    def database(self) -> str:
        return "retrainer_demo_" + self.run_id.replace("-", "_")

    @property
    def database_url(self) -> str:
        return _with_database(self.admin_dsn, self.database)

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def topic(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def env(self) -> dict[str, str]:
        """The services' environment: only the run's own settings, every other one at default."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
        env.update(
            {
                "RETRAINER_KAFKA_BOOTSTRAP": self.bootstrap,
                "RETRAINER_DATABASE_URL": self.database_url,
                "RETRAINER_APP_ID": f"{self.prefix}-worker",
                "RETRAINER_WORKER_DATA_DIR": str(self.folder / "faust"),
                "RETRAINER_WEB_PORT": str(self.web_port),
                "RETRAINER_API_TOKEN": self.token,
                "RETRAINER_TRAINER_GROUP_ID": f"{self.prefix}-trainer",
                "RETRAINER_TRAINER_METRICS_PORT": str(self.trainer_port),
                # Phase 3 fires an automatic expense-fraud trigger a minute after phase 2's
                # training: the default minimum interval (10 min) would hold it past the budget.
                "RETRAINER_MIN_TRAINING_INTERVAL_S": str(DEMO_MIN_TRAINING_INTERVAL_S),
            }
        )
        for name in TOPICS:
            env[f"RETRAINER_TOPIC_{name.replace('-', '_').upper()}"] = self.topic(name)
        return env


# -- the worker and the trainer as processes ---------------------------------------------------


@dataclass
class Service:
    """One child process, in its own session so that stopping it stops all it started."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class Services:
    """The run's worker and trainer; stopped on every way out unless the user keeps them."""

    def __init__(self) -> None:
        self.running: list[Service] = []

    def start(self, name: str, command: str, run: DemoRun) -> Service:
        log = run.folder / f"{name}.log"
        with log.open("ab") as handle:
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
                [sys.executable, "-m", "retrainer.cli", command],
                env=run.env(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        service = Service(name, proc, log)
        self.running.append(service)
        return service

    def check(self) -> None:
        """Raise if a service died: nothing the demo waits for would come."""
        for service in self.running:
            code = service.proc.poll()
            if code is not None:
                raise DemoError(
                    f"the {service.name} exited with code {code}; its log: {service.log}"
                )

    def stop(self) -> list[str]:
        """SIGTERM each process group, wait, SIGKILL what is left; returns what happened."""
        notes: list[str] = []
        for service in self.running:
            if service.proc.poll() is None:
                _signal_group(service.proc.pid, signal.SIGTERM)
        for service in self.running:
            if service.proc.returncode is not None:
                # It was already gone when the demo came to stop it; reap what it started too.
                _signal_group(service.proc.pid, signal.SIGKILL)
                notes.append(
                    f"{service.name} (pid {service.proc.pid}) had exited "
                    f"with code {service.proc.returncode}"
                )
                continue
            try:
                service.proc.wait(timeout=STOP_GRACE_S)
                notes.append(f"{service.name} (pid {service.proc.pid}) stopped")
            except subprocess.TimeoutExpired:
                _signal_group(service.proc.pid, signal.SIGKILL)
                service.proc.wait(timeout=10)
                notes.append(
                    f"{service.name} (pid {service.proc.pid}) killed after {STOP_GRACE_S:.0f} s"
                )
        self.running.clear()
        return notes


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return  # it exited between the check and the signal


# -- setup and teardown of the stack's side ----------------------------------------------------


async def _create_database(run: DemoRun) -> None:
    import asyncpg

    from retrainer.migrate import migrate

    conn = await asyncpg.connect(run.admin_dsn, timeout=15)
    try:
        await conn.execute(f'CREATE DATABASE "{run.database}"')
    finally:
        await conn.close()
    await migrate(run.database_url)


async def _drop_database(run: DemoRun) -> None:
    import asyncpg

    conn = await asyncpg.connect(run.admin_dsn, timeout=15)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
    finally:
        await conn.close()


def _create_topics(run: DemoRun) -> int:
    """The worker's own topic setup (partitions, compaction, sizes), under the run's names.

    Returns the number of partitions each topic has.
    """
    from streams.bootstrap import TopicSetupError, ensure_topics
    from streams.settings import StreamsSettings, TopicNames

    names = TopicNames(**{name.replace("-", "_"): run.topic(name) for name in TOPICS})

    class RunSettings(StreamsSettings):
        def topics(self) -> TopicNames:
            return names

    # The defaults the worker runs with (its environment sets no RETRAINER_PARTITIONS).
    partitions = int(StreamsSettings.model_fields["partitions"].default)
    try:
        ensure_topics(RunSettings(kafka_bootstrap=run.bootstrap, partitions=partitions))
    except TopicSetupError as exc:
        raise DemoError(str(exc)) from exc
    return partitions


def _delete_topics(run: DemoRun) -> list[str]:
    """Delete every topic and consumer group of the run (Faust's internal ones included)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": run.bootstrap, "log_level": 4})
    problems: list[str] = []
    names = [t for t in admin.list_topics(timeout=15).topics if t.startswith(run.prefix)]
    if names:
        for name, future in admin.delete_topics(names, operation_timeout=30).items():
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                problems.append(f"topic {name} not deleted: {exc}")
    groups = [f"{run.prefix}-worker", f"{run.prefix}-trainer"]
    for group, future in admin.delete_consumer_groups(groups, request_timeout=15).items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:  # never joined: nothing to do
                problems.append(f"consumer group {group} not deleted: {exc}")
    return problems


# -- the simulated upstream traffic -------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """The messages of every phase, simulated up front (same seed, same bytes)."""

    statements: list[SimMessage]
    """Phase 1, first: the customers' statement history, which the model learns from."""
    customers: list[SimMessage]
    """Phase 1, then: the customer records, which the trigger counts."""
    labels: list[SimMessage]
    """Phase 2, first: the auditors' labels of the phase's expense lines."""
    sheets: list[SimMessage]
    """Phase 2, then: sheets from before the drift."""
    drifted: list[SimMessage]
    """Phase 3 picks from these: sheets after the drift, in time order."""


def drifted_fraud_mix() -> dict[FraudKind, float]:
    """After the drift a ring files round amounts just under the approval limit."""
    from retrainer.simulator.config import FraudKind

    mix = dict.fromkeys(FraudKind, 0.5)
    mix.update({FraudKind.JUST_UNDER_LIMIT: 3.0, FraudKind.ROUND_AMOUNT: 3.0})
    mix[FraudKind.DUPLICATE_RECEIPT] = 1.0
    return mix


def build_traffic(run: DemoRun) -> Traffic:
    from retrainer.simulator.config import (
        CustomerConfig,
        DriftConfig,
        ExpenseConfig,
        ScenarioConfig,
    )
    from retrainer.simulator.events import (
        ACTIVITY_TOPIC,
        CUSTOMER_TOPIC,
        LABEL_TOPIC,
        SHEET_TOPIC,
    )
    from retrainer.simulator.scenario import Scenario
    from schemas import ExpenseSheetSubmitted

    people = Scenario(
        ScenarioConfig(
            seed=run.seed,
            id_prefix=run.run_id,
            customers=CustomerConfig(
                customers=CUSTOMERS, statements_per_customer=STATEMENTS_PER_CUSTOMER
            ),
            expenses=ExpenseConfig(sheets=0),
            bad_rate=BAD_RATE,
        )
    )
    everyone = list(people.messages())

    office = Scenario(
        ScenarioConfig(
            seed=run.seed,
            id_prefix=run.run_id,
            customers=CustomerConfig(customers=0),
            expenses=ExpenseConfig(
                sheets=DRIFT_SHEET_POOL,
                employees=DRIFT_EMPLOYEES,
                label_fraction=LABEL_FRACTION,
            ),
            drift=DriftConfig(
                at=DRIFT_AT, fraud_rate=DRIFTED_FRAUD_RATE, fraud_mix=drifted_fraud_mix()
            ),
        )
    )
    drift_time = office.config.drift_time
    assert drift_time is not None  # noqa: S101 - set just above
    before: list[SimMessage] = []
    drifted: list[SimMessage] = []
    labels: dict[str, SimMessage] = {}
    for message in office.messages():
        event = message.event
        if message.topic == LABEL_TOPIC and event is not None:
            labels[getattr(event, "expense_id", "")] = message
        elif message.topic == SHEET_TOPIC and isinstance(event, ExpenseSheetSubmitted):
            if event.submitted_at >= drift_time:
                drifted.append(message)
            elif len(event.lines) >= 5 and len(before) < SHEETS_BEFORE_DRIFT:
                before.append(message)
    chosen_lines = {
        line.expense_id
        for m in before
        if isinstance(m.event, ExpenseSheetSubmitted)
        for line in m.event.lines
    }
    audited = [m for expense_id, m in labels.items() if expense_id in chosen_lines]
    created = [m for m in everyone if m.topic == CUSTOMER_TOPIC]
    customers = created[: nth_valid(created, _policy().new_customers_threshold) + 1]
    ids = {getattr(m.event, "customer_id", None) for m in customers if m.event is not None}
    return Traffic(
        statements=[
            m
            for m in everyone
            if m.topic == ACTIVITY_TOPIC
            and (m.event is None or getattr(m.event, "customer_id", None) in ids)
        ],
        customers=customers,
        labels=audited,
        sheets=before,
        drifted=drifted,
    )


def pick_drifted(pool: Sequence[SimMessage], budget: int, lines: int) -> list[SimMessage]:
    """The largest drifted sheets, at most `budget` of them, until they hold `lines` lines."""
    from schemas import ExpenseSheetSubmitted

    def size(message: SimMessage) -> int:
        event = message.event
        return len(event.lines) if isinstance(event, ExpenseSheetSubmitted) else 0

    chosen: list[SimMessage] = []
    total = 0
    for message in sorted(pool, key=size, reverse=True):
        if len(chosen) >= budget or total >= lines:
            break
        chosen.append(message)
        total += size(message)
    return sorted(chosen, key=lambda m: m.position)


def line_count(messages: Sequence[SimMessage]) -> int:
    from schemas import ExpenseSheetSubmitted

    return sum(len(m.event.lines) for m in messages if isinstance(m.event, ExpenseSheetSubmitted))


def nth_valid(messages: Sequence[SimMessage], n: int) -> int:
    """The index of the n-th well-formed message: the one that makes a count reach n."""
    seen = 0
    for index, message in enumerate(messages):
        seen += message.event is not None
        if seen == n:
            return index
    raise DemoError(f"the phase has only {seen} well-formed messages; its trigger needs {n}")


def nth_line(messages: Sequence[SimMessage], n: int) -> int:
    """The index of the sheet whose lines make the count of lines reach n."""
    for index in range(len(messages)):
        if line_count(messages[: index + 1]) >= n:
            return index
    raise DemoError(f"the phase has only {line_count(messages)} lines; its trigger needs {n}")


@dataclass(frozen=True)
class Published:
    """What one phase put on the topics, and when the broker had acknowledged all of it."""

    sent: dict[str, int]
    malformed: int
    acked_at: float
    seconds: float


def publish(run: DemoRun, messages: Sequence[SimMessage]) -> Published:
    """Send with the simulator's producer (acks=all, idempotent) and wait for every ack."""
    from retrainer.simulator.publish import KafkaSink, PublishOptions

    options = PublishOptions(bootstrap=run.bootstrap, topic_prefix=f"{run.prefix}-")
    sink = KafkaSink(options)
    began = time.monotonic()
    for message in messages:
        sink.send(message)
    sink.close()
    acked_at = time.time()
    if sink.failures:
        raise DemoError(
            f"{sink.failures} message(s) were not delivered: {'; '.join(sink.failure_samples)}"
        )
    sent = {name: sink.delivered.get(options.topic_name(name), 0) for name in UPSTREAM}
    return Published(
        sent={k: v for k, v in sent.items() if v},
        malformed=sum(sink.malformed.values()),
        acked_at=acked_at,
        seconds=time.monotonic() - began,
    )


# -- what the services show: PostgreSQL and the worker's HTTP API --------------------------------

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

_NEW_SHEETS = """
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


def _get(url: str, token: str | None = None, body: bytes | None = None) -> tuple[int, bytes]:
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

    def __init__(self, run: DemoRun, conn: Any, services: Services, view: View) -> None:
        self.run = run
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
            _, models_body = await asyncio.to_thread(_get, f"{self.run.web}/models")
            _, metrics_body = await asyncio.to_thread(_get, f"{self.run.web}/metrics")
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


# -- the screen ---------------------------------------------------------------------------------


class View:
    """A Live dashboard refreshed twice a second on a terminal; plain lines anywhere else."""

    def __init__(self, console: Console, run: DemoRun, started: float) -> None:
        self.console = console
        self.run = run
        self.started = started
        self.interactive = console.is_terminal
        self.snapshot = Snapshot(taken_at=time.time())
        self.published: Counter[str] = Counter()
        self.phase_text = "starting"
        self.lines: list[Text] = []
        self.live: Live | None = None
        self.reloaded_at: dict[tuple[str, str], float] = {}
        """(family, version) → when the worker's /models first showed it scoring."""

    def elapsed(self, at: float | None = None) -> float:
        return (at if at is not None else time.time()) - self.started

    def log(self, text: str, style: str = "") -> None:
        stamp = f"[{self.elapsed():6.1f}s] "
        if self.interactive:
            self.lines.append(Text(stamp + text, style=style))
            del self.lines[:-12]
        else:
            self.console.print(stamp + text, markup=False, highlight=False, soft_wrap=True)

    def phase(self, text: str) -> None:
        self.phase_text = text
        self.log(f"── {text}", "bold")

    def __enter__(self) -> View:
        if self.interactive:
            self.live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=2,
                transient=False,
            )
            self.live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None

    def render(self) -> RenderableType:
        snap = self.snapshot
        header = Text.assemble(
            ("retrainer demo", "bold"),
            f" · run {self.run.run_id} · {self.elapsed():.0f} s · ",
            (self.phase_text, "bold cyan"),
        )
        lines = tuple(self.lines)
        return Group(
            Panel(header),
            events_table(self.published, snap),
            requests_table(snap, self.started, self.reloaded_at),
            scorers_table(snap),
            Panel(Group(*lines) if lines else Text(""), title="what happened"),
        )


def events_table(published: Counter[str], snap: Snapshot) -> Table:
    table = Table(title="events per topic", title_justify="left", expand=False)
    for column in ("topic", "published", "consumed", "stored (new)", "dead-lettered"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for topic in UPSTREAM:
        table.add_row(
            topic,
            str(published.get(topic, 0)),
            f"{snap.consumed.get(topic, 0):.0f}",
            f"{snap.stored.get(topic, 0):.0f}",
            f"{snap.dead.get(topic, 0):.0f}",
        )
    return table


def requests_table(
    snap: Snapshot, started: float, reloaded_at: dict[tuple[str, str], float]
) -> Table:
    table = Table(
        title="retraining: requests, trainings, promotions, reloads", title_justify="left"
    )
    for column in ("at", "family", "reason", "by", "outcome", "metrics", "version", "scoring"):
        table.add_column(column, overflow="fold")
    for r in snap.requests:
        scoring = reloaded_at.get((r.family, r.version or ""))
        table.add_row(
            f"{r.requested_at - started:.1f}s",
            r.family,
            f"{r.reason}: {r.reason_text}",
            r.requested_by,
            r.status or "training…",
            r.metrics_text() if r.status else "",
            r.version or "",
            f"since {scoring - started:.1f}s" if scoring is not None else "",
        )
    return table


def scorers_table(snap: Snapshot) -> Table:
    table = Table(
        title="scorers (the worker's /models, the score tables) and policy", title_justify="left"
    )
    for column in ("family", "scores with", "scored, by model version", "policy now"):
        table.add_column(column, overflow="fold")
    for family in (DELINQUENCY, EXPENSE_FRAUD):
        scored = [
            f"{version}: {n} ({flagged / n:.0%} flagged)" if version else f"before a model: {n}"
            for (of, version), (n, flagged) in sorted(snap.scored.items())
            if of == family and n
        ]
        policy = snap.policy.get(family)
        table.add_row(
            family,
            snap.loaded.get(family) or "no model yet",
            "\n".join(scored),
            f"{policy.decision}: {policy.reason_text}" if policy else "",
        )
    return table


# -- the phases ----------------------------------------------------------------------------------


def _policy() -> PolicyConfig:
    """The worker's policy: its defaults, but for the minimum interval the demo turns off."""
    from streams.policy import PolicyConfig

    return PolicyConfig(min_training_interval=timedelta(seconds=DEMO_MIN_TRAINING_INTERVAL_S))


@dataclass
class Trigger:
    """One trigger fired by the demo, from the event that crossed its threshold to the reload."""

    kind: str
    family: str
    event_at: float
    request: Request | None = None
    reload_at: float | None = None


class Demo:
    """Runs the phases against the run's services and records each trigger's timeline."""

    def __init__(self, run: DemoRun, view: View, observer: Observer, traffic: Traffic) -> None:
        self.run = run
        self.view = view
        self.observer = observer
        self.traffic = traffic
        self.triggers: list[Trigger] = []

    async def send(self, messages: Sequence[SimMessage], note: str = "") -> Published:
        done = await asyncio.to_thread(publish, self.run, messages)
        self.view.published.update(done.sent)
        parts = ", ".join(f"{n} {topic}" for topic, n in done.sent.items())
        bad = f" ({done.malformed} malformed on purpose)" if done.malformed else ""
        self.view.log(f"published {parts}{bad}{note}; acknowledged in {done.seconds:.1f} s")
        return done

    async def send_crossing(self, messages: Sequence[SimMessage], crossing: int) -> float:
        """Publish, in two parts; returns when the broker acknowledged the crossing message.

        messages[crossing] is the event that brings the trigger's count to its threshold: the
        moment the broker holds it is where the latency to the scorers is measured from.
        """
        first = await self.send(messages[: crossing + 1], " — the last one crosses the threshold")
        if crossing + 1 < len(messages):
            await self.send(messages[crossing + 1 :])
        return first.acked_at

    async def follow(
        self, trigger: Trigger, reasons: Sequence[str], seen: set[str], need_promotion: bool
    ) -> Trigger:
        """Wait for the request, its outcome, and (when promoted) the worker's reload."""
        family = trigger.family

        def requested(snap: Snapshot) -> Request | None:
            for r in snap.requests:
                if r.family == family and r.request_id not in seen:
                    if r.reason not in reasons:
                        raise DemoError(
                            f"{family} was retrained for {r.reason} (“{r.reason_text}”), "
                            f"not for {' or '.join(reasons)}"
                        )
                    return r
            return None

        def explain(snap: Snapshot) -> str:
            policy = snap.policy.get(family)
            if policy is None:
                return ""
            rate = policy.anomaly_rate
            window = (
                f" (champion's anomaly rate {rate:.1%} over {policy.window_scored} lines)"
                if rate is not None and family == EXPENSE_FRAUD
                else ""
            )
            return f"; the policy says: {policy.reason_text}{window}"

        try:
            first = await self.observer.until(requested, PHASE_S, f"a {family} retrain request")
        except DemoError as exc:
            raise DemoError(f"{exc}{explain(self.observer.latest)}") from exc
        request_id = first.request_id

        def finished(snap: Snapshot) -> Request | None:
            r = snap.request(request_id)
            return r if r is not None and r.status is not None else None

        request = await self.observer.until(finished, PHASE_S, f"the trainer to answer {family}")
        trigger.request = request
        if request.status != "promoted":
            if need_promotion:
                raise DemoError(
                    f"{family} was {request.status}, not promoted: {request.outcome_reason}"
                )
            return trigger
        version = request.version

        def reloaded(snap: Snapshot) -> bool:
            policy = snap.policy.get(family)
            return (
                snap.loaded.get(family) == version
                and policy is not None
                and policy.model_version == version
            )

        await self.observer.until(reloaded, PHASE_S, f"the worker to score {family} with {version}")
        trigger.request = self.observer.latest.request(request_id) or request
        trigger.reload_at = self.observer.reloaded_at.get((family, version or ""))
        return trigger

    def seen(self) -> set[str]:
        return {r.request_id for r in self.observer.latest.requests}

    async def history(self, messages: Sequence[SimMessage]) -> None:
        """Publish what a model learns from, and wait until the worker has handled all of it.

        Then the trigger's data cutoff, taken when the counted events arrive, includes it all.
        """
        done = await self.send(messages)

        def handled(snap: Snapshot) -> bool:
            return all(
                snap.stored.get(topic, 0) + snap.dead.get(topic, 0) >= count
                for topic, count in done.sent.items()
            )

        await self.observer.until(handled, PHASE_S, "the worker to store the history")

    async def new_customers(self) -> None:
        self.view.phase(
            f"phase 1/4 · {_policy().new_customers_threshold} new customers: their two years of "
            "statements first "
            f"(~{BAD_RATE:.0%} of the messages malformed), then the customer records "
            "→ delinquency"
        )
        seen = self.seen()
        await self.history(self.traffic.statements)
        customers = self.traffic.customers
        crossing = nth_valid(customers, _policy().new_customers_threshold)
        event_at = await self.send_crossing(customers, crossing)
        trigger = Trigger("new customers", DELINQUENCY, event_at)
        self.triggers.append(await self.follow(trigger, ["new_customers"], seen, True))

    async def new_sheets(self) -> None:
        sheets = self.traffic.sheets
        self.view.phase(
            f"phase 2/4 · {len(sheets)} expense sheets ({line_count(sheets)} lines), after "
            "the auditors' labels of some of their lines → expense-fraud"
        )
        seen = self.seen()
        await self.history(self.traffic.labels)
        event_at = await self.send_crossing(
            sheets, nth_valid(sheets, _policy().new_sheets_threshold)
        )
        trigger = Trigger("new sheets", EXPENSE_FRAUD, event_at)
        self.triggers.append(await self.follow(trigger, ["new_sheets"], seen, True))

    async def drift(self) -> None:
        policy = _policy()
        already = int(await self.observer.conn.fetchval(_NEW_SHEETS, EXPENSE_FRAUD))
        budget = policy.new_sheets_threshold - 1 - already
        chosen = pick_drifted(self.traffic.drifted, budget, DRIFT_LINES)
        lines = line_count(chosen)
        if lines < policy.anomaly_min_sample:
            raise DemoError(
                f"the drift phase needs {policy.anomaly_min_sample} lines in at most {budget} "
                f"sheets; the largest drifted sheets hold only {lines} (try another --seed)"
            )
        self.view.phase(
            f"phase 3/4 · drift: {len(chosen)} sheets, {lines} lines, ~{DRIFTED_FRAUD_RATE:.0%} "
            "fraud (mostly round amounts just under the approval limit): under the "
            f"{policy.new_sheets_threshold}-sheet count, over the {policy.anomaly_min_sample}-line "
            f"sample of the default {policy.anomaly_rate_low:.0%}–{policy.anomaly_rate_high:.0%} "
            "anomaly-rate band → expense-fraud"
        )
        seen = self.seen()
        event_at = await self.send_crossing(chosen, nth_line(chosen, policy.anomaly_min_sample))
        trigger = Trigger("anomaly rate", EXPENSE_FRAUD, event_at)
        self.triggers.append(await self.follow(trigger, ANOMALY_REASONS, seen, False))

    async def manual(self) -> None:
        self.view.phase("phase 4/4 · POST /retraining/trigger (bearer token) → delinquency")
        seen = self.seen()
        body = json.dumps({"family": DELINQUENCY, "requested_by": "retrainer demo"}).encode()
        status, answer = await asyncio.to_thread(
            _get, f"{self.run.web}/retraining/trigger", self.run.token, body
        )
        answered_at = time.time()
        reply = json.loads(answer)
        if status != 202 or reply.get("status") != "accepted":
            raise DemoError(f"POST /retraining/trigger answered {status}: {reply}")
        self.view.log(f"POST /retraining/trigger → {status} request {reply['request_id']}")
        trigger = Trigger("manual (API)", DELINQUENCY, answered_at)
        self.triggers.append(await self.follow(trigger, ["manual"], seen, True))


# -- the summary ---------------------------------------------------------------------------------


def _seconds(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{end - start:.1f} s"


def summary_table(triggers: Sequence[Trigger]) -> Table:
    table = Table(title="triggers: from the threshold-crossing event to the scorers")
    table.add_column("trigger", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("reason", max_width=36)
    table.add_column("outcome", no_wrap=True)
    table.add_column("version", no_wrap=True)
    for column in ("event→request", "→promoted", "→scoring", "event→scoring"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in triggers:
        r = t.request
        if r is None:
            table.add_row(t.kind, t.family, "—", "—", "—", "—", "—", "—", "—")
            continue
        table.add_row(
            t.kind,
            t.family,
            r.reason_text,
            r.status or "—",
            r.version or "—",
            _seconds(t.event_at, r.requested_at),
            _seconds(r.requested_at, r.promoted_at),
            _seconds(r.promoted_at, t.reload_at),
            _seconds(t.event_at, t.reload_at),
        )
    return table


def print_summary(console: Console, run: DemoRun, demo: Demo | None, keep: bool) -> None:
    snap = demo.observer.latest if demo is not None else None
    policy = _policy()
    if demo is not None and snap is not None:
        console.print(events_table(demo.view.published, snap))
        console.print(scorers_table(snap))
        console.print(summary_table(demo.triggers))
        console.print(
            "event = the moment the broker acknowledged the message that crossed the threshold "
            f"(customer no. {policy.new_customers_threshold}, sheet no. "
            f"{policy.new_sheets_threshold}, the sheet bringing the lines to "
            f"{policy.anomaly_min_sample}; for the manual trigger the API's 202); "
            "scoring = the first poll (every "
            f"{POLL_S:.2f} s) on which the worker's GET /models shows the new version.",
            highlight=False,
        )
        promoted = [t for t in demo.triggers if t.request and t.request.status == "promoted"]
        reloaded = [t for t in promoted if t.reload_at is not None]
        console.print(
            f"{len(demo.triggers)} trigger kinds fired · {len(promoted)} promotions · "
            f"{len(reloaded)} reloads · dead-lettered {sum(snap.dead.values()):.0f}",
            highlight=False,
        )
    console.print("[bold]where to look next[/]")
    state = "still running (--keep)" if keep else "stopped; rerun with --keep to explore"
    console.print(f"  worker ({state}):", highlight=False)
    console.print(f"    status   {run.web}/retraining/status?family=delinquency", highlight=False)
    console.print(f"    status   {run.web}/retraining/status?family=expense-fraud", highlight=False)
    console.print(f"    models   {run.web}/models", highlight=False)
    console.print(f"    metrics  {run.web}/metrics", highlight=False)
    console.print(
        f"    trainer metrics http://127.0.0.1:{run.trainer_port}/metrics", highlight=False
    )
    if keep:
        console.print(
            f"    trigger  curl -X POST -H 'Authorization: Bearer {run.token}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"family": "expense-fraud"}}\' {run.web}/retraining/trigger',
            highlight=False,
        )
    where = run.database_url if keep else f"{run.database_url} (dropped; kept with --keep)"
    console.print(f"  database: {where}", highlight=False)
    console.print(
        f"  the retraining log: psql '{run.database_url}' -c \"{SQL_LOG}\"", highlight=False
    )
    console.print(f"  logs: {run.folder}/worker.log, {run.folder}/trainer.log", highlight=False)
    console.print(
        "  not shown: the 24 h interval trigger (RETRAINER_INTERVAL_HOURS) — it needs a day.",
        highlight=False,
    )


# -- the command ---------------------------------------------------------------------------------


async def _wait_ready(observer: Observer, run: DemoRun, services: Services) -> None:
    def trainer_answers() -> bool:
        try:
            status, _ = _get(f"http://127.0.0.1:{run.trainer_port}/metrics")
        except OSError:
            return False
        return status == 200

    def worker_ready(snap: Snapshot) -> bool:
        # The policy agent has run its first step for both families (so the worker holds its
        # partitions), and the model follower has read model-updated to its end.
        return snap.follower_ready and {DELINQUENCY, EXPENSE_FRAUD} <= set(snap.policy)

    await observer.until(worker_ready, STARTUP_S, "the worker to join its group and answer")
    deadline = time.monotonic() + STARTUP_S
    while not await asyncio.to_thread(trainer_answers):
        services.check()
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {STARTUP_S:.0f} s waiting for the trainer")
        await asyncio.sleep(POLL_S)


@dataclass
class Progress:
    """What the run got to, kept outside the event loop so a failed run can still report it."""

    demo: Demo | None = None
    interrupted: bool = False


async def _main(run: DemoRun, view: View, services: Services, progress: Progress) -> None:
    import asyncpg

    view.phase("setting up: database, topics, worker, trainer")
    await _create_database(run)
    view.log(f"database {run.database} created and migrated")
    partitions = await asyncio.to_thread(_create_topics, run)
    view.log(f"topics {run.prefix}-* created ({len(TOPICS)}, {partitions} partitions each)")
    traffic = await asyncio.to_thread(build_traffic, run)
    worker = services.start("worker", "worker", run)
    trainer = services.start("trainer", "trainer", run)
    view.log(f"worker pid {worker.proc.pid} (:{run.web_port}), trainer pid {trainer.proc.pid}")
    conn = await asyncpg.connect(run.database_url, timeout=15)
    observer = Observer(run, conn, services, view)
    demo = progress.demo = Demo(run, view, observer, traffic)
    observer.start()
    try:
        await _wait_ready(observer, run, services)
        view.log("worker and trainer ready")
        await demo.new_customers()
        await demo.new_sheets()
        await demo.drift()
        await demo.manual()
        view.phase("done")
    finally:
        await observer.stop()
        await conn.close()


async def _guarded(run: DemoRun, view: View, services: Services, progress: Progress) -> None:
    """Run the demo, turning SIGTERM into a cancellation so that cleanup still happens."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_main(run, view, services, progress))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_demo(keep: bool, seed: int, console: Console) -> int:
    """Run the demo; returns the exit code (0 when every phase did what it should)."""
    import asyncpg
    import psutil

    from retrainer.stack import manager
    from retrainer.stack.errors import StackError
    from retrainer.stack.settings import StackSettings

    # From the moment the command started: the CLI's own imports count too.
    started = psutil.Process().create_time()
    settings = StackSettings()
    try:
        manager.up(settings)
    except StackError as exc:
        console.print(f"[bold red]error:[/] the local stack is not available: {exc.message}")
        console.print(f"[yellow]what to do:[/] {exc.hint}")
        return 2
    run = DemoRun.create(settings.bootstrap, settings.dsn, seed)
    run.folder.mkdir(parents=True, exist_ok=True)
    console.print(f"run {run.run_id} · seed {seed} · logs in {run.folder}", highlight=False)
    services = Services()
    view = View(console, run, started)
    progress = Progress()
    failure: str | None = None
    code = 0
    try:
        with view:
            asyncio.run(_guarded(run, view, services, progress))
    except DemoError as exc:
        failure, code = str(exc), 1
    except (OSError, asyncpg.PostgresError) as exc:
        failure, code = f"{type(exc).__name__}: {exc}", 1
    except KeyboardInterrupt:
        failure, code, progress.interrupted = "interrupted (Ctrl-C)", 130, True
    except asyncio.CancelledError:
        failure, code, progress.interrupted = "terminated (SIGTERM)", 143, True
    finally:
        # --keep leaves everything for a look around, but an interrupted run is never kept.
        if not keep or progress.interrupted:
            for note in services.stop():
                console.print(f"stopped: {note}", highlight=False)
            for problem in _cleanup(run):
                console.print(f"[yellow]cleanup:[/] {problem}", highlight=False)
    kept = keep and not progress.interrupted
    print_summary(console, run, progress.demo, kept)
    if kept:
        groups = " ".join(f"-{s.proc.pid}" for s in services.running)
        console.print(
            f"  kept: worker and trainer (stop them: kill -TERM -- {groups}), "
            f"topics {run.prefix}-*, database {run.database}",
            highlight=False,
        )
    wall = time.time() - started
    verdict = "within" if wall < BUDGET_S else "OVER"
    console.print(
        f"wall time {wall:.1f} s ({verdict} the {BUDGET_S:.0f} s budget)", highlight=False
    )
    if failure is not None:
        console.print(f"[bold red]demo failed:[/] {failure}", highlight=False)
    return code


def _cleanup(run: DemoRun) -> list[str]:
    import asyncpg
    from confluent_kafka import KafkaException

    problems: list[str] = []
    try:
        asyncio.run(_drop_database(run))
    except (OSError, asyncpg.PostgresError) as exc:
        problems.append(f"database {run.database} not dropped: {exc}")
    try:
        problems.extend(_delete_topics(run))
    except KafkaException as exc:
        problems.append(f"topics {run.prefix}-* not deleted: {exc}")
    return problems


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the retrainer CLI."""

    @app.command("demo")
    def demo(
        keep: Annotated[
            bool,
            typer.Option("--keep", help="leave the worker, trainer, topics and database running"),
        ] = False,
        seed: Annotated[int, typer.Option(min=0, help="simulator seed: same seed, same data")] = 0,
    ) -> None:
        """Show the service end to end: every retraining trigger, live, in under 3 minutes."""
        console = Console() if sys.stdout.isatty() else Console(width=170)
        code = run_demo(keep, seed, console)
        if code:
            raise typer.Exit(code=code)
