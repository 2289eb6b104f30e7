"""The `retrain_requests` table, written by the worker when it asks and by the trainer when it
is asked: whichever comes first keeps the request, the other changes nothing."""

from __future__ import annotations

import json

import asyncpg

from schemas.retrain_requested import RetrainRequested

_RECORD_REQUEST = """
INSERT INTO retrain_requests (request_id, family, reason, reason_text, counters, data_cutoff,
                              force, requested_by, requested_at)
VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)
ON CONFLICT (request_id) DO NOTHING
"""


async def record_request(conn: asyncpg.Connection, request: RetrainRequested) -> None:
    """Keep the request itself, once."""
    await conn.execute(
        _RECORD_REQUEST,
        request.request_id,
        request.family.value,
        request.reason.value,
        request.reason_text,
        json.dumps(request.counters),
        request.data_cutoff,
        request.force,
        request.requested_by,
        request.occurred_at,
    )
