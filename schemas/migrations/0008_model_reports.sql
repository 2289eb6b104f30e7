-- Each trained version's report: one self-contained HTML page (trainer/report.py), written in the
-- transaction that records the version. A version trained before reports were kept has none.
CREATE TABLE model_reports (
    version     text PRIMARY KEY REFERENCES model_versions (version),
    html        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
