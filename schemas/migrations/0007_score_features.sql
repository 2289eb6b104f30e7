-- Each live score keeps the feature vector it was computed from (in the order of the version's
-- feature_names), so the policy can compare live data with the version's training reference
-- (drift). NULL for rows scored before this column existed and for rows scored without a model.
ALTER TABLE expense_scores ADD COLUMN features real[];
ALTER TABLE customer_scores ADD COLUMN features real[];
-- The drift and realised-performance samples read a version's newest live scores.
CREATE INDEX customer_scores_live_idx ON customer_scores (model_version, scored_at)
    WHERE scoring_run = 'live';
