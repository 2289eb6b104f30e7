"""What the codec accepts is what PostgreSQL stores: every upstream event, over the whole accepted
range of every field, is decoded, stored by the sink in one batch and read back unchanged.

"Unchanged" is checked twice: through asyncpg, and in the server's own rendering of each value
(numeric and date as text, instants as exact epoch seconds), because asyncpg reads `-infinity`
back as 0001-01-01 and so cannot see a value that the database holds as something else.
Values just past the storage limits are refused at decode with their reason, never at store.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.dead_letters import RawMessage
from edge.migrations import migrate
from schemas import (
    CustomerActivityRecorded,
    CustomerCreated,
    Event,
    ExpenseLabelled,
    ExpenseSheetSubmitted,
)
from schemas.limits import (
    AMOUNT_BOUND,
    DEFAULT_LIMITS,
    MAX_AMOUNT_DECIMAL_PLACES,
    MAX_IDENTIFIER_LENGTH,
)
from streams.services.ingest import IngestHandler
from streams.store import sink
from tests.conftest import Stack
from tests.unit.schemas.strategies import (
    ACCEPTED_UPSTREAM,
    LARGEST_AMOUNT,
    make_codec,
    spread_text,
)

CODEC = make_codec()
EXAMPLES = 120
"""Batches per event type; each holds 1 to 6 events (sheets of up to 4 lines)."""

T = TypeVar("T")

Kind = Literal["plain", "numeric", "date", "instant"]


@dataclass(frozen=True)
class Table:
    """A table the sink writes, with the kind of every column the test compares."""

    name: str
    key: str
    columns: Mapping[str, Kind]

    def select(self) -> str:
        """The typed columns, plus the server's text of numerics and dates and the exact epoch
        of instants (which tells a stored `-infinity` from 0001-01-01)."""
        parts: list[str] = []
        for column, kind in self.columns.items():
            parts.append(column)
            if kind in ("numeric", "date"):
                parts.append(f'{column}::text AS "{column}:text"')
            elif kind == "instant":
                parts.append(f'extract(epoch FROM {column})::text AS "{column}:epoch"')
        return f"SELECT {', '.join(parts)} FROM {self.name}"


SHEETS = Table(
    "sheets",
    "sheet_id",
    {
        "sheet_id": "plain",
        "employee_id": "plain",
        "submitted_at": "instant",
        "line_count": "plain",
        "event_id": "plain",
        "occurred_at": "instant",
    },
)
EXPENSES = Table(
    "expenses",
    "expense_id",
    {
        "expense_id": "plain",
        "sheet_id": "plain",
        "employee_id": "plain",
        "amount": "numeric",
        "currency": "plain",
        "category": "plain",
        "merchant": "plain",
        "expense_date": "date",
        "description": "plain",
        "receipt_ref": "plain",
        "submitted_at": "instant",
    },
)
CUSTOMERS = Table(
    "customers",
    "customer_id",
    {
        "customer_id": "plain",
        "created_at": "instant",
        "age": "plain",
        "annual_income": "numeric",
        "credit_limit": "numeric",
        "region": "plain",
        "product": "plain",
        "tenure_months": "plain",
        "employment_status": "plain",
        "event_id": "plain",
    },
)
TRAINING_STATUS = Table(
    "customer_training_status",
    "customer_id",
    {"customer_id": "plain", "included_in_training": "plain"},
)
ACTIVITY = Table(
    "customer_activity",
    "statement_id",
    {
        "statement_id": "plain",
        "customer_id": "plain",
        "statement_date": "date",
        "balance": "numeric",
        "credit_limit": "numeric",
        "payment_amount": "numeric",
        "minimum_due": "numeric",
        "purchase_amount": "numeric",
        "cash_advance_amount": "numeric",
        "days_past_due": "plain",
        "event_id": "plain",
        "occurred_at": "instant",
    },
)
LABELS = Table(
    "expense_labels",
    "event_id",
    {
        "event_id": "plain",
        "expense_id": "plain",
        "sheet_id": "plain",
        "is_fraud": "plain",
        "labelled_at": "instant",
        "source": "plain",
    },
)
TABLES = (SHEETS, EXPENSES, CUSTOMERS, TRAINING_STATUS, ACTIVITY, LABELS)

Rows = dict[str, dict[Any, dict[str, Any]]]
"""table -> primary key -> column (and rendering) -> value."""


def _rows_of(event: Event) -> list[tuple[Table, dict[str, Any]]]:
    """The rows the sink must write for `event`, as the columns' accepted values."""
    if isinstance(event, ExpenseSheetSubmitted):
        sheet = {
            "sheet_id": event.sheet_id,
            "employee_id": event.employee_id,
            "submitted_at": event.submitted_at,
            "line_count": len(event.lines),
            "event_id": event.event_id,
            "occurred_at": event.occurred_at,
        }
        lines = [
            {
                **line.model_dump(),
                "sheet_id": event.sheet_id,
                "employee_id": event.employee_id,
                "submitted_at": event.submitted_at,
            }
            for line in event.lines
        ]
        return [(SHEETS, sheet), *((EXPENSES, line) for line in lines)]
    if isinstance(event, CustomerCreated):
        customer = {
            **event.profile.model_dump(),
            "customer_id": event.customer_id,
            "created_at": event.created_at,
            "event_id": event.event_id,
        }
        status = {"customer_id": event.customer_id, "included_in_training": False}
        return [(CUSTOMERS, customer), (TRAINING_STATUS, status)]
    if isinstance(event, CustomerActivityRecorded):
        return [(ACTIVITY, event.model_dump(exclude={"schema_version"}))]
    assert isinstance(event, ExpenseLabelled)
    return [(LABELS, event.model_dump(exclude={"schema_version", "occurred_at"}))]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_seconds(instant: datetime) -> Decimal:
    return Decimal((instant - _EPOCH) // timedelta(microseconds=1)).scaleb(-6)


def expected_rows(events: Sequence[Event]) -> Rows:
    """What the tables must hold after `events` are stored, rendered as the server renders."""
    rows: Rows = {table.name: {} for table in TABLES}
    for event in events:
        for table, values in _rows_of(event):
            row: dict[str, Any] = {}
            for column, kind in table.columns.items():
                value = values[column]
                row[column] = value
                if kind == "numeric":
                    row[f"{column}:text"] = format(value, "f")
                elif kind == "date":
                    row[f"{column}:text"] = value.isoformat()
                elif kind == "instant":
                    row[f"{column}:epoch"] = _epoch_seconds(value)
            rows[table.name][values[table.key]] = row
    return rows


async def stored_rows(conn: asyncpg.Connection) -> Rows:
    """What the tables hold, typed by asyncpg and rendered by the server."""
    rows: Rows = {}
    for table in TABLES:
        found: dict[Any, dict[str, Any]] = {}
        for record in await conn.fetch(table.select()):
            row = dict(record)
            for column, kind in table.columns.items():
                if kind == "instant":
                    row[f"{column}:epoch"] = Decimal(row[f"{column}:epoch"])
                elif isinstance(row[column], uuid.UUID):  # asyncpg's own UUID subclass
                    row[column] = uuid.UUID(int=row[column].int)
            found[row[table.key]] = row
        rows[table.name] = found
    return rows


# --- the wire --------------------------------------------------------------------------------

MONEY_PATHS: Mapping[type[Event], Callable[[dict[str, Any]], list[tuple[Any, str]]]] = {
    ExpenseSheetSubmitted: lambda doc: [(line, "amount") for line in doc["lines"]],
    CustomerCreated: lambda doc: [
        (doc["profile"], "annual_income"),
        (doc["profile"], "credit_limit"),
    ],
    CustomerActivityRecorded: lambda doc: [
        (doc, name)
        for name in (
            "balance",
            "credit_limit",
            "payment_amount",
            "minimum_due",
            "purchase_amount",
            "cash_advance_amount",
        )
    ],
    ExpenseLabelled: lambda doc: [],
}


def _as_json_number(text: str) -> str | None:
    """The JSON number a producer would write for `text`, when the codec accepts its double."""
    number = float(text)
    read = Decimal(repr(number))
    exponent = read.as_tuple().exponent
    assert isinstance(exponent, int)
    if abs(read) < AMOUNT_BOUND and exponent >= -MAX_AMOUNT_DECIMAL_PLACES:
        return repr(number)
    return None


def on_the_wire(event: Event, numbers: bool) -> bytes:
    """`event` as a producer sends it: money as decimal strings, or as JSON numbers."""
    encoded = CODEC.encode(event)
    if not numbers:
        return encoded
    document = json.loads(encoded)
    literals: dict[str, str] = {}
    for holder, name in MONEY_PATHS[type(event)](document):
        literal = _as_json_number(holder[name])
        if literal is not None:
            placeholder = f"\x01{len(literals)}\x01"
            literals[json.dumps(placeholder)] = literal
            holder[name] = placeholder
    text = json.dumps(document, ensure_ascii=False)
    for placeholder, literal in literals.items():
        text = text.replace(placeholder, literal)
    return text.encode()


# --- batches ---------------------------------------------------------------------------------


def _keys(event: Event) -> list[tuple[str, Any]]:
    """The unique keys an event takes in the tables (a batch must not repeat any)."""
    keys: list[tuple[str, Any]] = [("event", event.event_id)]
    if isinstance(event, ExpenseSheetSubmitted):
        keys.append(("sheet", event.sheet_id))
        keys += [("expense", line.expense_id) for line in event.lines]
    elif isinstance(event, CustomerCreated):
        keys.append(("customer", event.customer_id))
    elif isinstance(event, CustomerActivityRecorded):
        keys.append(("statement", event.statement_id))
    return keys


@st.composite
def batches(draw: st.DrawFn, event_type: type[Event]) -> list[Event]:
    """1 to 6 events of `event_type` from its whole accepted range, no key taken twice.

    A key taken twice would be kept once (ON CONFLICT DO NOTHING): that is idempotence, tested
    elsewhere, not a change of value.
    """
    size = draw(st.integers(min_value=1, max_value=6))
    taken: set[tuple[str, Any]] = set()
    events: list[Event] = []
    for _ in range(size):
        event = draw(ACCEPTED_UPSTREAM[event_type])
        keys = _keys(event)
        if taken.isdisjoint(keys) and len(set(keys)) == len(keys):
            taken.update(keys)
            events.append(event)
    if not events:
        events.append(draw(ACCEPTED_UPSTREAM[event_type]))
    return events


# --- the database ----------------------------------------------------------------------------


@dataclass
class Database:
    """A private, migrated database and one connection, driven from synchronous tests.

    The loop is its own and never installed as the thread's current loop, so it does not touch
    the loop pytest-asyncio runs the async tests in.
    """

    loop: asyncio.AbstractEventLoop
    conn: asyncpg.Connection

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)


