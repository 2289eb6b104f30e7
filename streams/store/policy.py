"""The `policy_state` mirror: each family's policy state where SQL, the status endpoint and the
CLI can read it (the policy agent's Faust table is the state itself)."""

from __future__ import annotations

import json

import asyncpg

from streams.services.policy import PolicyStep

_MIRROR = """
INSERT INTO policy_state (family, cutoff, last_trained_at, model_version, in_flight_request_id,
                          in_flight_since, quiet_until, decision, reason_text, retraining_needed,
                          counters, state, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, clock_timestamp())
ON CONFLICT (family) DO UPDATE SET
    cutoff = EXCLUDED.cutoff, last_trained_at = EXCLUDED.last_trained_at,
    model_version = EXCLUDED.model_version, in_flight_request_id = EXCLUDED.in_flight_request_id,
    in_flight_since = EXCLUDED.in_flight_since, quiet_until = EXCLUDED.quiet_until,
    decision = EXCLUDED.decision, reason_text = EXCLUDED.reason_text,
    retraining_needed = EXCLUDED.retraining_needed, counters = EXCLUDED.counters,
    state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
"""


async def mirror_step(pool: asyncpg.Pool, step: PolicyStep) -> None:
    """Write the family's state after `step`."""
    state = step.state.state
    flight = state.in_flight
    async with pool.acquire() as conn:
        await conn.execute(
            _MIRROR,
            state.family.value,
            state.cutoff,
            state.last_trained_at,
            state.model_version,
            flight.request_id if flight else None,
            flight.sent_at if flight else None,
            state.quiet_until,
            step.decision.action.value,
            step.decision.reason_text,
            step.decision.retraining_needed,
            json.dumps(step.counters.as_dict()),
            json.dumps(step.state.to_json()),
        )
