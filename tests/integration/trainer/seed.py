"""Put a simulated world into PostgreSQL directly (COPY), as the streams sink would have stored it.

Every row's ingested_at is its simulated time, so a request's data cutoff selects a past state.
"""

from __future__ import annotations

import io
import uuid

import asyncpg
import pandas as pd

from tests.unit.trainer.factories import Frames


def _uuids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def _copy(conn: asyncpg.Connection, table: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f%z")
    buffer.seek(0)
    await conn.copy_to_table(
        table, source=buffer, columns=list(frame.columns), format="csv", null=""
    )


async def seed(dsn: str, frames: Frames) -> None:
    """COPY customers, statements, sheets, expenses and labels of `frames` into the database."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        customers = frames.customers.copy()
        customers["event_id"] = _uuids(len(customers))
        customers["ingested_at"] = customers["created_at"]
        await _copy(conn, "customers", customers)

        activity = frames.activity.drop(columns=["delinquent_ahead"]).copy()
        activity["statement_date"] = activity["statement_date"].dt.strftime("%Y-%m-%d")
        activity["event_id"] = _uuids(len(activity))
        activity["ingested_at"] = activity["occurred_at"]
        await _copy(conn, "customer_activity", activity)

        sheets = frames.sheets.copy()
        sheets["event_id"] = _uuids(len(sheets))
        sheets["occurred_at"] = sheets["submitted_at"]
        sheets["ingested_at"] = sheets["submitted_at"]
        await _copy(conn, "sheets", sheets)

        expenses = frames.expenses.drop(columns=["is_fraud_truth"]).copy()
        expenses["expense_date"] = expenses["expense_date"].dt.strftime("%Y-%m-%d")
        expenses["ingested_at"] = expenses["submitted_at"]
        await _copy(conn, "expenses", expenses)

        labels = frames.labels.copy()
        labels["event_id"] = _uuids(len(labels))
        labels["source"] = "auditor"
        labels["ingested_at"] = labels["labelled_at"]
        await _copy(conn, "expense_labels", labels)
    finally:
        await conn.close()
