"""Simulated records as contract events: the one place the simulator meets `schemas/` classes.

Event ids are derived from the entity they describe, so publishing the same scenario twice
repeats the same events (a replay) instead of inventing new ones.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from retrainer.simulator.customers import SimCustomer, SimStatement
from retrainer.simulator.expenses import SimExpenseLine, SimLabel, SimSheet
from schemas import (
    CustomerActivityRecorded,
    CustomerCreated,
    CustomerProfile,
    ExpenseLabelled,
    ExpenseLine,
    ExpenseSheetSubmitted,
)

SIMULATOR_NAMESPACE = uuid.UUID("7d0f6d1c-3c55-4a4e-9a0b-5f3c1e2b8a61")
"""Namespace of the simulator's name-based (v5) event ids."""

SHEET_TOPIC = ExpenseSheetSubmitted.TOPIC
CUSTOMER_TOPIC = CustomerCreated.TOPIC
ACTIVITY_TOPIC = CustomerActivityRecorded.TOPIC
LABEL_TOPIC = ExpenseLabelled.TOPIC
UPSTREAM_TOPICS: tuple[str, ...] = (SHEET_TOPIC, CUSTOMER_TOPIC, ACTIVITY_TOPIC, LABEL_TOPIC)
"""The default names of the topics the simulator publishes to, in the spec's order."""


def event_id_for(topic: str, entity_id: str) -> uuid.UUID:
    """The id of the event on `topic` about `entity_id`: the same entity, the same id."""
    return uuid.uuid5(SIMULATOR_NAMESPACE, f"{topic}/{entity_id}")


def customer_event(customer: SimCustomer) -> CustomerCreated:
    return CustomerCreated(
        event_id=event_id_for(CUSTOMER_TOPIC, customer.customer_id),
        occurred_at=customer.created_at,
        customer_id=customer.customer_id,
        created_at=customer.created_at,
        profile=CustomerProfile(
            age=customer.age,
            annual_income=customer.annual_income,
            credit_limit=customer.credit_limit,
            region=customer.region,
            product=customer.product,
            tenure_months=customer.tenure_months,
            employment_status=customer.employment_status,
        ),
    )


def statement_event(statement: SimStatement, issued_at: datetime) -> CustomerActivityRecorded:
    return CustomerActivityRecorded(
        event_id=event_id_for(ACTIVITY_TOPIC, statement.statement_id),
        occurred_at=issued_at,
        statement_id=statement.statement_id,
        customer_id=statement.customer_id,
        statement_date=statement.statement_date,
        balance=statement.balance,
        credit_limit=statement.credit_limit,
        payment_amount=statement.payment_amount,
        minimum_due=statement.minimum_due,
        purchase_amount=statement.purchase_amount,
        cash_advance_amount=statement.cash_advance_amount,
        days_past_due=statement.days_past_due,
    )


def _line(line: SimExpenseLine) -> ExpenseLine:
    return ExpenseLine(
        expense_id=line.expense_id,
        amount=line.amount,
        currency=line.currency,
        category=line.category,
        merchant=line.merchant,
        expense_date=line.expense_date,
        description=line.description,
        receipt_ref=line.receipt_ref,
    )


def sheet_event(sheet: SimSheet) -> ExpenseSheetSubmitted:
    return ExpenseSheetSubmitted(
        event_id=event_id_for(SHEET_TOPIC, sheet.sheet_id),
        occurred_at=sheet.submitted_at,
        sheet_id=sheet.sheet_id,
        employee_id=sheet.employee_id,
        submitted_at=sheet.submitted_at,
        lines=tuple(_line(line) for line in sheet.lines),
    )


def label_event(label: SimLabel) -> ExpenseLabelled:
    return ExpenseLabelled(
        event_id=event_id_for(LABEL_TOPIC, label.expense_id),
        occurred_at=label.labelled_at,
        expense_id=label.expense_id,
        sheet_id=label.sheet_id,
        is_fraud=label.is_fraud,
        labelled_at=label.labelled_at,
        source=label.source,
    )


def legacy_sheet_payload(event: ExpenseSheetSubmitted, wire: dict[str, Any]) -> dict[str, Any]:
    """The same sheet in the old expense app's upload shape (schema_version 1).

    `wire` is the v2 event as JSON. v1 names the employee `employee`, the lines `items`, carries
    one sheet-level currency (an item in another currency names its own) and has no
    `submitted_at`: the codec's upcast takes `occurred_at`, which the simulator sets equal.
    """
    sheet_currency = event.lines[0].currency
    items = []
    for item in wire["lines"]:
        line = dict(item)
        if line["currency"] == sheet_currency:
            del line["currency"]
        items.append(line)
    return {
        "event_id": wire["event_id"],
        "occurred_at": wire["occurred_at"],
        "schema_version": 1,
        "sheet_id": wire["sheet_id"],
        "employee": wire["employee_id"],
        "currency": sheet_currency,
        "items": items,
    }
