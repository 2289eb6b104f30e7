-- The trainer's outcome reason and whether a forced request overrode the promotion gate, so the
-- log says why each request ended as it did (the seed's columns stay as they were).
ALTER TABLE model_retraining_log
    ADD COLUMN outcome_reason text,
    ADD COLUMN gate_overridden boolean NOT NULL DEFAULT false;

-- A version rolled back from is not a rollback target again; a new promotion clears this.
ALTER TABLE model_versions ADD COLUMN rolled_back_at timestamptz;

CREATE INDEX model_versions_family_promoted_idx ON model_versions (family, promoted_at DESC)
    WHERE promoted_at IS NOT NULL;
