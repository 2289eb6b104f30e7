-- What the stream sink stores (one row per fact, keyed so a redelivered event changes nothing),
-- the scores, the retrain requests, and the model registry.

CREATE TABLE sheets (
    sheet_id      text PRIMARY KEY,
    employee_id   text NOT NULL,
    submitted_at  timestamptz NOT NULL,
    line_count    integer NOT NULL CHECK (line_count > 0),
    event_id      uuid NOT NULL UNIQUE,
    occurred_at   timestamptz NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sheets_submitted_at_idx ON sheets (submitted_at);
CREATE INDEX sheets_ingested_at_idx ON sheets (ingested_at);
CREATE INDEX sheets_min_lines_idx ON sheets (line_count);

CREATE TABLE expenses (
    expense_id    text PRIMARY KEY,
    sheet_id      text NOT NULL REFERENCES sheets (sheet_id),
    employee_id   text NOT NULL,
    amount        numeric NOT NULL CHECK (amount >= 0),
    currency      char(3) NOT NULL,
    category      text NOT NULL,
    merchant      text NOT NULL,
    expense_date  date NOT NULL,
    description   text NOT NULL DEFAULT '',
    receipt_ref   text,
    submitted_at  timestamptz NOT NULL,
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expenses_sheet_idx ON expenses (sheet_id);
CREATE INDEX expenses_submitted_at_idx ON expenses (submitted_at);
CREATE INDEX expenses_ingested_at_idx ON expenses (ingested_at);
CREATE INDEX expenses_employee_idx ON expenses (employee_id, expense_date);

-- Labels keep their history: an auditor may relabel; the latest labelled_at wins.
CREATE TABLE expense_labels (
    event_id     uuid PRIMARY KEY,
    expense_id   text NOT NULL,
    sheet_id     text,
    is_fraud     boolean NOT NULL,
    labelled_at  timestamptz NOT NULL,
    source       text NOT NULL,
    ingested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX expense_labels_expense_idx ON expense_labels (expense_id, labelled_at DESC);
CREATE INDEX expense_labels_ingested_at_idx ON expense_labels (ingested_at);

CREATE TABLE customer_activity (
    statement_id         text PRIMARY KEY,
    customer_id          text NOT NULL,
    statement_date       date NOT NULL,
    balance              numeric NOT NULL,
    credit_limit         numeric NOT NULL CHECK (credit_limit >= 0),
    payment_amount       numeric NOT NULL CHECK (payment_amount >= 0),
    minimum_due          numeric NOT NULL CHECK (minimum_due >= 0),
    purchase_amount      numeric NOT NULL CHECK (purchase_amount >= 0),
    cash_advance_amount  numeric NOT NULL CHECK (cash_advance_amount >= 0),
    days_past_due        integer NOT NULL CHECK (days_past_due >= 0),
    event_id             uuid NOT NULL UNIQUE,
    occurred_at          timestamptz NOT NULL,
    ingested_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_activity_customer_date_idx ON customer_activity (customer_id, statement_date);
CREATE INDEX customer_activity_date_idx ON customer_activity (statement_date);
CREATE INDEX customer_activity_ingested_at_idx ON customer_activity (ingested_at);

-- scoring_run is 'live' for the running scorers and a run id for re-scores of history; each
-- line or statement is scored once per run, by whichever model version was current then.
CREATE TABLE expense_scores (
    expense_id         text NOT NULL,
    sheet_id           text NOT NULL,
    model_version      text NOT NULL DEFAULT '',
    scoring_run        text NOT NULL DEFAULT 'live',
    anomaly_score      double precision,
    fraud_probability  double precision,
    is_flagged         boolean NOT NULL,
    scored_at          timestamptz NOT NULL,
    PRIMARY KEY (expense_id, scoring_run)
);
CREATE INDEX expense_scores_live_idx ON expense_scores (model_version, scored_at)
    WHERE scoring_run = 'live';

CREATE TABLE customer_scores (
    statement_id             text NOT NULL,
    customer_id              text NOT NULL,
    model_version            text NOT NULL DEFAULT '',
    scoring_run              text NOT NULL DEFAULT 'live',
    delinquency_probability  double precision,
    is_flagged               boolean NOT NULL,
    scored_at                timestamptz NOT NULL,
    PRIMARY KEY (statement_id, scoring_run)
);
CREATE INDEX customer_scores_customer_idx ON customer_scores (customer_id, scored_at);

CREATE TABLE retrain_requests (
    request_id    uuid PRIMARY KEY,
    family        text NOT NULL,
    reason        text NOT NULL,
    reason_text   text NOT NULL,
    counters      jsonb NOT NULL DEFAULT '{}'::jsonb,
    data_cutoff   timestamptz NOT NULL,
    force         boolean NOT NULL DEFAULT false,
    requested_by  text NOT NULL,
    requested_at  timestamptz NOT NULL
);
CREATE INDEX retrain_requests_family_idx ON retrain_requests (family, requested_at DESC);

-- The registry. Versions are never overwritten; one champion per family at a time.
CREATE TABLE model_versions (
    version          text PRIMARY KEY,
    family           text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('candidate', 'champion', 'rejected', 'retired')),
    status_reason    text,
    metrics          jsonb NOT NULL DEFAULT '{}'::jsonb,
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    samples          integer NOT NULL DEFAULT 0,
    data_start       timestamptz,
    data_cutoff      timestamptz NOT NULL,
    code_version     text NOT NULL,
    request_id       uuid,
    created_at       timestamptz NOT NULL DEFAULT now(),
    promoted_at      timestamptz
);
CREATE UNIQUE INDEX model_versions_one_champion_idx ON model_versions (family)
    WHERE status = 'champion';
CREATE INDEX model_versions_family_created_idx ON model_versions (family, created_at DESC);

-- A version may hold several models (expense-fraud: an IsolationForest and a RandomForest).
CREATE TABLE model_artifacts (
    artifact_id  text PRIMARY KEY,
    version      text NOT NULL REFERENCES model_versions (version),
    role         text NOT NULL,
    format       text NOT NULL CHECK (format IN ('xgboost-ubj', 'xgboost-json', 'skops')),
    sha256       char(64) NOT NULL,
    size_bytes   integer NOT NULL,
    content      bytea NOT NULL,
    UNIQUE (version, role)
);
