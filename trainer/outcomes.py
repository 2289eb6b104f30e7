"""Outcomes in the seed's tables: model_retraining_log (one row per request) and training status.

The log's UNIQUE request_id is the trainer's record of what it finished: a request found there
is never trained again. request_identities binds each request id to the request first seen
with it, so a reused id cannot pass for that request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from trainer.admission import RequestIdentity
from trainer.errors import TrainerError


@dataclass(frozen=True)
class OutcomeRecord:
    """How one request ended, as logged."""

    request_id: UUID
    family: ModelFamily
    status: OutcomeStatus
    reason: str
    data_cutoff: datetime
    duration_seconds: float
    trigger_reason: str
    version: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    samples: int = 0
    customers: int | None = None
    forced: bool = False
    gate_overridden: bool = False
    error: str | None = None

    def event(self, at: datetime) -> TrainingOutcome:
        return TrainingOutcome(
            occurred_at=at,
            request_id=self.request_id,
            family=self.family,
            status=self.status,
            version=self.version,
            reason=self.reason,
            metrics=dict(self.metrics),
            samples=self.samples,
            data_cutoff=self.data_cutoff,
            duration_seconds=max(self.duration_seconds, 0.0),
        )

    def identity(self) -> RequestIdentity:
        """What the logged request trained on (the log keeps no digest of the rest)."""
        return RequestIdentity(
            request_id=self.request_id,
            family=self.family,
            data_cutoff=self.data_cutoff,
            force=self.forced,
            content_sha256=None,
        )


async def find(conn: asyncpg.Connection, request_id: UUID) -> OutcomeRecord | None:
    """The logged outcome of `request_id`, if it finished."""
    row = await conn.fetchrow(
        """
        SELECT request_id, family, status, outcome_reason, error, data_cutoff,
               training_duration_seconds, trigger_reason, model_version, metrics::text AS metrics,
               samples_trained, customers_trained, forced, gate_overridden
        FROM model_retraining_log WHERE request_id = $1
        """,
        request_id,
    )
    if row is None:
        return None
    return OutcomeRecord(
        request_id=row["request_id"],
        family=ModelFamily(row["family"]),
        status=OutcomeStatus(row["status"]),
        reason=row["outcome_reason"] or row["error"] or "",
        data_cutoff=row["data_cutoff"],
        duration_seconds=row["training_duration_seconds"] or 0.0,
        trigger_reason=row["trigger_reason"] or "",
        version=row["model_version"],
        metrics=json.loads(row["metrics"]),
        samples=row["samples_trained"] or 0,
        customers=row["customers_trained"],
        forced=row["forced"],
        gate_overridden=row["gate_overridden"],
    )


async def bind_request(
    conn: asyncpg.Connection, identity: RequestIdentity, at: datetime
) -> RequestIdentity:
    """The identity the request id is bound to: `identity` itself unless the id was seen before.

    Two statements, not one: after waiting on a concurrent insert of the same id, only a new
    statement sees the row that won.
    """
    await conn.execute(
        """
        INSERT INTO request_identities
            (request_id, family, data_cutoff, force, content_sha256, bound_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (request_id) DO NOTHING
        """,
        identity.request_id,
        identity.family.value,
        identity.data_cutoff,
        identity.force,
        identity.content_sha256,
        at,
    )
    row = await conn.fetchrow(
        """
        SELECT request_id, family, data_cutoff, force, content_sha256
        FROM request_identities WHERE request_id = $1
        """,
        identity.request_id,
    )
    if row is None:  # pragma: no cover - the row was just inserted or already there
        raise TrainerError(f"request id {identity.request_id} is not bound")
    return RequestIdentity(
        request_id=row["request_id"],
        family=ModelFamily(row["family"]),
        data_cutoff=row["data_cutoff"],
        force=row["force"],
        content_sha256=row["content_sha256"],
    )


async def record(conn: asyncpg.Connection, outcome: OutcomeRecord, at: datetime) -> bool:
    """Log the outcome; False when the request was already logged (nothing is changed then)."""
    metrics = outcome.metrics
    inserted = await conn.fetchval(
        """
        INSERT INTO model_retraining_log (
            retrain_date, customers_trained, samples_trained, auc_score, precision_score,
            recall_score, f1_score, model_version, trigger_reason, training_duration_seconds,
            family, request_id, status, promoted, forced, error, metrics, data_cutoff,
            outcome_reason, gate_overridden)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17::jsonb, $18, $19, $20)
        ON CONFLICT (request_id) DO NOTHING
        RETURNING retrain_id
        """,
        at,
        outcome.customers,
        outcome.samples,
        metrics.get("auc"),
        metrics.get("precision"),
        metrics.get("recall"),
        metrics.get("f1"),
        outcome.version,
        outcome.trigger_reason,
        outcome.duration_seconds,
        outcome.family.value,
        outcome.request_id,
        outcome.status.value,
        outcome.status is OutcomeStatus.PROMOTED,
        outcome.forced,
        outcome.error,
        json.dumps(dict(metrics)),
        outcome.data_cutoff,
        outcome.reason,
        outcome.gate_overridden,
    )
    return inserted is not None


async def mark_customers_trained(
    conn: asyncpg.Connection, customer_ids: Sequence[str], at: datetime
) -> None:
    """The customers a promoted model learnt from are no longer new (from `at` on: first_trained
    keeps the first time, so the selection at an earlier cutoff still sees them as new)."""
    if not customer_ids:
        return
    await conn.execute(
        """
        INSERT INTO customer_training_status AS s
            (customer_id, first_seen, last_trained, included_in_training, first_trained)
        SELECT c.customer_id, c.ingested_at, $2, true, $2
        FROM customers c WHERE c.customer_id = ANY($1::text[])
        ON CONFLICT (customer_id) DO UPDATE
            SET last_trained = excluded.last_trained, included_in_training = true,
                first_trained = coalesce(s.first_trained, excluded.first_trained)
        """,
        list(customer_ids),
        at,
    )


async def new_customers(conn: asyncpg.Connection, since: datetime | None = None) -> int:
    """Customers never included in training (first seen after `since`, when given)."""
    count: int = await conn.fetchval(
        """
        SELECT count(*) FROM customers c
        LEFT JOIN customer_training_status s USING (customer_id)
        WHERE NOT coalesce(s.included_in_training, false)
          AND ($1::timestamptz IS NULL OR coalesce(s.first_seen, c.ingested_at) >= $1)
        """,
        since,
    )
    return count
