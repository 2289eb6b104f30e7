-- What each retrain request id was first seen asking for, written by the trainer alone (the worker
-- stores retrain_requests before the trainer sees them). The same id with another family or
-- content is refused instead of being answered with the first request's outcome.
CREATE TABLE request_identities (
    request_id      uuid PRIMARY KEY,
    family          text NOT NULL,
    data_cutoff     timestamptz NOT NULL,
    force           boolean NOT NULL,
    -- sha256 of what the request asks for (trainer/admission.py); null for ids bound below.
    content_sha256  text CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    bound_at        timestamptz NOT NULL DEFAULT now()
);

-- Requests finished before this table existed are bound to what the log says they trained on.
INSERT INTO request_identities (request_id, family, data_cutoff, force, bound_at)
SELECT request_id, family, data_cutoff, forced, retrain_date
FROM model_retraining_log
WHERE request_id IS NOT NULL AND family IS NOT NULL AND data_cutoff IS NOT NULL
ON CONFLICT (request_id) DO NOTHING;
