"""A holdout without positives is no evidence: said in the log, the outcome and `check`'s answer.

The statements of the holdout period are rewritten so that nobody is delinquent in it; the
training part keeps its delinquencies. The first model of the family is promoted flagged as
unevaluated; a later one is compared with the champion on what there is (flags and scores on
the same rows), never on the holdout's metrics.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import pandas as pd
import pytest

from retrainer.harness import topic_env
from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus
from tests.conftest import Stack, TopicFactory
from tests.factories import ROOT
from tests.integration.trainer.kafka_helpers import request, settings_for
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames, world
from trainer import datasets, families
from trainer.bootstrap import build
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration

GAP = re.compile(r"holdout has no positives \(0 of (\d+)\)")


def _cutoff(f: Frames) -> datetime:
    return datetime.fromtimestamp(f.end_us / 1_000_000, tz=UTC)


@functools.cache
def quiet_holdout() -> Frames:
    """A small world whose statements from the holdout's first day on show nobody past due."""
    f = frames(world(seed=11, customers=120, sheets=20))
    settings = TrainerSettings(max_customers=0)
    activity = f.activity.drop(columns=["delinquent_ahead"])
    cutoff_day = datasets.day_number(_cutoff(f))
    data = families.delinquency_set(activity, f.customers, cutoff_day=cutoff_day, settings=settings)
    day = (f.activity["statement_date"] - pd.Timestamp("1970-01-01")).dt.days
    quiet = f.activity.copy()
    quiet.loc[day >= data.split.holdout_start, "days_past_due"] = 0
    return replace(f, activity=quiet)


def _check(settings: TrainerSettings) -> str:
    """`retrainer check --force` as a user runs it; its answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env.update(
        {
            "RETRAINER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "RETRAINER_DATABASE_URL": settings.dsn,
            **topic_env(
                model_updated=settings.topics.model_updated,
                training_outcome=settings.topics.training_outcome,
            ),
            "COLUMNS": "400",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "check", "--force"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    return done.stdout


async def _versions(url: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(
            await conn.fetch(
                "SELECT v.version, v.status, v.status_reason, l.f1_score, l.precision_score,"
                " l.gate_overridden FROM model_versions v"
                " JOIN model_retraining_log l ON l.model_version = v.version"
                " ORDER BY v.created_at"
            )
        )
    finally:
        await conn.close()


async def test_a_holdout_without_positives_promotes_only_a_first_model_and_says_so(
    stack: Stack,
    make_topic: TopicFactory,
    fresh_database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = fresh_database_url
    await seed(url, quiet_holdout())
    settings = settings_for(stack, url, make_topic)

    # The first model: promoted, but flagged as unevaluated in the answer.
    first = _check(settings)
    assert "Model: promoted to champion — unevaluated: holdout has no positives (0 of" in first
    assert "no champion yet" in first
    assert "Warning: holdout has no positives (0 of" in first
    assert "f1 0.000" not in first
    (champion,) = await _versions(url)
    assert champion["status"] == "champion"
    assert (champion["status_reason"] or "").startswith("unevaluated: holdout has no positives")
    assert champion["f1_score"] is None
    assert champion["precision_score"] is None

    # A forced retraining on the same data: compared on flags and scores, and the answer says
    # so. The challenger was fitted before the quiet holdout and flags far more of it than the
    # champion (refitted on it): a change of behaviour that only force promotes.
    second = _check(settings)
    assert "Warning: holdout has no positives (0 of" in second
    assert "Model: promoted to champion — forced: promoted although holdout has no positives" in (
        second
    )
    assert "so its metrics are no evidence; compared on" in second
    assert "changes behaviour without labelled evidence" in second

    # Through the service itself: the outcome and the log say the same.
    app = await build(settings)
    caplog.set_level(logging.WARNING, logger="trainer.service")
    try:
        third = request(ModelFamily.DELINQUENCY, _cutoff(quiet_holdout()))
        result = await app.trainer.handle(third)
    finally:
        await app.close()
    assert result.status is OutcomeStatus.REJECTED, result.outcome.reason
    assert result.outcome.reason.startswith("rejected: holdout has no positives")
    assert "changes behaviour without labelled evidence" in result.outcome.reason
    assert result.detail is not None
    decision = result.detail.decision
    assert decision.evidence == "unlabelled"
    assert not decision.overridden
    holdout = result.detail.training_set.holdout_rows
    assert len(holdout) > 0
    assert result.detail.training_set.labels[holdout].sum() == 0
    found = GAP.search(result.outcome.reason)
    assert found is not None, result.outcome.reason
    assert int(found.group(1)) == len(holdout)
    assert result.outcome.metrics["holdout_positives"] == 0
    assert "f1" not in result.outcome.metrics
    assert 0.0 <= result.outcome.metrics["champion_flag_agreement"] <= 1.0
    assert any(
        r.levelno == logging.WARNING
        and str(third.request_id) in r.getMessage()
        and found.group(0) in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]

    rows = await _versions(url)
    assert [r["status"] for r in rows] == ["retired", "champion", "rejected"]
    assert [r["gate_overridden"] for r in rows] == [False, True, False]
    conn = await asyncpg.connect(url)
    try:
        evidence = await conn.fetch(
            "SELECT params->>'gate_evidence' FROM model_versions ORDER BY created_at"
        )
    finally:
        await conn.close()
    assert [e[0] for e in evidence] == ["no-champion", "unlabelled", "unlabelled"]


async def test_an_unlabelled_anomaly_detector_is_refreshed_and_flagged(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str
) -> None:
    """Without labels expense-fraud is an IsolationForest only: refreshed on new data when it
    behaves like the champion on the holdout rows."""
    unlabelled = frames(world(seed=5, customers=10, sheets=60, label_fraction=0.0))
    assert unlabelled.labels.empty
    await seed(fresh_database_url, unlabelled)
    app = await build(settings_for(stack, fresh_database_url, make_topic))
    try:
        cutoff = _cutoff(unlabelled)
        first = await app.trainer.handle(request(ModelFamily.EXPENSE_FRAUD, cutoff))
        second = await app.trainer.handle(request(ModelFamily.EXPENSE_FRAUD, cutoff))
    finally:
        await app.close()
    assert first.status is OutcomeStatus.PROMOTED, first.outcome.reason
    assert first.outcome.reason.startswith("unevaluated: holdout has no labelled observations")
    assert second.status is OutcomeStatus.PROMOTED, second.outcome.reason
    assert second.model_updated is not None
    assert second.outcome.reason.startswith(
        "holdout has no labelled observations, so its metrics are no evidence; compared on"
    )
    assert "band 5%–30%" not in second.outcome.reason  # both flag rates inside the band
    assert f"behaves like {first.outcome.version}" in second.outcome.reason
    assert second.detail is not None
    assert second.detail.decision.unevaluated
    assert second.detail.decision.evidence == "unlabelled"
