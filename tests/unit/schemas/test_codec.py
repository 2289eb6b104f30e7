"""The codec's edges: limits, clock, time and money handling, errors, and events built in Python."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from schemas import (
    Codec,
    CodecLimits,
    CustomerActivityRecorded,
    DeadLettered,
    DecodeError,
    ExpenseLine,
    ExpenseScored,
    ExpenseSheetSubmitted,
    ModelFamily,
    RejectReason,
    RetrainReason,
    RetrainRequested,
    SchemaError,
    UnknownTopicError,
)
from tests.unit.schemas.strategies import NOW, make_codec

CODEC = make_codec()


def line(**changes: Any) -> dict[str, Any]:
    return {
        "expense_id": "x-1",
        "amount": "12.50",
        "currency": "EUR",
        "category": "meals",
        "merchant": "Cafe",
        "expense_date": "2025-05-29",
        "description": "lunch",
        "receipt_ref": None,
    } | changes


def sheet(lines: list[dict[str, Any]] | None = None, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 2,
        "sheet_id": "s-1",
        "employee_id": "e-1",
        "submitted_at": "2025-05-30T09:15:00Z",
        "lines": [line()] if lines is None else lines,
    } | changes


def activity(**changes: Any) -> dict[str, Any]:
    return {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 1,
        "statement_id": "st-1",
        "customer_id": "c-1",
        "statement_date": "2025-05-30",
        "balance": "-20.00",
        "credit_limit": 5000,
        "payment_amount": 100.25,
        "minimum_due": "25",
        "purchase_amount": 0,
        "cash_advance_amount": 0,
        "days_past_due": 0,
    } | changes


def encoded(document: Any) -> bytes:
    return json.dumps(document).encode()


def rejection(topic: str, document: Any, codec: Codec = CODEC) -> tuple[RejectReason, str | None]:
    data = document if isinstance(document, bytes) else encoded(document)
    with pytest.raises(DecodeError) as caught:
        codec.decode(topic, data)
    return caught.value.reason, caught.value.field


# --- topics ----------------------------------------------------------------------------------


def test_an_unknown_topic_is_a_wiring_error_not_a_rejection() -> None:
    with pytest.raises(UnknownTopicError) as caught:
        CODEC.decode("no-such-topic", b"{}")
    assert isinstance(caught.value, SchemaError)
    assert not isinstance(caught.value, DecodeError)


def test_topic_names_are_configurable() -> None:
    codec = Codec(clock=lambda: NOW, topics={"acme.expenses.v2": ExpenseSheetSubmitted})
    event = codec.decode("acme.expenses.v2", encoded(sheet()))
    assert isinstance(event, ExpenseSheetSubmitted)
    with pytest.raises(UnknownTopicError):
        codec.decode("expense-sheet", encoded(sheet()))


def test_decode_as_returns_the_requested_type() -> None:
    event: ExpenseSheetSubmitted = CODEC.decode_as(ExpenseSheetSubmitted, encoded(sheet()))
    assert event.lines[0].amount == Decimal("12.50")


# --- limits ----------------------------------------------------------------------------------


def test_the_payload_limit_is_checked_before_parsing_and_is_inclusive() -> None:
    document = encoded(sheet())
    codec = Codec(limits=CodecLimits(max_payload_bytes=len(document)), clock=lambda: NOW)
    assert codec.decode_as(ExpenseSheetSubmitted, document).sheet_id == "s-1"
    assert rejection("expense-sheet", document + b" ", codec) == (
        RejectReason.PAYLOAD_TOO_LARGE,
        None,
    )
    assert rejection("expense-sheet", b"\xff" * (len(document) + 1), codec)[0] is (
        RejectReason.PAYLOAD_TOO_LARGE
    )


def test_the_amount_ceiling_and_string_limit_follow_the_codec_limits() -> None:
    codec = Codec(
        limits=CodecLimits(max_amount=Decimal(100), max_string_length=5), clock=lambda: NOW
    )
    assert codec.limits.max_amount == Decimal(100)
    assert (
        codec.decode_as(ExpenseSheetSubmitted, encoded(sheet([line(amount="100")]))).lines[0].amount
        == 100
    )
    assert rejection("expense-sheet", sheet([line(amount="100.01")]), codec) == (
        RejectReason.AMOUNT_ABOVE_CEILING,
        "lines.0.amount",
    )
    assert rejection("expense-sheet", sheet([line(merchant="Bistro")]), codec) == (
        RejectReason.STRING_TOO_LONG,
        "lines.0.merchant",
    )
    # Only expense amounts have a ceiling; a customer's limit can exceed it.
    assert (
        codec.decode_as(
            CustomerActivityRecorded, encoded(activity(credit_limit="250"))
        ).credit_limit
        == 250
    )
    # A roomier codec accepts what the default one refuses.
    roomy = Codec(
        limits=CodecLimits(max_amount=Decimal(10**9), max_string_length=5000), clock=lambda: NOW
    )
    big = sheet([line(amount="5000000", description="d" * 4000)])
    assert roomy.decode_as(ExpenseSheetSubmitted, encoded(big)).lines[0].amount == 5_000_000
    assert rejection("expense-sheet", big)[0] is RejectReason.AMOUNT_ABOVE_CEILING


@pytest.mark.parametrize(
    "changes",
    [
        {"max_payload_bytes": 0},
        {"max_amount": Decimal("NaN")},
        {"max_amount": -1},
        {"max_string_length": 0},
        {"max_future": timedelta(seconds=-1)},
    ],
)
def test_nonsensical_limits_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="max_"):
        CodecLimits(**changes)


def test_a_sheet_holds_at_most_500_lines() -> None:
    lines = [line(expense_id=f"x-{i}") for i in range(500)]
    assert len(CODEC.decode_as(ExpenseSheetSubmitted, encoded(sheet(lines))).lines) == 500
    lines.append(line(expense_id="x-500"))
    assert rejection("expense-sheet", sheet(lines)) == (RejectReason.INVALID_VALUE, "lines")


# --- time ------------------------------------------------------------------------------------


def test_the_clock_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Codec(clock=lambda: datetime(2025, 1, 1))


def test_future_checks_use_the_clock_at_each_decode() -> None:
    now = [NOW]
    codec = Codec(clock=lambda: now[0])
    latest = NOW + codec.limits.max_future
    at_limit = sheet(occurred_at=latest.isoformat(), submitted_at=latest.isoformat())
    assert codec.decode("expense-sheet", encoded(at_limit)).occurred_at == latest
    beyond = (latest + timedelta(microseconds=1)).isoformat()
    assert rejection("expense-sheet", sheet(submitted_at=beyond), codec) == (
        RejectReason.DATE_IN_FUTURE,
        "submitted_at",
    )
    day_after = (latest.date() + timedelta(days=1)).isoformat()
    assert rejection("expense-sheet", sheet([line(expense_date=day_after)]), codec) == (
        RejectReason.DATE_IN_FUTURE,
        "lines.0.expense_date",
    )
    assert codec.decode(
        "expense-sheet", encoded(sheet([line(expense_date=latest.date().isoformat())]))
    )
    now[0] = NOW + timedelta(days=1)
    assert codec.decode_as(ExpenseSheetSubmitted, encoded(sheet(submitted_at=beyond))).submitted_at


def test_fields_about_the_future_are_not_checked() -> None:
    """Cut-offs and scoring times are ours, not upstream's; only observed facts are bounded."""
    far = "2100-01-01T00:00:00Z"
    scored = {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 1,
        "expense_id": "x",
        "sheet_id": "s",
        "is_flagged": False,
        "scored_at": far,
    }
    event = CODEC.decode("expense-scored", encoded(scored))
    assert isinstance(event, ExpenseScored)
    assert event.scored_at.year == 2100


