"""promtool lints live scrapes of a real worker and trainer; every known label set is there at 0
before any event, both say which build runs, and model info keeps only the live version."""

from __future__ import annotations

import asyncio
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge.settings import TopicNames
from schemas.base import ModelFamily
from schemas.errors import RejectReason
from schemas.model_updated import ModelUpdated
from schemas.retrain_requested import RetrainReason
from schemas.training_outcome import OutcomeStatus
from streams.policy import Action
from tests.e2e.conftest import require_program
from tests.factories import ROOT, publish, sheet, wait_until
from tests.integration.model_versions import add_version
from tests.integration.streams.conftest import Workers
from trainer.admission import CUTOFF_IN_FUTURE, REQUEST_ID_REUSED
from trainer.runner import OUTCOME_REJECTED, UNEXPECTED_ERROR

pytestmark = pytest.mark.e2e

# Only the versions this test announces may be loaded: no trigger can fire on its few sheets.
QUIET = {"RETRAINER_NEW_SHEETS_THRESHOLD": "100000000", "RETRAINER_ANOMALY_MIN_SAMPLE": "100000000"}

UPSTREAM = sorted(TopicNames.model_construct().upstream())
FAMILIES = [family.value for family in ModelFamily]
RELOAD_OUTCOMES = ["loaded", "refused", "failed", "fallback"]
TRAINER_DEAD_LETTER_REASONS = [
    *(reason.value for reason in RejectReason),
    CUTOFF_IN_FUTURE,
    REQUEST_ID_REUSED,
    UNEXPECTED_ERROR,
    OUTCOME_REJECTED,
]


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer, as text and as samples."""

    text: str

    def samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [
            (dict(sample.labels), sample.value)
            for family in text_string_to_metric_families(self.text)
            for sample in family.samples
            if sample.name == name
        ]

    def value(self, name: str, **labels: str) -> float | None:
        """The value of the one series of `name` whose labels are exactly `labels`."""
        found = [value for seen, value in self.samples(name) if seen == labels]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else None


def scrape(workers: Workers, port: int) -> Scrape:
    return Scrape(workers.get("/metrics", port))


def promtool_check_metrics(text: str) -> None:
    done = subprocess.run(
        [require_program("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = (done.stdout + done.stderr).strip()
    assert (done.returncode, problems) == (0, ""), f"promtool check metrics:\n{problems}"


def at_zero(metrics: Scrape, name: str, label_sets: list[dict[str, str]]) -> dict[str, Any]:
    """The label sets of `name` that are missing or not 0 (name -> {labels: value})."""
    wrong = {
        repr(labels): metrics.value(name, **labels)
        for labels in label_sets
        if metrics.value(name, **labels) != 0
    }
    return {name: wrong} if wrong else {}


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def assert_build_info(metrics: Scrape) -> None:
    assert metrics.samples("retrainer_build_info") == [
        (
            {
                "version": package_version("retrainer"),
                "python": platform.python_version(),
                "commit": git_commit(),
            },
            1.0,
        )
    ]


def announce(workers: Workers, version: str) -> None:
    """Publish model-updated for `version`, a registry version with real artifacts."""

    async def artifact() -> asyncpg.Record:
        conn = await asyncpg.connect(workers.database_url, timeout=10)
        try:
            row = await conn.fetchrow(
                "SELECT artifact_id, sha256 FROM model_artifacts WHERE version = $1 LIMIT 1",
                version,
            )
        finally:
            await conn.close()
        assert row is not None, version
        return row

    row = asyncio.run(artifact())
    now = datetime.now(UTC)
    update = ModelUpdated(
        occurred_at=now,
        family=ModelFamily.EXPENSE_FRAUD,
        version=version,
        artifact_id=row["artifact_id"],
        sha256=row["sha256"].strip(),
        metrics={},
        samples=1,
        data_cutoff=now,
        request_id=None,
        promoted_at=now,
    )
    publish(workers.stack.bootstrap, workers.topic("model-updated"), [update])


def test_live_scrapes_pass_promtool_with_every_label_set_and_only_the_live_model(
    services: Workers,
) -> None:
    services.extra_env.update(QUIET)
    services.create_topics()
    (worker_port,), trainer_port = services.start_with_trainer()
    worker, trainer = scrape(services, worker_port), scrape(services, trainer_port)

    # Before any event: the lint passes, and every known label set is exported at 0.
    promtool_check_metrics(worker.text)
    promtool_check_metrics(trainer.text)
    wrong: dict[str, Any] = {}
    for name, label_sets in {
        "retrainer_events_consumed_total": [{"topic": t} for t in UPSTREAM],
        "retrainer_events_stored_total": [
            {"topic": t, "outcome": o} for t in UPSTREAM for o in ("new", "present")
        ],
        "retrainer_dead_letters_total": [
            {"topic": t, "stage": "decode", "reason": r.value}
            for t in UPSTREAM
            for r in RejectReason
        ],
        "retrainer_sink_retries_total": [{"topic": t} for t in UPSTREAM],
        "retrainer_sink_batch_seconds_count": [{"topic": t} for t in UPSTREAM],
        "retrainer_events_scored_total": [{"family": f} for f in FAMILIES],
        "retrainer_events_flagged_total": [{"family": f} for f in FAMILIES],
        "retrainer_scoring_latency_seconds_count": [{"family": f} for f in FAMILIES],
        "retrainer_model_reloads_total": [
            {"family": f, "outcome": o} for f in FAMILIES for o in RELOAD_OUTCOMES
        ],
        "retrainer_model_reload_seconds_count": [{"family": f} for f in FAMILIES],
        "retrainer_retrain_requests_total": [
            {"family": f, "reason": r.value} for f in FAMILIES for r in RetrainReason
        ],
        "retrainer_requests_in_flight": [{"family": f} for f in FAMILIES],
    }.items():
        wrong |= at_zero(worker, name, label_sets)
    for name, label_sets in {
        "retrainer_training_outcomes_total": [
            {"family": f, "status": s.value} for f in FAMILIES for s in OutcomeStatus
        ],
        "retrainer_training_duration_seconds_count": [{"family": f} for f in FAMILIES],
        "retrainer_trainer_dead_letters_total": [
            {"reason": r} for r in TRAINER_DEAD_LETTER_REASONS
        ],
    }.items():
        wrong |= at_zero(trainer, name, label_sets)
    assert wrong == {}, "label sets missing (None) or not at 0 before any event"
    # The policy evaluates at start, so its decisions may have counted already: all are there.
    decisions = {
        (labels["family"], labels["action"])
        for labels, _ in worker.samples("retrainer_policy_decisions_total")
    }
    assert decisions == {(f, a.value) for f in FAMILIES for a in Action}

    # Both say which build runs; the trainer exports its process like the worker does.
    assert_build_info(worker)
    assert_build_info(trainer)
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"):
        assert worker.samples(name), name
        assert trainer.samples(name), name

    # Three versions, two swaps: model info keeps the live version only.
    for number in range(3):
        version = asyncio.run(add_version(services.database_url))
        announce(services, version)
        wait_until(
            lambda v=version: (
                services.get("/models", worker_port)["loaded"]["expense-fraud"]["version"] == v
            ),
            60,
            f"the worker to load {version}",
        )
        info = scrape(services, worker_port).samples("retrainer_model_info")
        assert info == [({"family": "expense-fraud", "version": version}, 1.0)], number

    # Events scored by the live model are counted by family only (no version label).
    lines = 5 * 6
    publish(
        services.stack.bootstrap,
        services.topic("expense-sheet"),
        [sheet(i, prefix=services.prefix) for i in range(5)],
    )
    wait_until(
        lambda: (
            scrape(services, worker_port).value(
                "retrainer_events_scored_total", family="expense-fraud"
            )
            == lines
        ),
        90,
        f"{lines} expense lines scored",
    )
    worker = scrape(services, worker_port)
    scored = worker.samples("retrainer_events_scored_total")
    assert {labels["family"]: value for labels, value in scored} == {
        "expense-fraud": lines,
        "delinquency": 0,
    }
    assert all(set(labels) == {"family"} for labels, _ in scored)
    promtool_check_metrics(worker.text)
    promtool_check_metrics(scrape(services, trainer_port).text)