def _dsn_for(dsn: str, name: str) -> str:
    head, _, _ = dsn.rpartition("/")
    return f"{head}/{name}"


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def database(stack: Stack) -> Iterator[Database]:
    """Its own database, since every example empties the upstream tables."""
    name = f"retrainer_t_{stack.session_id}_stored"
    url = _dsn_for(stack.dsn, name)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_admin(stack.dsn, f'CREATE DATABASE "{name}"'))
        try:
            loop.run_until_complete(migrate(url))
            conn = loop.run_until_complete(asyncpg.connect(url, timeout=10))
            try:
                loop.run_until_complete(conn.execute("SET TIME ZONE 'UTC'; SET DateStyle TO ISO"))
                yield Database(loop, conn)
            finally:
                loop.run_until_complete(conn.close())
        finally:
            loop.run_until_complete(
                _admin(stack.dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )
    finally:
        loop.close()


# DELETE, not TRUNCATE: on tables this small it is several times faster.
_EMPTY = "; ".join(
    f"DELETE FROM {table}"
    for table in (
        "expenses",
        "sheets",
        "customer_training_status",
        "customers",
        "customer_activity",
        "expense_labels",
    )
)
_STORE: Mapping[type[Event], Callable[[asyncpg.Connection, Any], Coroutine[Any, Any, Any]]] = {
    ExpenseSheetSubmitted: sink.store_sheets,
    CustomerCreated: sink.store_customers,
    CustomerActivityRecorded: sink.store_activity,
    ExpenseLabelled: sink.store_labels,
}


@pytest.mark.parametrize("event_type", list(ACCEPTED_UPSTREAM), ids=lambda t: t.__name__)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_what_is_stored_reads_back_as_it_was_accepted(
    database: Database, event_type: type[Event], data: st.DataObject
) -> None:
    events = data.draw(batches(event_type), label="batch")
    numbers = data.draw(st.booleans(), label="money as JSON numbers")
    accepted = [CODEC.decode(event_type.TOPIC, on_the_wire(event, numbers)) for event in events]

    async def store_and_read() -> tuple[sink.Stored, Rows]:
        await database.conn.execute(_EMPTY)
        # One call for the whole batch: it must not be refused (the worker would fall back to
        # storing row by row and dead-letter a value the codec had accepted).
        stored = await _STORE[event_type](database.conn, accepted)
        return stored, await stored_rows(database.conn)

    stored, rows = database.run(store_and_read())
    assert (stored.new, stored.present) == (len(accepted), 0)
    assert rows == expected_rows(accepted)


# --- past the limits -------------------------------------------------------------------------


def _statement(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=number)),
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 1,
        "statement_id": f"st-{number}",
        "customer_id": "c-1",
        "statement_date": "2025-05-30",
        "balance": "-20.00",
        "credit_limit": "5000",
        "payment_amount": "100.25",
        "minimum_due": "25",
        "purchase_amount": "0",
        "cash_advance_amount": "0",
        "days_past_due": 0,
    } | changes


