"""A large mixed upstream stream, fast: a simulated world written straight to wire JSON.

The simulator's own path (event objects, then the codec) makes some 3-4k messages/s, too slow
for a million. Here the world's columns are formatted into the same JSON the codec would accept
(tests/unit/bench/test_mixed_stream.py decodes these bytes and compares them with the
simulator's events), and produced in bulk with one librdkafka producer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Producer

from retrainer.simulator import catalog
from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
from retrainer.simulator.events import (
    ACTIVITY_TOPIC,
    CUSTOMER_TOPIC,
    LABEL_TOPIC,
    SHEET_TOPIC,
    event_id_for,
)
from retrainer.simulator.world import RecordKind, World, simulate

MIX: Mapping[str, float] = {
    ACTIVITY_TOPIC: 0.70,
    LABEL_TOPIC: 0.15,
    CUSTOMER_TOPIC: 0.10,
    SHEET_TOPIC: 0.05,
}
"""The share of each upstream topic in the stream (the soak the issue describes)."""

STATEMENTS_PER_CUSTOMER = round(MIX[ACTIVITY_TOPIC] / MIX[CUSTOMER_TOPIC])
MAX_LINES = 30
"""The simulator's default sheet size limit (sheets average some seven lines)."""

Message = tuple[bytes, bytes]


