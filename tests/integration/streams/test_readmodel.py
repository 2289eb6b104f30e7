"""The read model and the policy/analysis stores against the real PostgreSQL, in-process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainReason
from streams.policy import Action, Counters, Decision, FamilyState, InFlight, PolicyConfig
from streams.readmodel import (
    analyse,
    analysis_answer,
    family_status,
    next_manual_request,
    upload_training_status,
)
from streams.services.policy import PolicyState, PolicyStep, manual_request_id
from streams.store import analysis as analysis_store
from streams.store import policy_state, sink
from tests.factories import START, sheet

FRAUD = ModelFamily.EXPENSE_FRAUD
CONFIG = PolicyConfig()


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


def _step(flight: InFlight | None) -> PolicyStep:
    state = FamilyState(FRAUD, cutoff=START, model_version="v1", in_flight=flight)
    decision = Decision(Action.WAIT if flight else Action.NONE, FRAUD, "New sheets: 12")
    return PolicyStep(PolicyState(state, finished=2), decision, Counters(START, new_sheets=12), [])


async def test_an_empty_database_reads_as_nothing_stored(pool: asyncpg.Pool) -> None:
    status = await family_status(pool, CONFIG, FRAUD)
    assert (status.family, status.new_sheets_count, status.threshold) == (FRAUD, 0, 10)
    assert status.in_flight is None
    assert status.recent_retraining == []
    assert upload_training_status(status) == "No training needed"
    assert await next_manual_request(pool, FRAUD) == (
        None,
        manual_request_id(FRAUD, None, None, 0),
    )


async def test_the_mirror_is_what_status_and_the_next_request_read(pool: asyncpg.Pool) -> None:
    request_id = uuid.uuid4()
    flight = InFlight(request_id, RetrainReason.NEW_SHEETS, "New sheets: 12", START, START)
    await policy_state.mirror_step(pool, _step(flight))
    stored = await policy_state.stored_state(pool, FRAUD)
    assert stored is not None
    assert PolicyState.from_json(FRAUD, stored).family_state.in_flight == flight
    status = await family_status(pool, CONFIG, FRAUD)
    assert status.in_flight is not None
    assert (status.in_flight.request_id, status.model_version) == (request_id, "v1")
    assert status.model_dump(mode="json")["data_cutoff"] == "2026-01-01T00:00:00+00:00"
    assert await next_manual_request(pool, FRAUD) == (
        request_id,
        manual_request_id(FRAUD, START, None, 2),
    )


async def test_retrainings_outcomes_and_the_registry(pool: asyncpg.Pool) -> None:
    request_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO retrain_requests (request_id, family, reason, reason_text, data_cutoff,"
            " requested_by, requested_at) VALUES ($1, $2, 'manual', 'asked', $3, 'api', $3)",
            request_id,
            FRAUD.value,
            START,
        )
        await conn.execute(
            "INSERT INTO model_retraining_log (family, request_id, status, trigger_reason,"
            " outcome_reason, auc_score) VALUES ($1, $2, 'failed', 'asked', 'no data', 0.5)",
            FRAUD.value,
            request_id,
        )
        await conn.execute(
            "INSERT INTO model_versions (version, family, status, data_cutoff, code_version,"
            " metrics) VALUES ('v1', $1, 'champion', $2, 'test', '{\"auc\": 0.9}')",
            FRAUD.value,
            START,
        )
        for role in ("random_forest", "isolation_forest"):
            await conn.execute(
                "INSERT INTO model_artifacts (artifact_id, version, role, format, sha256,"
                " size_bytes, content) VALUES ($1, 'v1', $2, 'skops', $3, 1, '\\x00')",
                f"a-{role}",
                role,
                "0" * 64,
            )
    outcome = await analysis_store.request_outcome(pool, request_id)
    assert outcome is not None
    assert (outcome["status"], outcome["outcome_reason"]) == ("failed", "no data")
    assert await analysis_store.request_outcome(pool, uuid.uuid4()) is None
    assert await analysis_store.request_cutoff(pool, request_id) == START
    assert await analysis_store.artifact_roles(pool, "v1") == ["isolation_forest", "random_forest"]
    [version] = await analysis_store.recent_versions(pool, 10)
    assert (version["version"], version["status"]) == ("v1", "champion")
    status = await family_status(pool, CONFIG, FRAUD, recent=1)
    assert [r.status for r in status.recent_retraining] == ["failed"]
    assert upload_training_status(status) == "Training failed: asked"


async def test_analysis_without_a_model_lists_every_line_unscored(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await sink.store_sheets(conn, [sheet(1, lines=3), sheet(2, lines=2)])
    summary = await analyse(pool, None, ["s-1", "s-2", "s-404"], 500.0, 365)
    assert (summary.model_version, summary.sheets, summary.expenses, summary.flagged) == (
        None,
        2,
        5,
        0,
    )
    assert all(r.anomaly_score is None and not r.is_flagged for r in summary.results)
    answer = analysis_answer("2 sheets analysed", "No training needed", summary)
    assert answer.message == "2 sheets analysed: 0 of 5 expenses flagged"
