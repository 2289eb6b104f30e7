"""Factories for valid events, and the plumbing tests use to feed a worker and wait for it.

The worker and trainer processes themselves are started by tests/services.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from edge.kafka import KafkaConnection
from edge.producer import DeliveringProducer, DeliveryFailed
from schemas.base import Event
from schemas.codec import Codec
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated, CustomerProfile
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import ExpenseLine, ExpenseSheetSubmitted

CODEC = Codec()
START = datetime(2026, 1, 1, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
API_TOKEN = "test-token-of-the-http-api"
"""The bearer token the workers that tests start are given (RETRAINER_API_TOKEN)."""


def customer(n: int, prefix: str = "c") -> CustomerCreated:
    return CustomerCreated(
        occurred_at=START + timedelta(minutes=n),
        customer_id=f"{prefix}-{n}",
        created_at=START + timedelta(minutes=n),
        profile=CustomerProfile(
            age=25 + n % 40,
            annual_income=Decimal(30_000 + 500 * (n % 50)),
            credit_limit=Decimal(2_000 + 100 * (n % 30)),
            region=("north", "south", "east", "west")[n % 4],
            product=("classic", "gold")[n % 2],
            tenure_months=n % 120,
            employment_status=("employed", "self-employed", "retired")[n % 3],
        ),
    )


def statement(customer_id: str, month: int, days_past_due: int = 0) -> CustomerActivityRecorded:
    day = date(2026, 1, 28) + timedelta(days=30 * month)
    return CustomerActivityRecorded(
        occurred_at=datetime(day.year, day.month, day.day, tzinfo=UTC),
        statement_id=f"{customer_id}-s{month}",
        customer_id=customer_id,
        statement_date=day,
        balance=Decimal("1200.50"),
        credit_limit=Decimal(3000),
        payment_amount=Decimal(100),
        minimum_due=Decimal(60),
        purchase_amount=Decimal("250.10"),
        cash_advance_amount=Decimal(0),
        days_past_due=days_past_due,
    )


def sheet(n: int, lines: int = 6, prefix: str = "s") -> ExpenseSheetSubmitted:
    submitted = START + timedelta(hours=n)
    return ExpenseSheetSubmitted(
        occurred_at=submitted,
        sheet_id=f"{prefix}-{n}",
        employee_id=f"e-{n % 7}",
        submitted_at=submitted,
        lines=[
            ExpenseLine(
                expense_id=f"{prefix}-{n}-{i}",
                amount=Decimal(f"{20 + 3 * i}.{n % 100:02d}"),
                currency="EUR",
                category=("travel", "meals", "lodging")[i % 3],
                merchant=f"merchant-{i % 5}",
                expense_date=submitted.date() - timedelta(days=i % 3),
                description="",
                receipt_ref=f"r-{n}-{i}",
            )
            for i in range(lines)
        ],
    )


def label(expense_id: str, is_fraud: bool) -> ExpenseLabelled:
    return ExpenseLabelled(
        occurred_at=START + timedelta(days=30),
        expense_id=expense_id,
        is_fraud=is_fraud,
        labelled_at=START + timedelta(days=30),
        source="auditor",
    )


def publish(bootstrap: str, topic: str, items: Iterable[Event | tuple[bytes, bytes]]) -> int:
    """Produce events (or raw key/value pairs) and wait until the broker has all of them."""
    messages: list[tuple[bytes | None, bytes]] = [
        item if isinstance(item, tuple) else (CODEC.key_of(item), CODEC.encode(item))
        for item in items
    ]
    producer = DeliveringProducer(KafkaConnection(bootstrap), **{"message.timeout.ms": 60_000})
    try:
        producer.deliver(topic, messages)
    except DeliveryFailed as exc:
        raise RuntimeError(f"publishing to {topic} failed: {exc}") from exc
    finally:
        producer.close()
    return len(messages)


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def new_prefix() -> str:
    """A topic prefix (and consumer group stem) private to one test."""
    return f"w{uuid.uuid4().hex[:8]}"
