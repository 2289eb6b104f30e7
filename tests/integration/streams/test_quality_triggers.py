"""The drift and performance triggers on the real PostgreSQL: the store queries (a version's
newest scored rows with their features, live scores joined with late labels, mature statements
labelled by the trainer's rule), and the policy engine asking once, reading the figures at most
once per refresh and not while its request is in flight — no Faust, no Kafka."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import numpy as np
import pytest

from schemas.base import ModelFamily
from schemas.customer_scored import CustomerScored
from schemas.drift import build_reference
from schemas.expense_scored import ExpenseScored
from schemas.features import DELINQUENCY_FEATURES
from schemas.minimums import DataMinimums
from schemas.retrain_requested import RetrainReason
from streams.policy import Action, PolicyConfig
from streams.quality import QualityConfig
from streams.services.policy import PolicyEngine, PolicyState
from streams.services.quality import QualityMonitor
from streams.signals import PolicySignal, SignalKind
from streams.store import quality as store
from streams.store.scores import store_customer_scores, store_expense_scores
from streams.store.sink import store_activity, store_customers, store_labels, store_sheets
from tests.factories import customer, label, sheet, statement

pytestmark = pytest.mark.integration

FRAUD = ModelFamily.EXPENSE_FRAUD
DELINQ = ModelFamily.DELINQUENCY
FEATURES = ("utilization", "age")
QUALITY = QualityConfig(drift_min_sample=300, performance_min_sample=40)
CONFIG = PolicyConfig(
    minimums=DataMinimums(
        min_expenses=0, min_sheets=0, min_observations=0, min_positive_observations=0
    ),
    min_training_interval=timedelta(0),
    quality=QUALITY,
)
RNG = np.random.default_rng(5)


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def register(
    conn: asyncpg.Connection,
    version: str,
    family: ModelFamily,
    *,
    auc: float | None,
    reference: dict[str, object] | None,
    feature_names: tuple[str, ...] = FEATURES,
) -> None:
    params: dict[str, object] = {"feature_names": list(feature_names), "threshold": 0.5}
    if reference is not None:
        params["reference"] = reference
    await conn.execute(
        "INSERT INTO model_versions (version, family, status, metrics, params, data_cutoff, "
        "code_version) VALUES ($1, $2, 'champion', $3::jsonb, $4::jsonb, now(), 'test')",
        version,
        family.value,
        json.dumps({} if auc is None else {"auc": auc}),
        json.dumps(params),
    )


def expense_score(expense_id: str, version: str, probability: float, at: datetime) -> ExpenseScored:
    return ExpenseScored(
        occurred_at=at,
        expense_id=expense_id,
        sheet_id=expense_id.rsplit("-", 1)[0],
        model_version=version,
        anomaly_score=0.1,
        fraud_probability=probability,
        is_flagged=probability >= 0.5,
        scored_at=at,
    )


def customer_score(statement_id: str, customer_id: str, version: str, p: float) -> CustomerScored:
    now = datetime.now(UTC)
    return CustomerScored(
        occurred_at=now,
        customer_id=customer_id,
        statement_id=statement_id,
        model_version=version,
        delinquency_probability=p,
        is_flagged=p >= 0.5,
        scored_at=now,
    )


def signal(family: ModelFamily) -> PolicySignal:
    return PolicySignal(kind=SignalKind.TICK, family=family, sent_at=datetime.now(UTC))


async def test_drift_sample_keeps_the_feature_vectors_of_the_newest_rows(
    pool: asyncpg.Pool,
) -> None:
    now = datetime.now(UTC)
    scores = [expense_score(f"x-{i}", "v1", i / 10, now - timedelta(minutes=i)) for i in range(8)]
    vectors = [[float(i), np.nan] for i in range(6)]
    async with pool.acquire() as conn:
        await store_expense_scores(conn, scores[:6], vectors)
        await store_expense_scores(conn, scores[6:])  # scored before vectors were kept
        await store_expense_scores(
            conn, [expense_score("old-0", "v1", 0.9, now - timedelta(days=30))], [[9.0, 9.0]]
        )
        await store_expense_scores(conn, [expense_score("y-0", "v2", 0.9, now)], [[7.0, 7.0]])
        sample = await store.drift_sample(conn, FRAUD, "v1", timedelta(days=7), 4)
    assert [row[0][0] for row in sample] == [0.0, 1.0, 2.0, 3.0]  # newest first, at most 4
    assert all(np.isnan(row[0][1]) for row in sample)  # NaN survives real[]
    assert [row[1] for row in sample] == [0.0, 0.1, 0.2, 0.3]


async def test_drift_fires_once_and_is_not_read_again_while_in_flight(pool: asyncpg.Pool) -> None:
    train = np.column_stack([RNG.random(2000), RNG.normal(40, 10, 2000)])
    reference = build_reference(train, FEATURES, train[:, 0])
    now = datetime.now(UTC)
    # Live utilization moved up by half its range; age did not move.
    live = np.column_stack([RNG.random(400) + 0.5, RNG.normal(40, 10, 400)])
    scores = [
        customer_score(f"st-{i}", f"c-{i}", "d1", float(live[i, 0]) / 1.5) for i in range(400)
    ]
    async with pool.acquire() as conn:
        await register(conn, "d1", DELINQ, auc=0.8, reference=reference)
        await store_customer_scores(conn, scores, live.tolist())

    async def ready() -> asyncpg.Pool:
        return pool

    monitor = QualityMonitor(QUALITY, ready)
    engine = PolicyEngine(CONFIG, ready, monitor)
    state = PolicyState.from_json(DELINQ, {"model_version": "d1", "cutoff": now.isoformat()})

    asked = await engine.step(state, [signal(DELINQ)], now)
    assert asked.decision.action is Action.REQUEST
    [request] = asked.requests
    assert request.reason is RetrainReason.DRIFT
    assert request.reason_text.startswith("Drift: PSI ")
    assert " on utilization (threshold 0.2; 400 scored)" in request.reason_text
    assert asked.quality is not None
    drift = asked.quality.drift
    assert drift is not None
    assert drift.samples == 400
    assert drift.feature_psi["utilization"] >= 0.2 > drift.feature_psi["age"]
    assert drift.score_ks is not None
    assert drift.score_ks > 0.3
    assert monitor.reads == 1

    # In flight: the same decision is waited on, the figures are not read again, even once
    # the refresh interval has passed.
    for later in (now + timedelta(seconds=1), now + QUALITY.refresh * 2):
        again = await engine.step(asked.state, [signal(DELINQ)], later)
        assert again.decision.action is Action.WAIT
        assert again.requests == []
    assert monitor.reads == 1


async def test_figures_are_cached_for_the_refresh_interval(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await register(conn, "d1", DELINQ, auc=0.8, reference=None)

    async def ready() -> asyncpg.Pool:
        return pool

    monitor = QualityMonitor(QUALITY, ready)
    engine = PolicyEngine(CONFIG, ready, monitor)
    now = datetime.now(UTC)
    state = PolicyState.from_json(DELINQ, {"model_version": "d1", "cutoff": now.isoformat()})
    first = await engine.step(state, [signal(DELINQ)], now)
    assert first.decision.action is Action.NONE
    assert first.quality is not None
    assert first.quality.drift is not None
    assert first.quality.drift.note == "the version keeps no training reference"
    await engine.step(first.state, [signal(DELINQ)], now + QUALITY.refresh / 2)
    assert monitor.reads == 1
    await engine.step(first.state, [signal(DELINQ)], now + QUALITY.refresh)
    assert monitor.reads == 2
    # A new champion is read at once.
    promoted = PolicyState.from_json(DELINQ, {"model_version": "d2", "cutoff": now.isoformat()})
    await engine.step(promoted, [signal(DELINQ)], now + QUALITY.refresh)
    assert monitor.reads == 3


async def test_realised_performance_joins_the_latest_label_and_fires(pool: asyncpg.Pool) -> None:
    sheets = [sheet(n, lines=10, prefix="q") for n in range(6)]
    lines = [line.expense_id for s in sheets for line in s.lines]
    fraud = {expense_id: i % 3 == 0 for i, expense_id in enumerate(lines)}
    now = datetime.now(UTC)
    # The champion ranks the labelled lines backwards: realised AUC 0.
    scores = [
        expense_score(expense_id, "f1", 0.2 if fraud[expense_id] else 0.8, now)
        for expense_id in lines
    ]
    async with pool.acquire() as conn:
        await store_sheets(conn, sheets)
        await register(conn, "f1", FRAUD, auc=0.9, reference=None)
        await store_expense_scores(conn, scores)
        # Each line first labelled the other way; the later verdict wins.
        await store_labels(conn, [label(e, not f) for e, f in fraud.items()])
        relabelled = [label(e, f).model_copy(update={"labelled_at": now}) for e, f in fraud.items()]
        await store_labels(conn, relabelled)
        await store_expense_scores(  # a line without a label stays out
            conn, [expense_score("unlabelled-0-0", "f1", 0.5, now)]
        )
        rows = await store.labelled_expense_scores(conn, timedelta(days=1), 1000)
    assert len(rows) == len(lines)
    assert {(version, truth) for version, _, _, truth in rows} == {("f1", True), ("f1", False)}

    async def ready() -> asyncpg.Pool:
        return pool

    monitor = QualityMonitor(QUALITY, ready)
    engine = PolicyEngine(CONFIG, ready, monitor)
    state = PolicyState.from_json(FRAUD, {"model_version": "f1", "cutoff": now.isoformat()})
    step = await engine.step(state, [signal(FRAUD)], now)
    assert step.quality is not None
    realised = step.quality.champion_performance
    assert realised is not None
    assert (realised.samples, realised.positives) == (60, 20)
    assert realised.auc == 0.0
    assert realised.precision == 0.0
    assert realised.recall == 0.0
    assert realised.holdout_auc == 0.9
    assert step.decision.action is Action.REQUEST
    assert step.decision.reason is RetrainReason.PERFORMANCE
    assert step.decision.reason_text == (
        "Realised AUC 0.00 under the floor 0.6 (60 labelled, 20 positive)"
    )


async def test_delinquency_labels_only_statements_whose_horizon_has_passed(
    pool: asyncpg.Pool,
) -> None:
    # Statements from 2026-01-28 on, every 30 days; "today" is 2026-12-01 in the labelling.
    today = date(2026, 12, 1)
    customers = [customer(n, prefix="late") for n in range(4)]
    statements = []
    for n, c in enumerate(customers):
        bad = n % 2 == 0
        statements += [
            statement(c.customer_id, m, days_past_due=45 if bad and m >= 3 else 0)
            for m in range(10)
        ]
    scored = [customer_score(s.statement_id, s.customer_id, "d1", 0.3) for s in statements]
    async with pool.acquire() as conn:
        await store_customers(conn, customers)
        await store_activity(conn, statements)
        await store_customer_scores(conn, scored)
        mature = await store.mature_statement_scores(conn, timedelta(days=1), 1000, today, 92)
    horizon_passed = {
        s.statement_id for s in statements if s.statement_date <= today - timedelta(days=92)
    }
    assert {row[0] for row in mature.scores} == horizon_passed
    assert len(mature.statements) == len(statements)  # every statement labels them

    async def ready() -> asyncpg.Pool:
        return pool

    monitor = QualityMonitor(QUALITY, ready)
    now = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    async with pool.acquire() as conn:
        labelled = await monitor.labelled_statements(conn, now)
    # Months 0-7 are dated by 2026-08-31. Every customer is observed through the horizon (their
    # last statement, month 9, within 7 days of its end) up to month 6, whatever the outcome:
    # month 7's outcome is unknown even for the delinquent customers (even n, 45 days past due
    # from month 3), as it is for the sound ones.
    truth = {statement_id: delinquent for statement_id, *_, delinquent in labelled}
    expected = {f"late-{n}-s{m}": n % 2 == 0 for n in range(4) for m in range(7)}
    assert truth == expected


async def test_version_facts_read_holdout_auc_and_reference(pool: asyncpg.Pool) -> None:
    reference = build_reference(np.zeros((3, 2)), FEATURES, np.zeros(3))
    async with pool.acquire() as conn:
        await register(conn, "a", DELINQ, auc=0.77, reference=reference)
        await register(
            conn, "b", FRAUD, auc=None, reference=None, feature_names=DELINQUENCY_FEATURES[:1]
        )
        facts = await store.version_facts(conn, ["a", "b", "unknown"])
    assert set(facts) == {"a", "b"}
    assert facts["a"].holdout_auc == 0.77
    assert facts["a"].reference == reference
    assert facts["a"].feature_names == FEATURES
    assert facts["b"].holdout_auc is None
    assert facts["b"].reference is None