def test_instants_are_normalised_to_utc() -> None:
    event = CODEC.decode_as(
        ExpenseSheetSubmitted, encoded(sheet(occurred_at="2025-05-30T11:15:00.25+02:00"))
    )
    assert event.occurred_at == datetime(2025, 5, 30, 9, 15, 0, 250000, tzinfo=UTC)
    assert event.occurred_at.tzinfo is UTC
    assert json.loads(CODEC.encode(event))["occurred_at"] == "2025-05-30T09:15:00.250000Z"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2025-05-30T09:15:00", RejectReason.INVALID_VALUE),
        ("2025-05-30", RejectReason.INVALID_VALUE),
        ("30/05/2025 09:15", RejectReason.INVALID_VALUE),
        (1748596500, RejectReason.WRONG_TYPE),
        (None, RejectReason.WRONG_TYPE),
    ],
)
def test_instants_need_an_rfc_3339_string_with_an_offset(value: Any, reason: RejectReason) -> None:
    assert rejection("expense-sheet", sheet(occurred_at=value)) == (reason, "occurred_at")


# --- money and numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12.5, Decimal("12.5")),
        (0.1, Decimal("0.1")),
        (12, Decimal(12)),
        ("12.50", Decimal("12.50")),
        ("0.000001", Decimal("0.000001")),
        ("-0", Decimal(0)),
        (1000.0, Decimal("1000.0")),
        ("999999999999999999.123456789", Decimal("999999999999999999.123456789")),
    ],
)
def test_money_comes_as_a_json_number_or_a_decimal_string(value: Any, expected: Decimal) -> None:
    event = CODEC.decode_as(CustomerActivityRecorded, encoded(activity(balance=value)))
    assert event.balance == expected
    assert str(event.balance) == str(expected)


