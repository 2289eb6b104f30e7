"""The trainer's loads on the real PostgreSQL: binary COPY through ADBC gives the stored values
with the dtypes the features expect, a table read in parts equals one read, and an unreachable
server is an outage (retried) while a refused query is a failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import pandas as pd
import pytest

from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import frames, world
from trainer import datasets
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def seeded(fresh_database_url: str) -> tuple[str, datetime]:
    sim = frames(world(seed=9, customers=150, sheets=20))
    await seed(fresh_database_url, sim)
    return fresh_database_url, datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)


async def test_statements_and_profiles_come_with_their_stored_values_and_dtypes(
    seeded: tuple[str, datetime],
) -> None:
    url, cutoff = seeded
    settings = TrainerSettings(database_url=url, max_customers=0)  # type: ignore[arg-type]
    loaded = await datasets.load_delinquency(datasets.Source(url), cutoff, settings)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT statement_id, customer_id, statement_date, balance, credit_limit, "
            "payment_amount, minimum_due, purchase_amount, cash_advance_amount, days_past_due "
            "FROM customer_activity WHERE customer_id = ANY($1) AND statement_date <= $2",
            list(loaded.selection.customer_ids),
            cutoff.date(),
        )
        people = await conn.fetch(
            "SELECT customer_id, age, annual_income, tenure_months, employment_status "
            "FROM customers WHERE customer_id = ANY($1)",
            list(loaded.selection.customer_ids),
        )
    finally:
        await conn.close()
    activity = loaded.activity.sort_values("statement_id", ignore_index=True)
    stored = pd.DataFrame([dict(r) for r in rows]).sort_values("statement_id", ignore_index=True)
    assert len(activity) == len(stored) > 0
    assert activity["statement_id"].dtype == "str"
    assert activity["customer_id"].dtype == "str"
    assert activity["statement_date"].dtype.kind == "M"
    assert activity["days_past_due"].dtype == np.int64
    for column in ("statement_id", "customer_id"):
        assert activity[column].tolist() == stored[column].tolist()
    assert activity["statement_date"].dt.date.tolist() == stored["statement_date"].tolist()
    assert activity["days_past_due"].tolist() == stored["days_past_due"].tolist()
    for column in ("balance", "credit_limit", "payment_amount", "minimum_due"):
        assert activity[column].dtype == np.float64
        # PostgreSQL's float8 of a numeric and Python's float of a Decimal both round correctly.
        assert activity[column].tolist() == [float(v) for v in stored[column]]

    profiles = loaded.profiles.sort_values("customer_id", ignore_index=True)
    expected = pd.DataFrame([dict(r) for r in people]).sort_values("customer_id", ignore_index=True)
    for column in ("age", "annual_income", "tenure_months"):
        assert profiles[column].dtype == np.float64
        assert profiles[column].tolist() == [float(v) for v in expected[column]]
    assert profiles["employment_status"].tolist() == expected["employment_status"].tolist()


async def test_a_table_read_in_parts_equals_one_read(
    seeded: tuple[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cutoff = seeded
    at = datasets.at_literal(cutoff)
    query = f"{datasets._ACTIVITY_SELECT} WHERE a.occurred_at <= {at}"
    source = datasets.Source(url)
    whole = await source.frame(query, datasets.ACTIVITY_TYPES)
    monkeypatch.setattr(datasets, "PAGES_PER_PART", 1)
    monkeypatch.setattr(datasets, "LOAD_PARTS", 3)
    assert len(await source._parts(query, "customer_activity", "a")) == 3
    parts = await source.frame(query, datasets.ACTIVITY_TYPES, split=("customer_activity", "a"))
    pd.testing.assert_frame_equal(parts.frame, whole.frame)


async def test_an_unreachable_server_is_an_outage_and_a_refused_query_a_failure(
    seeded: tuple[str, datetime],
) -> None:
    url, _ = seeded
    nowhere = datasets.Source("postgresql://postgres@127.0.0.1:1/retrainer")
    with pytest.raises(datasets.LoadUnavailable):
        await nowhere.frame("SELECT 1 AS one")
    # An outage is what the retry policy retries.
    assert isinstance(datasets.LoadUnavailable("x"), OSError)
    with pytest.raises(datasets.LoadFailed):
        await datasets.Source(url).frame("SELECT no_such_column FROM customers")


async def test_candidates_are_the_customers_with_a_statement_old_enough_to_label(
    seeded: tuple[str, datetime],
) -> None:
    """The candidates, found from the loaded statements, are those the database finds."""
    url, end = seeded
    settings = TrainerSettings(database_url=url, max_customers=0)  # type: ignore[arg-type]
    conn = await asyncpg.connect(url)
    try:
        for cutoff in (end - timedelta(days=150), end - timedelta(days=40), end):
            loaded = await datasets.load_delinquency(datasets.Source(url), cutoff, settings)
            expected = await conn.fetch(
                """
                SELECT c.customer_id FROM customers c
                WHERE c.created_at <= $1 AND c.ingested_at <= $1 AND EXISTS (
                    SELECT 1 FROM customer_activity a
                    WHERE a.customer_id = c.customer_id
                      AND a.statement_date <= ($1 AT TIME ZONE 'UTC')::date - $2::integer
                      AND a.occurred_at <= $1 AND a.ingested_at <= $1)
                """,
                cutoff,
                settings.delinquency_horizon_days,
            )
            assert len(expected) > 0
            assert set(loaded.selection.customer_ids) == {r["customer_id"] for r in expected}
            assert set(loaded.activity["customer_id"]) == {r["customer_id"] for r in expected}
    finally:
        await conn.close()
