"""The `policy_state` mirror: each family's policy state where SQL, the API and the CLI read it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.base import ModelFamily
from streams.services.policy import PolicyStep
from streams.store.sheets import Queryable

_MIRROR = """
INSERT INTO policy_state (family, cutoff, last_trained_at, model_version, in_flight_request_id,
                          in_flight_since, rests_until_data_after, decision, reason_text,
                          retraining_needed,
                          counters, state, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, clock_timestamp())
ON CONFLICT (family) DO UPDATE SET
    cutoff = EXCLUDED.cutoff, last_trained_at = EXCLUDED.last_trained_at,
    model_version = EXCLUDED.model_version, in_flight_request_id = EXCLUDED.in_flight_request_id,
    in_flight_since = EXCLUDED.in_flight_since,
    rests_until_data_after = EXCLUDED.rests_until_data_after, quiet_until = NULL,
    decision = EXCLUDED.decision, reason_text = EXCLUDED.reason_text,
    retraining_needed = EXCLUDED.retraining_needed, counters = EXCLUDED.counters,
    state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
"""

_REQUEST_MIRROR = """
SELECT in_flight_request_id, cutoff, last_trained_at,
       coalesce((state->>'finished')::int, 0) AS finished
FROM policy_state WHERE family = $1
"""


async def mirror_step(db: Queryable, step: PolicyStep) -> None:
    """Write the family's policy state after a step."""
    state = step.state.family_state
    flight = state.in_flight
    await db.execute(
        _MIRROR,
        state.family.value,
        state.cutoff,
        state.last_trained_at,
        state.model_version,
        flight.request_id if flight else None,
        flight.sent_at if flight else None,
        state.rests_until_data_after,
        step.decision.action.value,
        step.decision.reason_text,
        step.decision.retraining_needed,
        json.dumps(step.counters.as_dict()),
        json.dumps(step.state.to_json()),
    )


async def stored_state(db: Queryable, family: ModelFamily) -> dict[str, Any] | None:
    """The family's policy state as last mirrored (PolicyState.to_json), None before any."""
    raw = await db.fetchval("SELECT state FROM policy_state WHERE family = $1", family.value)
    if raw is None:
        return None
    state: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return state


@dataclass(frozen=True)
class RequestMirror:
    """What the next manual request id is made of, and the request in flight."""

    in_flight: uuid.UUID | None
    cutoff: datetime | None
    last_trained_at: datetime | None
    finished: int


async def request_mirror(db: Queryable, family: ModelFamily) -> RequestMirror | None:
    row = await db.fetchrow(_REQUEST_MIRROR, family.value)
    if row is None:
        return None
    return RequestMirror(
        row["in_flight_request_id"], row["cutoff"], row["last_trained_at"], row["finished"]
    )


_CHAMPION = """
SELECT version, data_cutoff, promoted_at FROM model_versions
WHERE family = $1 AND status = 'champion'
"""

# A request that trained a model (promoted or rejected by the gate) moved the cutoff and the
# last training time; skipped and failed ones moved neither (see policy.finish_flight).
_TRAINED = """
SELECT max(retrain_date) AS last_trained_at, max(data_cutoff) AS data_cutoff
FROM model_retraining_log
WHERE family = $1 AND status IN ('promoted', 'rejected')
"""

_OPEN_REQUESTS = """
SELECT r.request_id FROM retrain_requests r
WHERE r.family = $1
  AND NOT EXISTS (SELECT 1 FROM model_retraining_log l WHERE l.request_id = r.request_id)
ORDER BY r.requested_at
"""


@dataclass(frozen=True)
class RegistryFacts:
    """What the registry and the retraining log say of a family, for rebuilding its state."""

    champion: str | None
    champion_cutoff: datetime | None
    promoted_at: datetime | None
    last_trained_at: datetime | None
    trained_cutoff: datetime | None
    open_requests: tuple[uuid.UUID, ...]


async def registry_facts(conn: asyncpg.Connection, family: ModelFamily) -> RegistryFacts:
    champion = await conn.fetchrow(_CHAMPION, family.value)
    trained = await conn.fetchrow(_TRAINED, family.value)
    requests = await conn.fetch(_OPEN_REQUESTS, family.value)
    return RegistryFacts(
        champion=champion["version"] if champion else None,
        champion_cutoff=champion["data_cutoff"] if champion else None,
        promoted_at=champion["promoted_at"] if champion else None,
        last_trained_at=trained["last_trained_at"],
        trained_cutoff=trained["data_cutoff"],
        open_requests=tuple(row["request_id"] for row in requests),
    )