def test_money_is_encoded_as_an_exact_fixed_point_string() -> None:
    # A JSON number may use an exponent; the encoding never does.
    data = encoded(activity(balance="@", credit_limit="1500.10")).replace(b'"@"', b"1e3")
    event = CODEC.decode_as(CustomerActivityRecorded, data)
    document = json.loads(CODEC.encode(event))
    assert (document["balance"], document["credit_limit"]) == ("1000.0", "1500.10")
    scientific = event.model_copy(update={"balance": Decimal("-1E+3")})
    assert json.loads(CODEC.encode(scientific))["balance"] == "-1000"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1_000", RejectReason.WRONG_TYPE),
        (" 12", RejectReason.WRONG_TYPE),
        ("1e3", RejectReason.WRONG_TYPE),
        ("+1", RejectReason.WRONG_TYPE),
        ("", RejectReason.WRONG_TYPE),
        ("twelve", RejectReason.WRONG_TYPE),
        (True, RejectReason.WRONG_TYPE),
        (None, RejectReason.WRONG_TYPE),
        ([], RejectReason.WRONG_TYPE),
        ("NaN", RejectReason.NON_FINITE_AMOUNT),
        ("-Infinity", RejectReason.NON_FINITE_AMOUNT),
        ("-0.01", RejectReason.NEGATIVE_AMOUNT),
        (-3, RejectReason.NEGATIVE_AMOUNT),
    ],
)
def test_money_refuses_anything_else(value: Any, reason: RejectReason) -> None:
    assert rejection("customer-activity", activity(credit_limit=value)) == (reason, "credit_limit")


@pytest.mark.parametrize("value", [True, "3", 3.0, 3.5, None])
def test_integers_are_json_integers_and_nothing_else(value: Any) -> None:
    assert rejection("customer-activity", activity(days_past_due=value)) == (
        RejectReason.WRONG_TYPE,
        "days_past_due",
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("anomaly_score", "0.5", RejectReason.WRONG_TYPE),
        ("anomaly_score", True, RejectReason.WRONG_TYPE),
        ("fraud_probability", 1.01, RejectReason.INVALID_VALUE),
        ("is_flagged", 1, RejectReason.WRONG_TYPE),
        ("is_flagged", "true", RejectReason.WRONG_TYPE),
    ],
)
def test_floats_and_booleans_are_strict(field: str, value: Any, reason: RejectReason) -> None:
    scored = {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 1,
        "expense_id": "x",
        "sheet_id": "s",
        "is_flagged": False,
        "scored_at": "2025-05-30T09:15:00Z",
    }
    assert rejection("expense-scored", scored | {field: value}) == (reason, field)


def test_text_may_not_contain_nul() -> None:
    assert rejection("expense-sheet", sheet([line(description="a\u0000b")])) == (
        RejectReason.INVALID_VALUE,
        "lines.0.description",
    )


