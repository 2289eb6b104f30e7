"""`retrainer rescore` on the real broker and PostgreSQL: a chosen version re-scores a time range.

Every score carries the run id (live scores carry null), scores equal what the version gives on
features built over the whole history, and a version whose bytes do not match their sha256 is
refused before anything is decoded.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import IsolationForest

from schemas import artifacts
from schemas.artifacts import ArtifactIntegrityError
from schemas.bundles import CLASSIFIER, ISOLATION_FOREST, ModelBundle
from schemas.codec import Codec
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored
from schemas.features import (
    ACTIVITY_COLUMNS,
    DELINQUENCY_FEATURES,
    EXPENSE_COLUMNS,
    EXPENSE_FEATURES,
    PROFILE_COLUMNS,
    delinquency_features,
    expense_features,
    feature_matrix,
)
from streams.rescore import RescoreOptions, TimeField, rescore
from streams.settings import StreamsSettings
from streams.store.sink import store_activity, store_customers, store_sheets
from tests.conftest import Stack, TopicFactory
from tests.factories import START, customer, sheet, statement
from tests.integration.streams.conftest import read_all

CODEC = Codec()
SHEETS = 40
CUSTOMERS = 20
MONTHS = 4


async def _history(conn: asyncpg.Connection) -> None:
    await store_sheets(conn, [sheet(n, 6) for n in range(SHEETS)])
    customers = [customer(n) for n in range(CUSTOMERS)]
    await store_customers(conn, customers)
    await store_activity(
        conn,
        [
            statement(c.customer_id, m, days_past_due=(n % 3) * 20)
            for n, c in enumerate(customers)
            for m in range(MONTHS)
        ],
    )


async def _frames(conn: asyncpg.Connection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    lines = await conn.fetch(
        "SELECT expense_id, sheet_id, employee_id, amount::float8, category, merchant, "
        "expense_date, receipt_ref, submitted_at FROM expenses"
    )
    activity = await conn.fetch(
        "SELECT statement_id, customer_id, statement_date, balance::float8, credit_limit::float8,"
        " payment_amount::float8, minimum_due::float8, purchase_amount::float8,"
        " cash_advance_amount::float8, days_past_due FROM customer_activity"
    )
    profiles = await conn.fetch(
        "SELECT customer_id, age, annual_income::float8, tenure_months, employment_status "
        "FROM customers"
    )
    return (
        pd.DataFrame([tuple(r) for r in lines], columns=list(EXPENSE_COLUMNS)),
        pd.DataFrame([tuple(r) for r in activity], columns=list(ACTIVITY_COLUMNS)),
        pd.DataFrame([tuple(r) for r in profiles], columns=list(PROFILE_COLUMNS)),
    )


async def _register(
    conn: asyncpg.Connection, family: str, role: str, model: object, names: tuple[str, ...]
) -> str:
    """Store a fitted model as a registry version, as the trainer does."""
    version = f"{family}-{uuid.uuid4().hex[:6]}"
    artifact = artifacts.dump(role, model)
    params = {"feature_names": list(names), "threshold": 0.5, "roles": [role], "notes": []}
    await conn.execute(
        "INSERT INTO model_versions (version, family, status, params, data_cutoff, code_version)"
        " VALUES ($1, $2, 'retired', $3::jsonb, clock_timestamp(), 'test')",
        version,
        family,
        json.dumps(params),
    )
    await conn.execute(
        "INSERT INTO model_artifacts (artifact_id, version, role, format, sha256, size_bytes,"
        " content) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        f"{version}/{role}",
        version,
        role,
        artifact.format.value,
        artifact.sha256,
        len(artifact.content),
        artifact.content,
    )
    return version


def _settings(stack: Stack, database_url: str, monkeypatch: pytest.MonkeyPatch) -> StreamsSettings:
    monkeypatch.setenv("RETRAINER_KAFKA_BOOTSTRAP", stack.bootstrap)
    monkeypatch.setenv("RETRAINER_DATABASE_URL", database_url)
    return StreamsSettings()


async def test_a_version_rescores_a_range_with_the_run_id_and_the_trainers_features(
    stack: Stack,
    fresh_database_url: str,
    make_topic: TopicFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = await asyncpg.connect(fresh_database_url, timeout=10)
    try:
        await _history(conn)
        lines, activity, profiles = await _frames(conn)
        expense = expense_features(lines)
        expense_matrix = np.nan_to_num(feature_matrix(expense, EXPENSE_FEATURES), nan=0.0)
        forest = IsolationForest(n_estimators=25, random_state=0).fit(expense_matrix)
        fraud_version = await _register(
            conn, "expense-fraud", ISOLATION_FOREST, forest, EXPENSE_FEATURES
        )
        statements = delinquency_features(activity, profiles)
        label = (statements["days_past_due"].to_numpy() > 0).astype(float)
        booster = xgb.train(
            {"objective": "binary:logistic", "max_depth": 2, "nthread": 1},
            xgb.DMatrix(feature_matrix(statements, DELINQUENCY_FEATURES), label=label),
            5,
        )
        risk_version = await _register(
            conn, "delinquency", CLASSIFIER, booster, DELINQUENCY_FEATURES
        )
    finally:
        await conn.close()
    settings = _settings(stack, fresh_database_url, monkeypatch)

    # Sheets 10..29 by submission time, with the habits of sheets 0..9 behind them.
    topic = make_topic("rescored")
    summary = await rescore(
        settings,
        RescoreOptions(
            version=fraud_version,
            topic=topic,
            from_time=START + timedelta(hours=10),
            to_time=START + timedelta(hours=30),
            time_field=TimeField.EVENT,
            run_id="after-rollback-1",
            page_size=7,
        ),
    )
    assert (summary.family.value, summary.scored) == ("expense-fraud", 20 * 6)
    scored = [
        CODEC.decode_as(ExpenseScored, value) for _, value in read_all(stack.bootstrap, topic)
    ]
    expected_ids = {f"s-{n}-{i}" for n in range(10, 30) for i in range(6)}
    assert {s.expense_id for s in scored} == expected_ids
    assert {(s.scoring_run, s.model_version) for s in scored} == {
        ("after-rollback-1", fraud_version)
    }
    bundle = ModelBundle(
        family=summary.family,
        models={ISOLATION_FOREST: forest},
        feature_names=EXPENSE_FEATURES,
        threshold=0.5,
    )
    truth = bundle.score(feature_matrix(expense, EXPENSE_FEATURES))
    assert truth.anomaly_score is not None
    by_id: dict[Any, float] = dict(zip(expense["expense_id"], truth.anomaly_score, strict=True))
    for s in scored:
        assert s.anomaly_score == pytest.approx(by_id[s.expense_id], rel=1e-9)

    # Every statement, by ingestion time, with the customers' whole history behind each one.
    topic = make_topic("rescored-customers")
    summary = await rescore(
        settings, RescoreOptions(version=risk_version, topic=topic, page_size=9)
    )
    assert summary.scored == CUSTOMERS * MONTHS
    scored_customers = [
        CODEC.decode_as(CustomerScored, value) for _, value in read_all(stack.bootstrap, topic)
    ]
    assert len(scored_customers) == CUSTOMERS * MONTHS
    assert summary.run_id.startswith(f"rescore-{risk_version}-")
    assert {s.scoring_run for s in scored_customers} == {summary.run_id}
    probability = dict(
        zip(
            statements["statement_id"],
            booster.predict(xgb.DMatrix(feature_matrix(statements, DELINQUENCY_FEATURES))),
            strict=True,
        )
    )
    for s in scored_customers:
        assert s.delinquency_probability == pytest.approx(
            float(probability[s.statement_id]), rel=1e-6
        )


async def test_a_version_whose_bytes_changed_is_refused(
    stack: Stack,
    fresh_database_url: str,
    make_topic: TopicFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = await asyncpg.connect(fresh_database_url, timeout=10)
    try:
        await _history(conn)
        lines, _, _ = await _frames(conn)
        matrix = np.nan_to_num(feature_matrix(expense_features(lines), EXPENSE_FEATURES), nan=0.0)
        forest = IsolationForest(n_estimators=5, random_state=0).fit(matrix)
        version = await _register(conn, "expense-fraud", ISOLATION_FOREST, forest, EXPENSE_FEATURES)
        await conn.execute(
            "UPDATE model_artifacts SET content = content || '\\x00'::bytea WHERE version = $1",
            version,
        )
    finally:
        await conn.close()
    topic = make_topic("refused")
    settings = _settings(stack, fresh_database_url, monkeypatch)
    with pytest.raises(ArtifactIntegrityError, match="digest mismatch"):
        await rescore(settings, RescoreOptions(version=version, topic=topic))
