-- A readable mirror of the worker's policy state (the worker's changelogged table is the source
-- of truth); the status endpoint, `retrainer check` and operators read it with plain SQL.
CREATE TABLE policy_state (
    family                text PRIMARY KEY,
    cutoff                timestamptz,
    last_trained_at       timestamptz,
    model_version         text,
    in_flight_request_id  uuid,
    in_flight_since       timestamptz,
    quiet_until           timestamptz,
    decision              text NOT NULL,
    reason_text           text NOT NULL,
    retraining_needed     boolean NOT NULL,
    counters              jsonb NOT NULL DEFAULT '{}'::jsonb,
    state                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
