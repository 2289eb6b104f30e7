-- The expense scorer reads, for each batch, the lines of the history window that share a key
-- with the batch's lines (streams/store/sheets.py, expense_history): by employee, merchant,
-- receipt and category, within a range of submission times. Totals per key are computed from
-- these indexes alone where the visibility map allows (index-only scans).
CREATE INDEX expenses_employee_submitted_idx
    ON expenses (employee_id, submitted_at) INCLUDE (category, merchant, amount);
CREATE INDEX expenses_merchant_submitted_idx
    ON expenses (merchant, submitted_at) INCLUDE (category, amount);
CREATE INDEX expenses_receipt_submitted_idx
    ON expenses (receipt_ref, submitted_at) INCLUDE (amount)
    WHERE receipt_ref IS NOT NULL;
CREATE INDEX expenses_category_submitted_idx
    ON expenses (category, submitted_at) INCLUDE (amount);
