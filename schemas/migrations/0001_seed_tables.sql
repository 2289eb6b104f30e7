-- Tables kept from the pre-delinquency engine, with the names and columns its users' SQL expects.
-- Columns after the seed's own are retrainer's additions.

CREATE TABLE customers (
    customer_id        text PRIMARY KEY,
    created_at         timestamptz NOT NULL,
    age                integer,
    annual_income      numeric,
    credit_limit       numeric,
    region             text,
    product            text,
    tenure_months      integer,
    employment_status  text,
    event_id           uuid NOT NULL UNIQUE,
    ingested_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_created_at_idx ON customers (created_at);
CREATE INDEX customers_ingested_at_idx ON customers (ingested_at);

CREATE TABLE customer_training_status (
    customer_id           text PRIMARY KEY,
    first_seen            timestamptz NOT NULL DEFAULT now(),
    last_trained          timestamptz,
    included_in_training  boolean NOT NULL DEFAULT false
);
CREATE INDEX customer_training_status_untrained_idx
    ON customer_training_status (first_seen) WHERE NOT included_in_training;

CREATE TABLE model_retraining_log (
    retrain_id                 serial PRIMARY KEY,
    retrain_date               timestamptz NOT NULL DEFAULT now(),
    customers_trained          integer,
    samples_trained            integer,
    auc_score                  double precision,
    precision_score            double precision,
    recall_score               double precision,
    f1_score                   double precision,
    model_version              text,
    trigger_reason             text,
    training_duration_seconds  double precision,
    -- retrainer's additions
    family                     text,
    request_id                 uuid UNIQUE,
    status                     text CHECK (status IN ('promoted', 'rejected', 'skipped', 'failed')),
    promoted                   boolean NOT NULL DEFAULT false,
    forced                     boolean NOT NULL DEFAULT false,
    error                      text,
    metrics                    jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_cutoff                timestamptz
);
CREATE INDEX model_retraining_log_family_date_idx ON model_retraining_log (family, retrain_date DESC);
