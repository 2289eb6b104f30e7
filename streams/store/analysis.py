"""What the HTTP API reads of retraining: the log, requests, the registry's versions and roles."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from schemas.base import ModelFamily
from streams.store.sheets import Queryable

_RECENT = """
SELECT retrain_id, retrain_date, customers_trained, samples_trained, auc_score, precision_score,
       recall_score, f1_score, model_version, trigger_reason, status, family
FROM model_retraining_log WHERE family = $1 ORDER BY retrain_date DESC LIMIT $2
"""

_OUTCOME = """
SELECT status, model_version, outcome_reason, trigger_reason FROM model_retraining_log
WHERE request_id = $1
"""

_VERSIONS = """
SELECT version, family, status, status_reason, metrics, samples, data_cutoff, created_at,
       promoted_at
FROM model_versions ORDER BY created_at DESC LIMIT $1
"""


async def recent_retrainings(
    db: Queryable, family: ModelFamily, limit: int
) -> list[asyncpg.Record]:
    """The family's latest retrainings in the pre-delinquency engine's log, newest first."""
    rows: list[asyncpg.Record] = await db.fetch(_RECENT, family.value, limit)
    return rows


async def request_outcome(db: Queryable, request_id: uuid.UUID) -> asyncpg.Record | None:
    """How a retrain request ended (status, version, reasons), None while it has not."""
    row: asyncpg.Record | None = await db.fetchrow(_OUTCOME, request_id)
    return row


async def request_cutoff(db: Queryable, request_id: uuid.UUID) -> datetime | None:
    """The data cutoff a retrain request was sent with."""
    cutoff: datetime | None = await db.fetchval(
        "SELECT data_cutoff FROM retrain_requests WHERE request_id = $1", request_id
    )
    return cutoff


async def artifact_roles(db: Queryable, version: str) -> list[str]:
    """The roles of a version's models (`isolation_forest`, `random_forest` …), sorted."""
    rows = await db.fetch(
        "SELECT DISTINCT role FROM model_artifacts WHERE version = $1 ORDER BY role", version
    )
    return [str(r["role"]) for r in rows]


async def recent_versions(db: Queryable, limit: int) -> list[asyncpg.Record]:
    """The registry's newest versions, any family."""
    rows: list[asyncpg.Record] = await db.fetch(_VERSIONS, limit)
    return rows