def mixed_config(total: int, seed: int = 16) -> ScenarioConfig:
    """A scenario of about `total` events in the proportions of MIX."""
    sizes = np.arange(1, MAX_LINES + 1)
    weights = np.exp(-sizes / 7.0)
    lines_per_sheet = float((sizes * weights).sum() / weights.sum())
    sheets = max(round(total * MIX[SHEET_TOPIC]), 1)
    labels = total * MIX[LABEL_TOPIC]
    return ScenarioConfig(
        seed=seed,
        id_prefix=f"m{seed}",
        customers=CustomerConfig(
            customers=max(round(total * MIX[CUSTOMER_TOPIC]), 1),
            statements_per_customer=STATEMENTS_PER_CUSTOMER,
        ),
        expenses=ExpenseConfig(
            sheets=sheets,
            max_lines=MAX_LINES,
            employees=max(sheets // 50, 40),
            label_fraction=min(labels / (sheets * lines_per_sheet), 1.0),
        ),
    )


def _moments(us: np.ndarray) -> list[str]:
    """RFC 3339 UTC strings of microsecond timestamps."""
    text = np.datetime_as_string(np.asarray(us, dtype="datetime64[us]"), unit="us")
    return [f"{t}Z" for t in text.tolist()]


def _days(days: np.ndarray) -> list[str]:
    return np.datetime_as_string(np.asarray(days, dtype="datetime64[D]"), unit="D").tolist()


def _money(cents: np.ndarray) -> list[str]:
    """Cents as decimal strings with two places ("-12.05")."""
    flat = np.asarray(cents, dtype=np.int64)
    signs = np.where(flat < 0, "-", "")
    absolute = np.abs(flat)
    return [
        f"{s}{whole}.{part:02d}"
        for s, whole, part in zip(
            signs.tolist(), (absolute // 100).tolist(), (absolute % 100).tolist(), strict=True
        )
    ]


def _quoted(values: list[str]) -> list[str]:
    return [json.dumps(v) for v in values]


@dataclass(frozen=True)
class EncodedWorld:
    """Every message of a world by topic (default name), each topic in time order."""

    messages: dict[str, list[Message]]

    @property
    def counts(self) -> dict[str, int]:
        return {topic: len(items) for topic, items in self.messages.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def encode_world(world: World) -> EncodedWorld:
    """Format every record of `world` as the message the simulator would publish for it."""
    return EncodedWorld(
        {
            CUSTOMER_TOPIC: list(_customers(world)),
            ACTIVITY_TOPIC: list(_statements(world)),
            SHEET_TOPIC: list(_sheets(world)),
            LABEL_TOPIC: list(_labels(world)),
        }
    )


def _order(world: World, kind: RecordKind) -> tuple[list[int], list[int], list[int]]:
    """Rows, months and times of one kind of record, in the timeline's order."""
    timeline = world.timeline
    chosen = timeline.kind == kind.value
    return (
        timeline.row[chosen].tolist(),
        timeline.month[chosen].tolist(),
        timeline.at_us[chosen].tolist(),
    )


def _customers(world: World) -> Iterator[Message]:
    c = world.customers
    rows, _, _ = _order(world, RecordKind.CUSTOMER)
    created = _moments(c.created_us)
    income, limit = _money(c.income_cents), _money(c.limit_cents)
    age, tenure = c.age.tolist(), c.tenure_months.tolist()
    region, product, employment = c.region.tolist(), c.product.tolist(), c.employment.tolist()
    for i in rows:
        customer_id = c.ids[i]
        yield (
            customer_id.encode(),
            (
                f'{{"event_id":"{event_id_for(CUSTOMER_TOPIC, customer_id)}",'
                f'"occurred_at":"{created[i]}","schema_version":1,'
                f'"customer_id":{json.dumps(customer_id)},"created_at":"{created[i]}",'
                f'"profile":{{"age":{age[i]},"annual_income":"{income[i]}",'
                f'"credit_limit":"{limit[i]}","region":"{catalog.REGIONS[region[i]]}",'
                f'"product":"{catalog.PRODUCTS[product[i]]}","tenure_months":{tenure[i]},'
                f'"employment_status":"{catalog.EMPLOYMENT[employment[i]]}"}}}}'
            ).encode(),
        )


def _statements(world: World) -> Iterator[Message]:
    c = world.customers
    rows, months, times = _order(world, RecordKind.STATEMENT)
    width = c.months
    issued = _moments(np.asarray(times, dtype=np.int64))
    dates = _days(c.statement_us.ravel() // 86_400_000_000)
    balance, payment = _money(c.balance_cents.ravel()), _money(c.payment_cents.ravel())
    minimum, purchase = _money(c.minimum_cents.ravel()), _money(c.purchase_cents.ravel())
    cash, limit = _money(c.cash_cents.ravel()), _money(c.limit_cents)
    past_due = c.days_past_due.ravel().tolist()
    for n, (i, month) in enumerate(zip(rows, months, strict=True)):
        at = i * width + month
        customer_id, statement_id = c.ids[i], c.statement_ids[i][month]
        yield (
            customer_id.encode(),
            (
                f'{{"event_id":"{event_id_for(ACTIVITY_TOPIC, statement_id)}",'
                f'"occurred_at":"{issued[n]}","schema_version":1,'
                f'"statement_id":{json.dumps(statement_id)},'
                f'"customer_id":{json.dumps(customer_id)},"statement_date":"{dates[at]}",'
                f'"balance":"{balance[at]}","credit_limit":"{limit[i]}",'
                f'"payment_amount":"{payment[at]}","minimum_due":"{minimum[at]}",'
                f'"purchase_amount":"{purchase[at]}","cash_advance_amount":"{cash[at]}",'
                f'"days_past_due":{past_due[at]}}}'
            ).encode(),
        )


def _sheets(world: World) -> Iterator[Message]:
    e = world.expenses
    rows, _, _ = _order(world, RecordKind.SHEET)
    submitted = _moments(e.sheet_submitted_us)
    amounts, dates = _money(e.amount_cents), _days(e.expense_day)
    descriptions = _quoted(e.description)
    merchants = _quoted(e.merchants)
    receipts = ["null" if r is None else json.dumps(r) for r in e.receipt_ref]
    currency, category, merchant = e.currency.tolist(), e.category.tolist(), e.merchant.tolist()
    starts = e.sheet_line_start.tolist()
    for i in rows:
        sheet_id = e.sheet_ids[i]
        lines = ",".join(
            f'{{"expense_id":{json.dumps(e.expense_ids[j])},"amount":"{amounts[j]}",'
            f'"currency":"{catalog.CURRENCIES[currency[j]]}",'
            f'"category":"{catalog.CATEGORIES[category[j]].name}",'
            f'"merchant":{merchants[merchant[j]]},"expense_date":"{dates[j]}",'
            f'"description":{descriptions[j]},"receipt_ref":{receipts[j]}}}'
            for j in range(starts[i], starts[i + 1])
        )
        yield (
            sheet_id.encode(),
            (
                f'{{"event_id":"{event_id_for(SHEET_TOPIC, sheet_id)}",'
                f'"occurred_at":"{submitted[i]}","schema_version":2,'
                f'"sheet_id":{json.dumps(sheet_id)},'
                f'"employee_id":{json.dumps(e.employees.ids[int(e.sheet_employee[i])])},'
                f'"submitted_at":"{submitted[i]}","lines":[{lines}]}}'
            ).encode(),
        )


def _labels(world: World) -> Iterator[Message]:
    e = world.expenses
    rows, _, _ = _order(world, RecordKind.LABEL)
    labelled = _moments(e.label_us)
    line_of, fraud = e.label_line.tolist(), e.label_is_fraud.tolist()
    sheet_of = e.line_sheet.tolist()
    for i in rows:
        expense_id = e.expense_ids[line_of[i]]
        yield (
            expense_id.encode(),
            (
                f'{{"event_id":"{event_id_for(LABEL_TOPIC, expense_id)}",'
                f'"occurred_at":"{labelled[i]}","schema_version":1,'
                f'"expense_id":{json.dumps(expense_id)},'
                f'"sheet_id":{json.dumps(e.sheet_ids[sheet_of[line_of[i]]])},'
                f'"is_fraud":{"true" if fraud[i] else "false"},'
                f'"labelled_at":"{labelled[i]}","source":"auditor"}}'
            ).encode(),
        )


def mixed_world(total: int, seed: int = 16) -> World:
    return simulate(mixed_config(total, seed))


def produce(bootstrap: str, topics: Mapping[str, str], encoded: EncodedWorld) -> float:
    """Produce every message (topic default name -> real name in `topics`); returns seconds.

    Keys are customer, sheet and expense ids, partitioned by librdkafka's default (a customer's
    statements all land on one partition). Returns once the broker acknowledged every message.
    """
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "message.timeout.ms": 120_000,
        }
    )
    began = time.perf_counter()
    for logical, items in encoded.messages.items():
        topic = topics[logical]
        for key, value in items:
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=delivered)
                    break
                except BufferError:
                    producer.poll(0.1)
            producer.poll(0)
    left = producer.flush(180)
    if left or failures:
        raise RuntimeError(f"{left} messages not delivered; failures: {failures[:3]}")
    return time.perf_counter() - began
