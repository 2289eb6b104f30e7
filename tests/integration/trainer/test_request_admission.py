"""The trainer on the real PostgreSQL: future cutoffs and reused request ids are refused."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from edge.migrations import MIGRATIONS, migrate
from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus
from tests.conftest import Stack
from tests.integration.trainer.kafka_helpers import request
from trainer import admission, outcomes
from trainer.bootstrap import TrainerApp, build
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def app(stack: Stack, fresh_database_url: str) -> AsyncIterator[TrainerApp]:
    """A trainer on an empty, migrated database: every request it admits ends skipped."""
    built = await build(
        TrainerSettings(
            kafka_bootstrap=stack.bootstrap,
            database_url=fresh_database_url,  # type: ignore[arg-type]
            trainer_metrics_port=0,
            retry_attempts=2,
        )
    )
    try:
        yield built
    finally:
        await built.close()


async def _count(url: str, sql: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(sql)
        return count
    finally:
        await conn.close()


async def test_a_cutoff_from_the_future_is_refused_and_nothing_is_recorded(
    app: TrainerApp, fresh_database_url: str
) -> None:
    future = request(ModelFamily.EXPENSE_FRAUD, datetime(2999, 1, 1, tzinfo=UTC), force=True)
    with pytest.raises(admission.RequestRefused) as refused:
        await app.trainer.handle(future)
    assert refused.value.reason == admission.CUTOFF_IN_FUTURE
    assert "2999-01-01" in refused.value.detail
    assert await _count(fresh_database_url, "SELECT count(*) FROM model_retraining_log") == 0
    assert await _count(fresh_database_url, "SELECT count(*) FROM request_identities") == 0
    assert await _count(fresh_database_url, "SELECT count(*) FROM model_versions") == 0

    # Within the skew (clocks of two hosts differ a little) the request is handled.
    near = request(ModelFamily.EXPENSE_FRAUD, datetime.now(UTC) + timedelta(minutes=1))
    assert (await app.trainer.handle(near)).status is OutcomeStatus.SKIPPED


async def test_a_reused_request_id_is_refused_and_a_redelivery_is_answered_again(
    app: TrainerApp, fresh_database_url: str
) -> None:
    first = request(ModelFamily.EXPENSE_FRAUD, datetime.now(UTC))
    answered = await app.trainer.handle(first)
    assert answered.status is OutcomeStatus.SKIPPED

    # A redelivery, or the policy re-sending it: new event, fresh counters, the same request.
    resent = first.model_copy(
        update={"event_id": uuid.uuid4(), "occurred_at": datetime.now(UTC), "counters": {"n": 1}}
    )
    again = await app.trainer.handle(resent)
    assert again.replayed
    assert (again.outcome.request_id, again.outcome.family, again.status) == (
        first.request_id,
        ModelFamily.EXPENSE_FRAUD,
        OutcomeStatus.SKIPPED,
    )

    for change in (
        {"family": ModelFamily.DELINQUENCY},
        {"data_cutoff": first.data_cutoff - timedelta(days=1)},
        {"force": True},
        {"reason_text": "someone else's request"},
    ):
        reuse = first.model_copy(update={"event_id": uuid.uuid4(), **change})
        with pytest.raises(admission.RequestRefused) as refused:
            await app.trainer.handle(reuse)
        assert refused.value.reason == admission.REQUEST_ID_REUSED, change
    assert await _count(fresh_database_url, "SELECT count(*) FROM model_retraining_log") == 1
    assert (
        await _count(
            fresh_database_url,
            "SELECT count(*) FROM request_identities WHERE family = 'expense-fraud'",
        )
        == 1
    )


async def test_an_id_is_bound_before_training_so_a_crashed_request_keeps_it(
    app: TrainerApp, fresh_database_url: str
) -> None:
    """A request bound but never finished (the trainer died training it) still owns its id."""
    training = request(ModelFamily.DELINQUENCY, datetime.now(UTC))
    conn = await asyncpg.connect(fresh_database_url)
    try:
        bound = await outcomes.bind_request(
            conn, admission.RequestIdentity.of(training), datetime.now(UTC)
        )
    finally:
        await conn.close()
    assert bound == admission.RequestIdentity.of(training)

    other = training.model_copy(update={"family": ModelFamily.EXPENSE_FRAUD})
    with pytest.raises(admission.RequestRefused):
        await app.trainer.handle(other)
    # Its redelivery after the restart is trained (here: skipped for lack of data).
    assert (await app.trainer.handle(training)).status is OutcomeStatus.SKIPPED


async def test_an_id_finished_before_ids_were_bound_is_checked_against_the_log(
    app: TrainerApp, fresh_database_url: str
) -> None:
    """A log row without a binding (written by a trainer older than the binding)."""
    old = request(ModelFamily.DELINQUENCY, datetime.now(UTC) - timedelta(days=3))
    conn = await asyncpg.connect(fresh_database_url)
    try:
        await outcomes.record(
            conn,
            outcomes.OutcomeRecord(
                request_id=old.request_id,
                family=old.family,
                status=OutcomeStatus.SKIPPED,
                reason="insufficient data",
                data_cutoff=old.data_cutoff,
                duration_seconds=0.1,
                trigger_reason="test",
            ),
            datetime.now(UTC),
        )
    finally:
        await conn.close()
    reuse = request(ModelFamily.EXPENSE_FRAUD, datetime.now(UTC)).model_copy(
        update={"request_id": old.request_id}
    )
    with pytest.raises(admission.RequestRefused) as refused:
        await app.trainer.handle(reuse)
    assert "family expense-fraud (first delinquency)" in refused.value.detail
    assert await _count(fresh_database_url, "SELECT count(*) FROM model_retraining_log") == 1


@pytest.fixture
async def empty_database(stack: Stack) -> AsyncIterator[str]:
    name = f"retrainer_ident_{stack.session_id}_{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    yield stack.dsn.rpartition("/")[0] + "/" + name
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def test_the_migration_binds_the_ids_the_log_already_holds(
    empty_database: str, tmp_path: Path
) -> None:
    for path in sorted(MIGRATIONS.glob("*.sql")):
        if path.name < "0005":
            shutil.copy(path, tmp_path / path.name)
    await migrate(empty_database, tmp_path)
    logged = request(ModelFamily.DELINQUENCY, datetime(2026, 3, 1, tzinfo=UTC), force=True)
    conn = await asyncpg.connect(empty_database)
    try:
        await conn.execute(
            "INSERT INTO model_retraining_log (request_id, family, status, forced, data_cutoff) "
            "VALUES ($1, 'delinquency', 'promoted', true, $2), (NULL, NULL, NULL, false, NULL)",
            logged.request_id,
            logged.data_cutoff,
        )
        shutil.copy(MIGRATIONS / "0005_request_identity.sql", tmp_path)
        assert [m.version for m in await migrate(empty_database, tmp_path)] == [5]
        bound = await outcomes.bind_request(
            conn,
            admission.RequestIdentity.of(
                logged.model_copy(update={"family": ModelFamily.EXPENSE_FRAUD})
            ),
            datetime.now(UTC),
        )
        assert await conn.fetchval("SELECT count(*) FROM request_identities") == 1
    finally:
        await conn.close()
    assert (bound.family, bound.data_cutoff, bound.force, bound.content_sha256) == (
        ModelFamily.DELINQUENCY,
        logged.data_cutoff,
        True,
        None,
    )
    admission.check_identity(bound, admission.RequestIdentity.of(logged))
