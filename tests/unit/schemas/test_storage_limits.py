"""The storage limits: every amount, date, instant and id is accepted up to the end of what its
column stores exactly and refused one step past it, with a reason of its own, whether the message
is decoded or the event is built in Python. tests/integration/test_stored_equals_accepted.py
shows on the real PostgreSQL that what is accepted is stored unchanged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import (
    TOPICS,
    Codec,
    CodecLimits,
    CustomerActivityRecorded,
    DecodeError,
    Event,
    ExpenseLabelled,
    ExpenseLine,
    RejectReason,
)
from schemas.jsonschema import topic_schema
from schemas.limits import (
    AMOUNT_BOUND,
    EARLIEST_DATE,
    EARLIEST_INSTANT,
    LATEST_DATE,
    LATEST_INSTANT,
    MAX_IDENTIFIER_LENGTH,
)
from tests.unit.schemas.strategies import ACCEPTED_UPSTREAM, LARGEST_AMOUNT, NOW, make_codec

CODEC = make_codec()
LARGEST = format(LARGEST_AMOUNT, "f")
PLUS_ONE = timezone(timedelta(hours=1))


def activity(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 1,
        "statement_id": "st-1",
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


def decoded(document: dict[str, Any], codec: Codec = CODEC) -> CustomerActivityRecorded:
    return codec.decode_as(CustomerActivityRecorded, json.dumps(document).encode())


def refusal(data: bytes | dict[str, Any], codec: Codec = CODEC) -> tuple[RejectReason, str | None]:
    payload = data if isinstance(data, bytes) else json.dumps(data).encode()
    with pytest.raises(DecodeError) as caught:
        codec.decode("customer-activity", payload)
    return caught.value.reason, caught.value.field


# --- amounts ---------------------------------------------------------------------------------


def test_the_limits_are_the_documented_numbers() -> None:
    assert LARGEST == "999999999999999999.999999999"
    assert Decimal(10**18) == AMOUNT_BOUND
    assert (date(1900, 1, 1), date(9999, 12, 30)) == (EARLIEST_DATE, LATEST_DATE)
    assert datetime(1900, 1, 1, tzinfo=UTC) == EARLIEST_INSTANT
    assert datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC) == LATEST_INSTANT
    assert MAX_IDENTIFIER_LENGTH == 256


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (LARGEST, LARGEST_AMOUNT),
        ("-" + LARGEST, -LARGEST_AMOUNT),
        ("0.000000001", Decimal("0.000000001")),
        ("0.000000000", Decimal("0.000000000")),
        ("-0.000000000", Decimal(0)),
        ("0000000000000000000000012.5", Decimal("12.5")),  # leading zeros are not digits
        (999_999_999_999_999_999, Decimal(999_999_999_999_999_999)),
        (1e-09, Decimal("1E-9")),
        (123456789012345.6, Decimal("123456789012345.6")),
    ],
)
def test_amounts_up_to_the_storage_limits_are_accepted(value: Any, expected: Decimal) -> None:
    balance = decoded(activity(balance=value)).balance
    assert balance == expected
    assert str(balance) == str(expected)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("balance", "1000000000000000000", RejectReason.AMOUNT_OUT_OF_RANGE),
        ("balance", "-1000000000000000000.000000000", RejectReason.AMOUNT_OUT_OF_RANGE),
        # Stored as 0 before this limit: asyncpg's encoder wraps the digit group count around.
        ("balance", "1" + "0" * 131_072, RejectReason.AMOUNT_OUT_OF_RANGE),
        ("balance", 10**18, RejectReason.AMOUNT_OUT_OF_RANGE),
        ("balance", 1e18, RejectReason.AMOUNT_OUT_OF_RANGE),
        ("credit_limit", 1.5e300, RejectReason.AMOUNT_OUT_OF_RANGE),
        ("balance", "0.0000000001", RejectReason.AMOUNT_TOO_PRECISE),
        ("balance", "1.0000000000", RejectReason.AMOUNT_TOO_PRECISE),  # trailing zeros count
        ("balance", "0.0000000000", RejectReason.AMOUNT_TOO_PRECISE),
        # Refused by the database only, after the codec had passed it (sql_22000).
        ("balance", "0." + "1" * 16_384, RejectReason.AMOUNT_TOO_PRECISE),
        ("balance", 1e-10, RejectReason.AMOUNT_TOO_PRECISE),
        ("payment_amount", "-1000000000000000000", RejectReason.NEGATIVE_AMOUNT),
    ],
)
def test_amounts_past_the_storage_limits_are_refused(
    field: str, value: Any, reason: RejectReason
) -> None:
    assert refusal(activity(**{field: value})) == (reason, field)


def test_the_storage_limits_come_before_the_expense_ceiling() -> None:
    roomy = Codec(CodecLimits(max_amount=AMOUNT_BOUND - 1), clock=lambda: NOW)
    line = ExpenseLine(
        expense_id="x",
        amount=Decimal("12.5"),
        currency="EUR",
        category="c",
        merchant="m",
        expense_date=date(2025, 5, 30),
        description="",
    )
    for amount, reason in (
        ("1000000000000000000", RejectReason.AMOUNT_OUT_OF_RANGE),
        ("1.1234567891", RejectReason.AMOUNT_TOO_PRECISE),
        ("1000001", RejectReason.AMOUNT_ABOVE_CEILING),
    ):
        document = {
            "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
            "occurred_at": "2025-05-30T09:15:00Z",
            "schema_version": 2,
            "sheet_id": "s",
            "employee_id": "e",
            "submitted_at": "2025-05-30T09:15:00Z",
            "lines": [{**line.model_dump(mode="json"), "amount": amount}],
        }
        with pytest.raises(DecodeError) as caught:
            CODEC.decode("expense-sheet", json.dumps(document).encode())
        assert (caught.value.reason, caught.value.field) == (reason, "lines.0.amount")
        if reason is RejectReason.AMOUNT_ABOVE_CEILING:
            assert roomy.decode("expense-sheet", json.dumps(document).encode())


def test_no_setting_lifts_the_storage_limits() -> None:
    with pytest.raises(ValueError, match="max_amount"):
        CodecLimits(max_amount=AMOUNT_BOUND)
    assert CodecLimits(max_amount=AMOUNT_BOUND - 1).max_amount == AMOUNT_BOUND - 1
    # A max_future of millennia used to overflow at start-up; the latest date stays the limit.
    far = Codec(CodecLimits(max_future=timedelta(days=4_000_000)), clock=lambda: NOW)
    assert decoded(activity(statement_date="9999-12-30"), far).statement_date == LATEST_DATE
    assert refusal(activity(statement_date="9999-12-31"), far) == (
        RejectReason.DATE_OUT_OF_RANGE,
        "statement_date",
    )
    roomy = Codec(CodecLimits(max_string_length=5000), clock=lambda: NOW)
    assert refusal(activity(statement_id="s" * 257), roomy) == (
        RejectReason.STRING_TOO_LONG,
        "statement_id",
    )


# --- dates and instants ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("statement_date", "1900-01-01", date(1900, 1, 1)),
        ("occurred_at", "1900-01-01T00:00:00Z", EARLIEST_INSTANT),
        ("occurred_at", "1899-12-31T23:00:00-01:00", EARLIEST_INSTANT),
        ("occurred_at", "1900-01-01T13:59:59+13:59", datetime(1900, 1, 1, 0, 0, 59, tzinfo=UTC)),
    ],
)
def test_the_earliest_date_and_instant_are_accepted(field: str, value: str, expected: Any) -> None:
    assert getattr(decoded(activity(**{field: value})), field) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # Stored as -infinity before this limit (asyncpg's encoding of date.min).
        ("statement_date", "0001-01-01"),
        ("statement_date", "1899-12-31"),
        ("occurred_at", "0001-01-01T00:00:00Z"),
        ("occurred_at", "1899-12-31T23:59:59.999999Z"),
        ("occurred_at", "1900-01-01T00:30:00+01:00"),
        # Out of Python's range once in UTC: these used to escape as OverflowError.
        ("occurred_at", "0001-01-01T00:30:00+01:00"),
        ("occurred_at", "9999-12-31T23:30:00-01:00"),
        ("occurred_at", "9999-12-31T00:00:00Z"),
    ],
)
def test_dates_and_instants_past_the_limits_are_refused(field: str, value: str) -> None:
    assert refusal(activity(**{field: value})) == (RejectReason.DATE_OUT_OF_RANGE, field)


# --- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", ["a", "é", "€", "😀"])
def test_ids_hold_256_characters_of_any_width(character: str) -> None:
    longest = character * MAX_IDENTIFIER_LENGTH
    assert decoded(activity(statement_id=longest)).statement_id == longest
    assert refusal(activity(statement_id=longest + character)) == (
        RejectReason.STRING_TOO_LONG,
        "statement_id",
    )


def test_ids_follow_a_lower_max_string_length() -> None:
    strict = Codec(CodecLimits(max_string_length=5), clock=lambda: NOW)
    assert refusal(activity(statement_id="st-123"), strict) == (
        RejectReason.STRING_TOO_LONG,
        "statement_id",
    )


def test_nul_and_lone_surrogates_never_pass() -> None:
    valid = json.dumps(activity(customer_id="@")).encode()
    assert refusal(valid.replace(b'"@"', b'"a\\u0000"')) == (
        RejectReason.INVALID_VALUE,
        "customer_id",
    )
    for broken in (b'"\\ud800"', b'"a\\udc00b"', b'"\xed\xa0\x80"'):
        assert refusal(valid.replace(b'"@"', broken))[0] is RejectReason.INVALID_JSON
    assert decoded(json.loads(valid.replace(b'"@"', b'"\\ud83d\\ude00"'))).customer_id == "😀"


# --- events built in Python ------------------------------------------------------------------


def _error_type(build: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        build()
    return str(caught.value.errors()[0]["type"])


def test_events_built_in_python_obey_the_same_limits() -> None:
    def label(**changes: Any) -> ExpenseLabelled:
        fields: dict[str, Any] = {
            "occurred_at": NOW,
            "expense_id": "x",
            "is_fraud": True,
            "labelled_at": NOW,
            "source": "audit",
        }
        return ExpenseLabelled(**(fields | changes))

    assert _error_type(lambda: label(occurred_at=datetime(1, 1, 1, 0, 30, tzinfo=PLUS_ONE))) == (
        "date_out_of_range"
    )
    assert _error_type(lambda: label(labelled_at=datetime(9999, 12, 31, tzinfo=UTC))) == (
        "date_out_of_range"
    )
    assert _error_type(lambda: label(expense_id="x" * 257)) == "string_too_long"
    assert _error_type(lambda: label(source="a\ud800")) == "invalid_value"
    assert _error_type(lambda: label(expense_id="\udfff")) == "string_unicode"

    def line(**changes: Any) -> ExpenseLine:
        fields: dict[str, Any] = {
            "expense_id": "x",
            "amount": Decimal(1),
            "currency": "EUR",
            "category": "c",
            "merchant": "m",
            "expense_date": date(2025, 1, 1),
            "description": "",
        }
        return ExpenseLine(**(fields | changes))

    assert _error_type(lambda: line(expense_date=date(1, 1, 1))) == "date_out_of_range"
    assert _error_type(lambda: line(amount=Decimal("1E-10"))) == "amount_too_precise"
    assert _error_type(lambda: line(amount=Decimal("1E+18"))) == "amount_out_of_range"
    assert line(amount=Decimal("1E+3")).amount == 1000


# --- the whole accepted range ----------------------------------------------------------------

VALIDATORS = {
    event_type: jsonschema.Draft202012Validator(
        topic_schema(TOPICS[event_type.TOPIC]), format_checker=jsonschema.FormatChecker()
    )
    for event_type in ACCEPTED_UPSTREAM
}


@pytest.mark.parametrize("event_type", list(ACCEPTED_UPSTREAM), ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_whole_accepted_range_decodes_to_itself_and_fits_the_schema(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(ACCEPTED_UPSTREAM[event_type])
    encoded = CODEC.encode(event)
    assert CODEC.decode(event_type.TOPIC, encoded) == event
    VALIDATORS[event_type].validate(json.loads(encoded))
