"""The PostgreSQL sink: batches of events stored idempotently, one round trip per table.

Every table is keyed by the event id and the fact's natural id, and every insert is
`ON CONFLICT DO NOTHING`, so a redelivered or replayed event changes nothing. `ingested_at` is the
database's clock at insert time: the retraining counters and the trainer's data cutoff both
compare against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import ExpenseSheetSubmitted


@dataclass(frozen=True)
class Stored:
    """How many events of a batch were new, and how many were already stored."""

    new: int
    present: int
    new_ids: frozenset[str] = frozenset()
    """The natural ids of the new ones, where the caller needs them (statements)."""

    def __add__(self, other: Stored) -> Stored:
        return Stored(
            self.new + other.new, self.present + other.present, self.new_ids | other.new_ids
        )


_INSERT_SHEETS = """
INSERT INTO sheets (sheet_id, employee_id, submitted_at, line_count, event_id, occurred_at,
                    ingested_at)
SELECT s.*, clock_timestamp()
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::uuid[], $6::timestamptz[]) s
ON CONFLICT DO NOTHING
RETURNING sheet_id, event_id
"""

# Lines are stored only with the sheet event that brought them: a later sheet reusing an expense
# id does not add or replace lines of another, nor does a second event for the same sheet id in
# the same batch add its lines to the first one's.
_INSERT_EXPENSES = """
INSERT INTO expenses (expense_id, sheet_id, employee_id, amount, currency, category, merchant,
                      expense_date, description, receipt_ref, submitted_at, ingested_at)
SELECT e.*, clock_timestamp()
FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::text[], $6::text[],
            $7::text[], $8::date[], $9::text[], $10::text[], $11::timestamptz[])
     AS e(expense_id, sheet_id, employee_id, amount, currency, category, merchant, expense_date,
          description, receipt_ref, submitted_at)
WHERE e.sheet_id = ANY($12::text[])
ON CONFLICT DO NOTHING
"""

_INSERT_CUSTOMERS = """
INSERT INTO customers (customer_id, created_at, age, annual_income, credit_limit, region, product,
                       tenure_months, employment_status, event_id, ingested_at)
SELECT c.*, clock_timestamp()
FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::numeric[], $5::numeric[], $6::text[],
            $7::text[], $8::int[], $9::text[], $10::uuid[]) c
ON CONFLICT DO NOTHING
RETURNING customer_id
"""

_INSERT_TRAINING_STATUS = """
INSERT INTO customer_training_status (customer_id, first_seen, included_in_training)
SELECT id, clock_timestamp(), false FROM unnest($1::text[]) id
ON CONFLICT DO NOTHING
"""

_INSERT_ACTIVITY = """
INSERT INTO customer_activity (statement_id, customer_id, statement_date, balance, credit_limit,
                               payment_amount, minimum_due, purchase_amount, cash_advance_amount,
                               days_past_due, event_id, occurred_at, ingested_at)
SELECT a.*, clock_timestamp()
FROM unnest($1::text[], $2::text[], $3::date[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::numeric[], $8::numeric[], $9::numeric[], $10::int[], $11::uuid[],
            $12::timestamptz[]) a
ON CONFLICT DO NOTHING
RETURNING statement_id
"""

_INSERT_LABELS = """
INSERT INTO expense_labels (event_id, expense_id, sheet_id, is_fraud, labelled_at, source,
                            ingested_at)
SELECT l.*, clock_timestamp()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[], $6::text[]) l
ON CONFLICT DO NOTHING
RETURNING event_id
"""


async def store_sheets(conn: asyncpg.Connection, sheets: Sequence[ExpenseSheetSubmitted]) -> Stored:
    """Store sheets and their lines; a sheet already stored keeps its original lines."""
    if not sheets:
        return Stored(0, 0)
    async with conn.transaction():
        inserted = {
            (row["sheet_id"], row["event_id"])
            for row in await conn.fetch(
                _INSERT_SHEETS,
                [s.sheet_id for s in sheets],
                [s.employee_id for s in sheets],
                [s.submitted_at for s in sheets],
                [len(s.lines) for s in sheets],
                [s.event_id for s in sheets],
                [s.occurred_at for s in sheets],
            )
        }
        new_ids = {sheet_id for sheet_id, _ in inserted}
        if new_ids:
            lines = [
                (s, line)
                for s in sheets
                if (s.sheet_id, s.event_id) in inserted
                for line in s.lines
            ]
            await conn.execute(
                _INSERT_EXPENSES,
                [line.expense_id for _, line in lines],
                [s.sheet_id for s, _ in lines],
                [s.employee_id for s, _ in lines],
                [line.amount for _, line in lines],
                [line.currency for _, line in lines],
                [line.category for _, line in lines],
                [line.merchant for _, line in lines],
                [line.expense_date for _, line in lines],
                [line.description for _, line in lines],
                [line.receipt_ref for _, line in lines],
                [s.submitted_at for s, _ in lines],
                list(new_ids),
            )
    return Stored(len(new_ids), len(sheets) - len(new_ids))


async def store_customers(conn: asyncpg.Connection, customers: Sequence[CustomerCreated]) -> Stored:
    """Store customers and open their `customer_training_status` rows (not yet trained)."""
    if not customers:
        return Stored(0, 0)
    async with conn.transaction():
        rows = await conn.fetch(
            _INSERT_CUSTOMERS,
            [c.customer_id for c in customers],
            [c.created_at for c in customers],
            [c.profile.age for c in customers],
            [c.profile.annual_income for c in customers],
            [c.profile.credit_limit for c in customers],
            [c.profile.region for c in customers],
            [c.profile.product for c in customers],
            [c.profile.tenure_months for c in customers],
            [c.profile.employment_status for c in customers],
            [c.event_id for c in customers],
        )
        new_ids = [row["customer_id"] for row in rows]
        if new_ids:
            await conn.execute(_INSERT_TRAINING_STATUS, new_ids)
    return Stored(len(new_ids), len(customers) - len(new_ids))


async def store_activity(
    conn: asyncpg.Connection, statements: Sequence[CustomerActivityRecorded]
) -> Stored:
    """Store activity statements."""
    if not statements:
        return Stored(0, 0)
    rows = await conn.fetch(
        _INSERT_ACTIVITY,
        [a.statement_id for a in statements],
        [a.customer_id for a in statements],
        [a.statement_date for a in statements],
        [a.balance for a in statements],
        [a.credit_limit for a in statements],
        [a.payment_amount for a in statements],
        [a.minimum_due for a in statements],
        [a.purchase_amount for a in statements],
        [a.cash_advance_amount for a in statements],
        [a.days_past_due for a in statements],
        [a.event_id for a in statements],
        [a.occurred_at for a in statements],
    )
    return Stored(
        len(rows), len(statements) - len(rows), frozenset(row["statement_id"] for row in rows)
    )


async def store_labels(conn: asyncpg.Connection, labels: Sequence[ExpenseLabelled]) -> Stored:
    """Store auditor labels; each label event is kept, the latest per expense wins when read."""
    if not labels:
        return Stored(0, 0)
    rows = await conn.fetch(
        _INSERT_LABELS,
        [label.event_id for label in labels],
        [label.expense_id for label in labels],
        [label.sheet_id for label in labels],
        [label.is_fraud for label in labels],
        [label.labelled_at for label in labels],
        [label.source for label in labels],
    )
    return Stored(len(rows), len(labels) - len(rows))
