-- The expense scorer reads, for each batch, the history its features need
-- (streams/store/sheets.py, expense_history): lines near the window's edges, and totals per key
-- for the whole days in between. Employees and receipts have few lines: their totals come from
-- the lines, through these indexes. Categories and popular merchants have many: their totals
-- come from expense_day_totals, kept by a trigger in the transaction that stores the lines.
-- Merchants, categories and receipts are free text (up to 2,000 characters, more than a B-tree
-- entry holds): they are indexed by their md5, and compared in full after it.
LOCK TABLE expenses IN SHARE ROW EXCLUSIVE MODE;

CREATE INDEX expenses_employee_submitted_idx ON expenses (employee_id, submitted_at);
CREATE INDEX expenses_merchant_submitted_idx ON expenses ((md5(merchant)::uuid), submitted_at);
CREATE INDEX expenses_receipt_submitted_idx ON expenses ((md5(receipt_ref)::uuid), submitted_at)
    WHERE receipt_ref IS NOT NULL;
CREATE INDEX expenses_category_submitted_idx ON expenses ((md5(category)::uuid), submitted_at);

-- Lines and the sum of ln(1 + amount) per UTC day of submission, for three keys: 'category'
-- (merchant ''), 'merchant' (category '') and 'merchant_category'.
CREATE TABLE expense_day_totals (
    key_kind        text NOT NULL CHECK (key_kind IN ('category', 'merchant', 'merchant_category')),
    merchant        text NOT NULL,
    category        text NOT NULL,
    day             date NOT NULL,
    lines           bigint NOT NULL,
    log_amount_sum  float8 NOT NULL,
    merchant_md5    uuid NOT NULL GENERATED ALWAYS AS (md5(merchant)::uuid) STORED,
    category_md5    uuid NOT NULL GENERATED ALWAYS AS (md5(category)::uuid) STORED,
    PRIMARY KEY (key_kind, merchant_md5, category_md5, day)
);

CREATE VIEW expense_day_totals_of_lines AS
SELECT kinds.key_kind,
       CASE WHEN kinds.key_kind = 'category' THEN '' ELSE e.merchant END AS merchant,
       CASE WHEN kinds.key_kind = 'merchant' THEN '' ELSE e.category END AS category,
       (e.submitted_at AT TIME ZONE 'UTC')::date AS day,
       ln(1 + greatest(e.amount::float8, 0)) AS log_amount
FROM expenses e
CROSS JOIN (VALUES ('category'), ('merchant'), ('merchant_category')) AS kinds (key_kind);

INSERT INTO expense_day_totals (key_kind, merchant, category, day, lines, log_amount_sum)
SELECT key_kind, merchant, category, day, count(*), sum(log_amount)
FROM expense_day_totals_of_lines
GROUP BY key_kind, merchant, category, day;
DROP VIEW expense_day_totals_of_lines;

-- One upsert per INSERT or DELETE statement (a deletion counts negatively); rows in key order,
-- so concurrent writers lock them in the same order (no deadlock). The service never updates a
-- line's amount, time, category or merchant.
CREATE FUNCTION expense_day_totals_add() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sign integer := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
    INSERT INTO expense_day_totals AS t (key_kind, merchant, category, day, lines, log_amount_sum)
    SELECT k.key_kind, k.merchant, k.category, k.day, sign * count(*), sign * sum(k.log_amount)
    FROM (
        SELECT kinds.key_kind,
               CASE WHEN kinds.key_kind = 'category' THEN '' ELSE n.merchant END AS merchant,
               CASE WHEN kinds.key_kind = 'merchant' THEN '' ELSE n.category END AS category,
               (n.submitted_at AT TIME ZONE 'UTC')::date AS day,
               ln(1 + greatest(n.amount::float8, 0)) AS log_amount
        FROM stored_lines n
        CROSS JOIN (VALUES ('category'), ('merchant'), ('merchant_category')) AS kinds (key_kind)
    ) k
    GROUP BY k.key_kind, k.merchant, k.category, k.day
    ORDER BY k.key_kind, md5(k.merchant)::uuid, md5(k.category)::uuid, k.day
    ON CONFLICT (key_kind, merchant_md5, category_md5, day) DO UPDATE
    SET lines = t.lines + excluded.lines, log_amount_sum = t.log_amount_sum + excluded.log_amount_sum;
    RETURN NULL;
END
$$;

CREATE TRIGGER expenses_add_day_totals
    AFTER INSERT ON expenses REFERENCING NEW TABLE AS stored_lines
    FOR EACH STATEMENT EXECUTE FUNCTION expense_day_totals_add();
CREATE TRIGGER expenses_remove_day_totals
    AFTER DELETE ON expenses REFERENCING OLD TABLE AS stored_lines
    FOR EACH STATEMENT EXECUTE FUNCTION expense_day_totals_add();

CREATE FUNCTION expense_day_totals_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE expense_day_totals;
    RETURN NULL;
END
$$;
CREATE TRIGGER expenses_clear_day_totals
    AFTER TRUNCATE ON expenses FOR EACH STATEMENT EXECUTE FUNCTION expense_day_totals_clear();
