"""The policy service in-process on the real PostgreSQL: counts, decides, asks once, and forgets
the request when its outcome comes back — no Faust, no Kafka."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from schemas.base import ModelFamily
from schemas.minimums import DataMinimums
from schemas.retrain_requested import RetrainReason
from schemas.training_outcome import OutcomeStatus
from streams.policy import Action, PolicyConfig
from streams.services.policy import PolicyEngine, PolicyState
from streams.signals import PolicySignal, SignalKind
from streams.store.sink import store_customers
from tests.factories import customer

pytestmark = pytest.mark.integration

CONFIG = PolicyConfig(
    new_customers_threshold=5,
    minimums=DataMinimums(min_observations=0, min_positive_observations=0),
    min_training_interval=timedelta(0),
)


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


def signal(kind: SignalKind, **fields: object) -> PolicySignal:
    return PolicySignal(
        kind=kind, family=ModelFamily.DELINQUENCY, sent_at=datetime.now(UTC), **fields
    )


async def test_new_customers_ask_once_and_the_outcome_ends_the_flight(pool: asyncpg.Pool) -> None:
    async def ready() -> asyncpg.Pool:
        return pool

    engine = PolicyEngine(CONFIG, ready)
    state = PolicyState.from_json(ModelFamily.DELINQUENCY, None)

    quiet = await engine.step(state, [signal(SignalKind.TICK)], datetime.now(UTC))
    assert quiet.decision.action is Action.NONE
    assert quiet.requests == []

    async with pool.acquire() as conn:
        await store_customers(conn, [customer(n, prefix="policy") for n in range(6)])
    asked = await engine.step(quiet.state, [signal(SignalKind.INGESTED)], datetime.now(UTC))
    assert asked.decision.action is Action.REQUEST
    [request] = asked.requests
    assert request.reason is RetrainReason.NEW_CUSTOMERS
    assert asked.counters.as_dict()["new_customers"] == 6

    # The same counts again: the request is in flight, nothing is asked twice.
    again = await engine.step(asked.state, [signal(SignalKind.INGESTED)], datetime.now(UTC))
    assert again.decision.action is Action.WAIT
    assert again.requests == []

    # A redelivered automatic decision from the same state gets the same request id.
    replayed = await engine.step(quiet.state, [signal(SignalKind.INGESTED)], datetime.now(UTC))
    assert [r.request_id for r in replayed.requests] == [request.request_id]

    done = await engine.step(
        again.state,
        [
            signal(
                SignalKind.OUTCOME,
                request_id=request.request_id,
                status=OutcomeStatus.PROMOTED,
                version="v-1",
                data_cutoff=request.data_cutoff,
            )
        ],
        datetime.now(UTC),
    )
    assert done.state.family_state.in_flight is None
    assert done.state.finished == 1
    assert done.state.family_state.model_version == "v-1"


async def test_a_manual_trigger_asks_with_its_own_request_id(pool: asyncpg.Pool) -> None:
    async def ready() -> asyncpg.Pool:
        return pool

    engine = PolicyEngine(CONFIG, ready)
    state = PolicyState.from_json(ModelFamily.DELINQUENCY, None)
    wanted = uuid.uuid4()
    step = await engine.step(
        state,
        [signal(SignalKind.MANUAL, request_id=wanted, requested_by="cron", force=True)],
        datetime.now(UTC),
    )
    assert step.decision.action is Action.REQUEST
    [request] = step.requests
    assert (request.request_id, request.requested_by, request.force) == (wanted, "cron", True)
    assert step.state.last_requested_by == "cron"