def test_optional_fields_may_be_omitted_or_null() -> None:
    without = sheet([{key: value for key, value in line().items() if key != "receipt_ref"}])
    assert CODEC.decode_as(ExpenseSheetSubmitted, encoded(without)).lines[0].receipt_ref is None


# --- errors ----------------------------------------------------------------------------------


def test_decode_error_carries_reason_detail_and_field() -> None:
    error = DecodeError(
        RejectReason.NEGATIVE_AMOUNT, "Amount must not be negative", "lines.3.amount"
    )
    assert (error.reason, error.detail, error.field) == (
        RejectReason.NEGATIVE_AMOUNT,
        "Amount must not be negative",
        "lines.3.amount",
    )
    assert str(error) == "negative_amount at lines.3.amount: Amount must not be negative"
    assert str(DecodeError(RejectReason.INVALID_JSON, "EOF")) == "invalid_json: EOF"
    assert isinstance(error, SchemaError)
    assert RejectReason("date_in_future") is RejectReason.DATE_IN_FUTURE


# --- events built in Python ------------------------------------------------------------------


def _python_line(**changes: Any) -> ExpenseLine:
    fields: dict[str, Any] = {
        "expense_id": "x-1",
        "amount": Decimal("12.50"),
        "currency": "EUR",
        "category": "meals",
        "merchant": "Cafe",
        "expense_date": date(2025, 5, 29),
        "description": "",
    }
    return ExpenseLine(**(fields | changes))


def test_python_construction_defaults_the_envelope() -> None:
    first = RetrainRequested(
        occurred_at=NOW,
        request_id=UUID(int=1),
        family=ModelFamily.DELINQUENCY,
        reason=RetrainReason.NEW_CUSTOMERS,
        reason_text="New customers: 75",
        counters={"new_customers": 75},
        data_cutoff=NOW,
        force=False,
        requested_by="policy",
    )
    second = first.model_copy(update={"event_id": UUID(int=2)})
    assert first.schema_version == 1
    assert isinstance(first.event_id, UUID)
    assert CODEC.key_of(first) == b"delinquency"
    assert CODEC.decode("retrain-requested", CODEC.encode(second)) == second


def test_python_construction_applies_default_limits_but_no_clock() -> None:
    with pytest.raises(ValidationError):
        _python_line(amount=Decimal(1_000_001))
    with pytest.raises(ValidationError):
        _python_line(description="d" * 2001)
    far_future = _python_line(expense_date=date(2999, 1, 1))
    assert far_future.expense_date.year == 2999
    # ... and the codec, which has a clock, refuses to decode it.
    event = ExpenseSheetSubmitted(
        occurred_at=NOW, sheet_id="s", employee_id="e", submitted_at=NOW, lines=(far_future,)
    )
    assert rejection("expense-sheet", CODEC.encode(event))[0] is RejectReason.DATE_IN_FUTURE


def test_events_are_frozen_and_hashable() -> None:
    event = ExpenseSheetSubmitted(
        occurred_at=NOW, sheet_id="s", employee_id="e", submitted_at=NOW, lines=(_python_line(),)
    )
    with pytest.raises(ValidationError):
        event.sheet_id = "other"
    assert hash(event) == hash(CODEC.decode("expense-sheet", CODEC.encode(event)))


def test_python_construction_is_strict_about_types() -> None:
    with pytest.raises(ValidationError):
        _python_line(currency="usd")
    with pytest.raises(ValidationError):
        ExpenseSheetSubmitted(
            occurred_at=datetime(2025, 1, 1),  # naive on purpose
            sheet_id="s",
            employee_id="e",
            submitted_at=NOW,
            lines=(_python_line(),),
        )


def test_dead_letters_are_keyed_by_the_original_key() -> None:
    letter = DeadLettered(
        occurred_at=NOW,
        source_topic="expense-sheet",
        partition=3,
        offset=42,
        key_b64="c2hlZXQtMQ==",
        value_b64="e30=",
        stage="decode",
        reason="invalid_json",
        error="EOF",
        failed_at=NOW,
    )
    assert CODEC.key_of(letter) == b"sheet-1"
    assert CODEC.key_of(letter.model_copy(update={"key_b64": None})) == b""
    assert CODEC.decode("dead-letter", CODEC.encode(letter)) == letter
