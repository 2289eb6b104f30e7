-- When each customer was first included in a promoted model, so that "new or already trained"
-- can be decided as of any past data cutoff (a rerun at an old cutoff selects the same
-- customers), and the policy's rest until new data replacing the timed cool-down.

ALTER TABLE customer_training_status ADD COLUMN first_trained timestamptz;
-- Backfill: before this column only the latest training was kept; it is the best known bound.
UPDATE customer_training_status
SET first_trained = coalesce(last_trained, first_seen)
WHERE included_in_training AND first_trained IS NULL;
CREATE INDEX customer_training_status_first_trained_idx
    ON customer_training_status (first_trained);

-- The data cutoff of the last request that ended without a new champion: automatic triggers
-- rest until data stored after it arrives. quiet_until (a fixed cool-down) is no longer written.
ALTER TABLE policy_state ADD COLUMN rests_until_data_after timestamptz;