def _sheet(number: int, **line_changes: Any) -> dict[str, Any]:
    line = {
        "expense_id": f"x-{number}",
        "amount": "12.50",
        "currency": "EUR",
        "category": "meals",
        "merchant": "Cafe",
        "expense_date": "2025-05-29",
        "description": "",
        "receipt_ref": None,
    } | line_changes
    return {
        "event_id": str(uuid.UUID(int=number)),
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 2,
        "sheet_id": f"s-{number}",
        "employee_id": "e-1",
        "submitted_at": "2025-05-30T09:15:00Z",
        "lines": [line],
    }


_WIDE_ID = spread_text(7, MAX_IDENTIFIER_LENGTH, (0x10000, 0x10FFFF))
"""The longest id, in 4-byte characters that do not compress: 1 KiB in every index entry."""

# (document, the reason the codec refuses it, or None when it must be stored)
_LIMITS: Mapping[str, list[tuple[dict[str, Any], str | None]]] = {
    "customer-activity": [
        (_statement(1, balance=format(LARGEST_AMOUNT, "f")), None),
        (_statement(2, balance=format(-LARGEST_AMOUNT, "f")), None),
        (_statement(3, statement_date="1900-01-01", occurred_at="1900-01-01T00:00:00Z"), None),
        (_statement(4, statement_id=_WIDE_ID, customer_id=_WIDE_ID), None),
        (_statement(5, balance="1" + "0" * 131_072), "amount_out_of_range"),
        (_statement(6, credit_limit="1000000000000000000"), "amount_out_of_range"),
        (_statement(7, balance="0." + "1" * 16_384), "amount_too_precise"),
        (_statement(8, minimum_due="0.0000000001"), "amount_too_precise"),
        (_statement(9, statement_date="0001-01-01"), "date_out_of_range"),
        (_statement(10, occurred_at="1899-12-31T23:59:59.999999Z"), "date_out_of_range"),
        (_statement(11, occurred_at="0001-01-01T00:30:00+01:00"), "date_out_of_range"),
        (_statement(12, statement_id=_WIDE_ID + "x"), "string_too_long"),
        (_statement(13, customer_id=spread_text(9, 700, (0x10000, 0x10FFFF))), "string_too_long"),
    ],
    "expense-sheet": [
        (_sheet(1, amount=format(DEFAULT_LIMITS.max_amount, "f")), None),
        (_sheet(2, amount="0.000000001", expense_date="1900-01-01"), None),
        (_sheet(3, expense_id=_WIDE_ID), None),
        (_sheet(4, expense_date="0001-01-01"), "date_out_of_range"),
        (_sheet(5, expense_id=spread_text(3, 700, (0x10000, 0x10FFFF))), "string_too_long"),
        (_sheet(6, amount="1.0000000000"), "amount_too_precise"),
    ],
}


