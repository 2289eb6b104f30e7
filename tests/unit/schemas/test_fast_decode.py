"""The codec's fast path (schemas.fast_decode) against the pydantic models alone, message by
message: the same event down to value types, decimal places, time zones and fields set, or the
same rejection (reason, field and detail), over valid events from the whole accepted range written
in every spelling JSON and the contracts allow, the malformed messages of test_rejections, and
garbage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas import (
    Codec,
    CodecLimits,
    CustomerActivityRecorded,
    CustomerCreated,
    DecodeError,
    Event,
    ExpenseLabelled,
    ExpenseSheetSubmitted,
)
from schemas.fast_decode import fast_decoders, wire_structs
from schemas.limits import DEFAULT_LIMITS, ValidationContext
from tests.unit.schemas.strategies import (
    ACCEPTED_UPSTREAM,
    EVENTS,
    NOW,
    as_v1_payload,
    json_values,
    pinned_clock,
    single_currency_sheets,
)
from tests.unit.schemas.test_rejections import MUTATIONS

UPSTREAM: tuple[type[Event], ...] = (
    ExpenseSheetSubmitted,
    CustomerCreated,
    CustomerActivityRecorded,
    ExpenseLabelled,
)
LIMITS = {
    "default": CodecLimits(),
    "tight": CodecLimits(max_amount=Decimal(100), max_string_length=5),
    "roomy": CodecLimits(max_amount=Decimal(10**12), max_string_length=6000),
}
FAST = {name: Codec(limits, pinned_clock) for name, limits in LIMITS.items()}
PYDANTIC = {name: Codec(limits, pinned_clock, fast_path=False) for name, limits in LIMITS.items()}


def snapshot(value: Any) -> Any:
    """Everything a consumer of `value` could tell apart, as plain comparable data."""
    if isinstance(value, BaseModel):
        return (
            type(value),
            sorted(value.model_fields_set),
            value.__pydantic_extra__,
            value.__pydantic_private__,
            [(name, snapshot(item)) for name, item in value.__dict__.items()],
        )
    if isinstance(value, tuple):
        return (tuple, [snapshot(item) for item in value])
    if isinstance(value, datetime):
        return (datetime, value.isoformat(), type(value.tzinfo), value.tzinfo)
    return (type(value), repr(value))


def outcome(codec: Codec, event_type: type[Event], data: bytes) -> Any:
    """The decoded event's snapshot, or the rejection's reason, field and detail."""
    try:
        return snapshot(codec.decode_as(event_type, data))
    except DecodeError as error:
        return ("rejected", error.reason, error.field, error.detail)


def assert_same(event_type: type[Event], data: bytes, limits: str = "default") -> Any:
    fast = outcome(FAST[limits], event_type, data)
    assert fast == outcome(PYDANTIC[limits], event_type, data), data[:2000]
    return fast


def taken_by_the_fast_path(event_type: type[Event], data: bytes, limits: str = "default") -> bool:
    decode = fast_decoders(LIMITS[limits].max_string_length)[event_type]
    return decode(data, ValidationContext(NOW, LIMITS[limits])) is not None


# --- valid events, canonical and respelled ---------------------------------------------------


@pytest.mark.parametrize("event_type", UPSTREAM, ids=lambda t: t.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_path_takes_every_canonical_message_and_builds_the_same_event(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(ACCEPTED_UPSTREAM[event_type] | EVENTS[event_type])
    encoded = FAST["roomy"].encode(event)
    assert taken_by_the_fast_path(event_type, encoded, "roomy")
    assert_same(event_type, encoded, "roomy")
    assert FAST["roomy"].decode_as(event_type, encoded) == event
    assert_same(event_type, encoded)
    assert_same(event_type, encoded, "tight")


@dataclass(frozen=True)
class Raw:
    """JSON text written as it is (a number in a spelling json.dumps does not use)."""

    text: str


@dataclass(frozen=True)
class Duplicated:
    """An object member written twice: first `first`, then the real value (the last one wins)."""

    first: Any
    value: Any


def render(node: Any, ascii_only: bool, spaced: bool) -> str:
    """JSON text of `node`, with Raw values and Duplicated members written as they say."""
    colon, comma = (" : ", " ,\n ") if spaced else (":", ",")
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, dict):
        members = []
        for key, value in node.items():
            name = json.dumps(key, ensure_ascii=ascii_only)
            if isinstance(value, Duplicated):
                members.append(name + colon + render(value.first, ascii_only, spaced))
                value = value.value
            members.append(name + colon + render(value, ascii_only, spaced))
        return "{" + comma.join(members) + "}"
    if isinstance(node, list):
        return "[" + comma.join(render(item, ascii_only, spaced) for item in node) + "]"
    return json.dumps(node, ensure_ascii=ascii_only)


_TIME_SEPARATORS = ("T", "t", " ", "_")
_UTC_SPELLINGS = ("Z", "z", "+00:00", "-00:00", "+0000", "+00")


@st.composite
def instant_spellings(draw: st.DrawFn, text: str) -> Any:
    """The instant `text` (RFC 3339, as encoded) in another offset, separator or precision."""
    moment = datetime.fromisoformat(text)
    minutes = draw(st.integers(min_value=-14 * 60, max_value=14 * 60))
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    digits = draw(st.sampled_from([0, 0, 1, 3, 6, 6, 7, 9, 12]))
    if digits == 0 and local.microsecond:
        digits = 6
    fraction = f"{local.microsecond:06d}" + "".join(
        draw(st.sampled_from("0123456789")) for _ in range(max(digits - 6, 0))
    )
    stamp = local.strftime("%Y-%m-%d") + draw(st.sampled_from(_TIME_SEPARATORS))
    stamp += local.strftime("%H:%M:%S") + ("." + fraction[:digits] if digits else "")
    if minutes == 0:
        stamp += draw(st.sampled_from(_UTC_SPELLINGS))
    else:
        sign = "+" if minutes > 0 else "-"
        hours, rest = divmod(abs(minutes), 60)
        stamp += sign + f"{hours:02d}" + draw(st.sampled_from([":", ""])) + f"{rest:02d}"
    return draw(st.sampled_from([stamp, stamp.replace("-", "\\u002d", 1)]))


@st.composite
def amount_spellings(draw: st.DrawFn, text: str) -> Any:
    """The amount `text` (a decimal string, as encoded) as a string or number, spelt otherwise."""
    amount = Decimal(text)
    kind = draw(
        st.sampled_from(
            ["as is", "number", "float", "trailing zeros", "leading zeros", "exponent", "neg"]
        )
    )
    if kind == "number":
        return Raw(text)
    if kind == "float":
        return float(amount)
    if kind == "trailing zeros":
        zeros = "0" * draw(st.integers(min_value=1, max_value=10))
        spelt = text + zeros if "." in text else text + "." + zeros
        return draw(st.sampled_from([spelt, Raw(spelt)]))
    if kind == "leading zeros":
        return "0" * draw(st.integers(min_value=1, max_value=20)) + text
    if kind == "exponent":
        return Raw(format(amount, "e"))
    if kind == "neg":
        return draw(st.sampled_from(["-" + text, Raw("-" + text), "-0", Raw("-0.0"), -0.0]))
    return text


@st.composite
def uuid_spellings(draw: st.DrawFn, text: str) -> str:
    value = uuid.UUID(text)
    return draw(
        st.sampled_from(
            [text, text.upper(), value.hex, f"urn:uuid:{text}", "{" + text + "}", text[:-1]]
        )
    )


_DATE_SPELLINGS: tuple[Callable[[str], str], ...] = (
    lambda text: text,
    lambda text: text + "T00:00:00Z",
    lambda text: text.replace("-", ""),
    lambda text: text.replace("-", "\\u002d"),
)


def respell(document: dict[str, Any], data: st.DataObject) -> Any:
    """`document` (an encoded valid event) with values, keys and numbers written otherwise."""
    # One value in `every` is respelt: few enough that many messages stay for the fast path.
    every = data.draw(st.sampled_from([2, 6, 30]), label="one value in")

    def respelt() -> bool:
        return data.draw(st.integers(min_value=1, max_value=every)) == 1

    def walk(node: Any, name: str | None) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            keys = list(node)
            if data.draw(st.booleans(), label="shuffle keys"):
                keys = data.draw(st.permutations(keys))
            for key in keys:
                value = walk(node[key], key)
                if respelt() and respelt():
                    value = Duplicated(data.draw(json_values | st.just(value)), value)
                out[key] = value
            if "receipt_ref" in out and respelt():
                del out["receipt_ref"]
            return out
        if isinstance(node, list):
            return [walk(item, None) for item in node]
        if not isinstance(node, str) or not respelt():
            return node
        if name == "event_id":
            return data.draw(uuid_spellings(node))
        if name in ("occurred_at", "submitted_at", "created_at", "labelled_at"):
            return Raw(json.dumps(data.draw(instant_spellings(node))).replace("\\\\", "\\"))
        if name in ("expense_date", "statement_date"):
            spelt = data.draw(st.sampled_from(_DATE_SPELLINGS))(node)
            return Raw('"' + spelt + '"')
        if name in ("currency",):
            return data.draw(st.sampled_from([node, node.lower(), node + " "]))
        try:
            Decimal(node)
        except ArithmeticError:
            return node
        return data.draw(amount_spellings(node))

    return walk(document, None)


@pytest.mark.parametrize("event_type", UPSTREAM, ids=lambda t: t.__name__)
# Drawing the respellings is most of the cost (tens of draws per message); 100 messages per
# event type, each respelt at one of three densities, under one of three limits.
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_respelled_messages_get_the_same_verdict(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(ACCEPTED_UPSTREAM[event_type] | EVENTS[event_type], label="event")
    document = json.loads(FAST["roomy"].encode(event))
    text = render(
        respell(document, data),
        ascii_only=data.draw(st.booleans(), label="ascii only"),
        spaced=data.draw(st.booleans(), label="spaced"),
    )
    limits = data.draw(st.sampled_from(sorted(LIMITS)), label="limits")
    assert_same(event_type, text.encode(), limits)


# --- older versions, malformed messages and garbage ------------------------------------------


@settings(max_examples=100, deadline=None)
@given(sheet_and_currency=single_currency_sheets())
def test_v1_sheets_are_upcast_as_before(
    sheet_and_currency: tuple[ExpenseSheetSubmitted, str],
) -> None:
    payload = as_v1_payload(*sheet_and_currency)
    data = json.dumps(payload).encode()
    assert not taken_by_the_fast_path(ExpenseSheetSubmitted, data)
    assert assert_same(ExpenseSheetSubmitted, data)[0] is ExpenseSheetSubmitted


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_malformed_messages_get_the_same_rejection(kind: str, data: st.DataObject) -> None:
    case = MUTATIONS[kind](data)
    event_type = {t.TOPIC: t for t in UPSTREAM}.get(case.topic)
    if event_type is None:  # a topic without a fast path: the codec is unchanged there
        return
    assert assert_same(event_type, case.payload)[0] == "rejected"


@pytest.mark.parametrize("event_type", UPSTREAM, ids=lambda t: t.__name__)
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_scrambled_messages_get_the_same_verdict(
    event_type: type[Event], data: st.DataObject
) -> None:
    document = json.loads(FAST["default"].encode(data.draw(EVENTS[event_type])))

    def scramble(node: Any) -> None:
        if isinstance(node, dict):
            for name in list(node):
                if data.draw(st.booleans()):
                    node[name] = data.draw(json_values)
                else:
                    scramble(node[name])
        elif isinstance(node, list):
            for item in node:
                scramble(item)

    scramble(document)
    assert_same(event_type, json.dumps(document).encode())


@pytest.mark.parametrize("event_type", UPSTREAM, ids=lambda t: t.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()))
def test_garbage_gets_the_same_rejection(event_type: type[Event], data: bytes) -> None:
    assert assert_same(event_type, data)[0] == "rejected"


# --- the structs follow the models -----------------------------------------------------------


def test_every_upstream_event_has_a_fast_path_with_the_models_fields() -> None:
    structs = wire_structs(DEFAULT_LIMITS.max_string_length)
    assert set(structs) == set(UPSTREAM)
    for event_type, struct in structs.items():
        assert struct.__struct_fields__ == tuple(event_type.model_fields)


LABEL = {
    "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
    "occurred_at": "2025-05-30T09:15:00Z",
    "schema_version": 1,
    "expense_id": "x-1",
    "is_fraud": True,
    "labelled_at": "2025-05-30T09:15:00Z",
    "source": "auditor",
}
ACTIVITY = {
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
}


def test_a_codec_without_the_fast_path_gives_the_same_events() -> None:
    data = json.dumps(LABEL).encode()
    assert taken_by_the_fast_path(ExpenseLabelled, data)
    fast = FAST["default"].decode_as(ExpenseLabelled, data)
    assert fast == PYDANTIC["default"].decode_as(ExpenseLabelled, data)
    assert fast.sheet_id is None
    assert fast.model_fields_set == set(ExpenseLabelled.model_fields) - {"sheet_id"}


@pytest.mark.parametrize(
    ("spelling", "taken"),
    [
        ("2025-05-30T09:15:00.123456Z", True),
        ("2025-05-30T09:15:00.123456+02:00", True),
        ("2025-05-30T09:15:00.1234567Z", False),
        ("2025-05-30T09:15:00.9999999+02:00", False),
    ],
)
def test_instants_finer_than_a_microsecond_are_left_to_pydantic(spelling: str, taken: bool) -> None:
    """msgspec would round the fraction; pydantic truncates it, and its reading stands."""
    data = json.dumps(LABEL | {"labelled_at": spelling}).encode()
    assert taken_by_the_fast_path(ExpenseLabelled, data) is taken
    assert_same(ExpenseLabelled, data)


def test_text_with_nul_is_left_to_pydantic() -> None:
    data = json.dumps(LABEL | {"source": "a\x00b"}).encode()
    assert not taken_by_the_fast_path(ExpenseLabelled, data)
    assert assert_same(ExpenseLabelled, data)[1:3] == ("invalid_value", "source")


def test_dates_are_read_alike() -> None:
    for day in (date(1900, 1, 1), date(2024, 2, 29), NOW.date()):
        data = json.dumps(ACTIVITY | {"statement_date": day.isoformat()}).encode()
        assert taken_by_the_fast_path(CustomerActivityRecorded, data)
        assert assert_same(CustomerActivityRecorded, data)[0] is CustomerActivityRecorded


@pytest.mark.parametrize(
    "spelling",
    [
        "2025-05-30T23:59:60Z",
        "2025-05-30T24:00:00Z",
        "2025-05-30T09:15:00+23:59",
        "2025-05-31T09:15:00-23:59",
        "2025-05-30T09:15:00+24:00",
        "2025-05-30T09:15:00+1400",
        "2025-05-30T09:15:00.5-00:00",
        "2025-05-30 09:15:00z",
        "2025-05-30_09:15:00Z",
        "1900-01-01T00:30:00+01:00",
        "1899-12-31T23:30:00-01:00",
        "2025-05-30T09:15:00ZZ",
        "2025-05-30T09:15:00.Z",
        "2025-05-30T9:15:00Z",
        "02025-05-30T09:15:00Z",
    ],
)
def test_instants_at_the_edges_of_rfc_3339_get_the_same_verdict(spelling: str) -> None:
    assert_same(ExpenseLabelled, json.dumps(LABEL | {"labelled_at": spelling}).encode())


@pytest.mark.parametrize(
    "number",
    [
        "1e2",
        "1E+2",
        "-0",
        "-0.0e0",
        "0.1e1",
        "1.0000000000",
        "123456789012345678",
        "5e-324",
        "100000000000000000000",
        "0.0000000001",
        "1.7976931348623157e308",
        "1" * 5000,
    ],
)
def test_amounts_written_as_json_numbers_get_the_same_verdict(number: str) -> None:
    text = json.dumps(ACTIVITY).replace('"balance": "-20.00"', f'"balance": {number}')
    assert_same(CustomerActivityRecorded, text.encode())