@pytest.fixture
async def pool(fresh_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    created = await asyncpg.create_pool(fresh_database_url, min_size=1, max_size=2, timeout=10)
    try:
        yield created
    finally:
        await created.close()


@pytest.mark.parametrize("topic", sorted(_LIMITS))
async def test_past_the_limits_is_refused_at_decode_and_the_rest_stores_as_one_batch(
    pool: asyncpg.Pool, topic: str
) -> None:
    cases = _LIMITS[topic]

    async def the_pool() -> asyncpg.Pool:
        return pool

    handler = IngestHandler(CODEC, the_pool)
    messages = [
        RawMessage(topic, 0, offset, None, json.dumps(document).encode())
        for offset, (document, _) in enumerate(cases)
    ]
    result = await handler.handle(topic, messages)
    letters = {(letter.offset, letter.stage, letter.reason) for letter in result.dead_letters}
    assert letters == {
        (offset, "decode", reason) for offset, (_, reason) in enumerate(cases) if reason is not None
    }
    good = sum(reason is None for _, reason in cases)
    assert (result.stored.new, result.stored.present) == (good, 0)


def test_the_widest_id_is_a_kilobyte_of_utf8() -> None:
    assert len(_WIDE_ID) == MAX_IDENTIFIER_LENGTH
    assert len(_WIDE_ID.encode()) == 4 * MAX_IDENTIFIER_LENGTH


def test_a_second_event_for_a_stored_sheet_adds_no_lines_in_the_same_batch(
    database: Database,
) -> None:
    """Within one batch as across batches, a sheet keeps the lines of the event that stored it."""

    def sheet(*expense_ids: str) -> ExpenseSheetSubmitted:
        document = _sheet(1)
        document["event_id"] = str(uuid.uuid4())
        line = document["lines"][0]
        document["lines"] = [line | {"expense_id": expense_id} for expense_id in expense_ids]
        return CODEC.decode_as(ExpenseSheetSubmitted, json.dumps(document).encode())

    async def lines_after(*batches: list[ExpenseSheetSubmitted]) -> list[tuple[int, list[str]]]:
        await database.conn.execute(_EMPTY)
        for batch in batches:
            await sink.store_sheets(database.conn, batch)
        records = await database.conn.fetch(
            "SELECT s.line_count, array_agg(e.expense_id ORDER BY e.expense_id) AS ids "
            "FROM sheets s JOIN expenses e USING (sheet_id) GROUP BY s.line_count"
        )
        return [(record["line_count"], list(record["ids"])) for record in records]

    first, second = sheet("x-a", "x-b"), sheet("x-c")
    assert database.run(lines_after([first], [second])) == [(2, ["x-a", "x-b"])]
    assert database.run(lines_after([first, second])) == [(2, ["x-a", "x-b"])]
