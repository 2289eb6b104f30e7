"""Malformed messages are rejected with the expected reason and field path (1,280 of them).

Each example takes a valid event, applies one mutation of a given kind, and checks the codec's
verdict. Which fields a mutation can touch is read from the exported JSON Schema, so new fields
are covered without editing this file.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import (
    EVENT_TYPES,
    TOPICS,
    CustomerActivityRecorded,
    CustomerCreated,
    DecodeError,
    Event,
    ExpenseSheetSubmitted,
    RejectReason,
)
from schemas.currencies import ISO_4217_CODES
from schemas.jsonschema import topic_schema
from schemas.limits import (
    EARLIEST_DATE,
    EARLIEST_INSTANT,
    LATEST_DATE,
    LATEST_INSTANT,
    MAX_AMOUNT_DECIMAL_PLACES,
    MAX_AMOUNT_INTEGER_DIGITS,
)
from tests.unit.schemas.strategies import (
    EVENTS,
    NOW,
    as_v1_payload,
    json_values,
    make_codec,
    single_currency_sheets,
)

CODEC = make_codec()
LATEST = NOW + CODEC.limits.max_future
SCHEMAS = {event_type: topic_schema(TOPICS[event_type.TOPIC]) for event_type in EVENT_TYPES}
FUTURE_CHECKED = {
    "occurred_at",
    "submitted_at",
    "expense_date",
    "created_at",
    "statement_date",
    "labelled_at",
}
WITH_MONEY = (ExpenseSheetSubmitted, CustomerCreated, CustomerActivityRecorded)
DATE_FORMATS = ("date", "date-time")
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Case:
    """A malformed message and the verdict the codec must give."""

    topic: str
    payload: bytes
    reason: RejectReason
    field: str | None


@dataclass(frozen=True)
class Slot:
    """A value inside a message: where it is, the schema it obeys, and whether it is required."""

    path: Path
    schema: Mapping[str, Any]
    required: bool

    @property
    def dotted(self) -> str:
        return ".".join(str(part) for part in self.path)


# --- reading the schema ----------------------------------------------------------------------


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: Mapping[str, Any] = root["$defs"][ref.rsplit("/", 1)[-1]]
    return resolved


def slots(event_type: type[Event], document: Mapping[str, Any]) -> list[Slot]:
    """Every field of `document`, nested objects and array items included."""
    root = SCHEMAS[event_type]
    found: list[Slot] = []

    def walk(node: Mapping[str, Any], schema: Mapping[str, Any], prefix: Path) -> None:
        required = set(schema.get("required", ()))
        for name, sub in schema["properties"].items():
            if name not in node:
                continue
            sub = _resolve(sub, root)
            found.append(Slot((*prefix, name), sub, name in required))
            value = node[name]
            if "properties" in sub and isinstance(value, dict):
                walk(value, sub, (*prefix, name))
            elif sub.get("type") == "array" and isinstance(value, list):
                items = _resolve(sub["items"], root)
                for index, item in enumerate(value):
                    walk(item, items, (*prefix, name, index))

    walk(document, root, ())
    return found


def objects(event_type: type[Event], document: Mapping[str, Any]) -> list[Path]:
    """Paths of the closed objects in `document` (the root, nested models, line items)."""
    return [()] + [
        slot.path
        for slot in slots(event_type, document)
        if "properties" in slot.schema and isinstance(get(document, slot.path), dict)
    ]


def json_types(schema: Mapping[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return set().union(*(json_types(branch) for branch in schema["anyOf"]))
    kind = schema.get("type", "string" if "enum" in schema else None)
    kinds = {kind} if isinstance(kind, str) else set(kind or ())
    if "number" in kinds:
        kinds.add("integer")
    return kinds


def main_branch(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The non-null alternative of a nullable field (the schema itself otherwise)."""
    branches: list[Mapping[str, Any]] = schema.get("anyOf", [])
    return next((branch for branch in branches if branch.get("type") != "null"), schema)


def is_money(schema: Mapping[str, Any]) -> bool:
    branches = schema.get("anyOf", ())
    return {branch.get("type") for branch in branches} == {"number", "string"}


def money_bound(schema: Mapping[str, Any], bound: str) -> Any:
    return next(b.get(bound) for b in schema["anyOf"] if b.get("type") == "number")


# --- editing documents -----------------------------------------------------------------------


def get(document: Any, path: Path) -> Any:
    for part in path:
        document = document[part]
    return document


def put(document: Any, path: Path, value: Any) -> None:
    get(document, path[:-1])[path[-1]] = value


def drop(document: Any, path: Path) -> None:
    del get(document, path[:-1])[path[-1]]


_RAW = "\x01raw\x01"


def dumps(document: Any, raw: str | None = None) -> bytes:
    """JSON text of `document` in which the placeholder string _RAW becomes the text `raw`."""
    text = json.dumps(document)
    if raw is not None:
        text = text.replace(json.dumps(_RAW), raw)
    return text.encode()


# --- mutations -------------------------------------------------------------------------------

Mutation = Callable[[st.DataObject], Case]
MUTATIONS: dict[str, Mutation] = {}
REASON_OF_KIND: dict[str, RejectReason] = {}


def mutation(name: str, reason: RejectReason) -> Callable[[Mutation], Mutation]:
    def register(function: Mutation) -> Mutation:
        MUTATIONS[name] = function
        REASON_OF_KIND[name] = reason
        return function

    return register


def draw_event(
    data: st.DataObject, event_types: tuple[type[Event], ...] = EVENT_TYPES
) -> tuple[type[Event], dict[str, Any]]:
    event_type = data.draw(st.sampled_from(event_types), label="event type")
    event = data.draw(EVENTS[event_type], label="event")
    return event_type, json.loads(CODEC.encode(event))


def draw_slot(
    data: st.DataObject,
    event_types: tuple[type[Event], ...],
    accept: Callable[[Slot], bool],
) -> tuple[type[Event], dict[str, Any], Slot]:
    while True:
        event_type, document = draw_event(data, event_types)
        candidates = [slot for slot in slots(event_type, document) if accept(slot)]
        if candidates:
            return event_type, document, data.draw(st.sampled_from(candidates), label="slot")


@mutation("drop a required field", RejectReason.MISSING_FIELD)
def _drop_required(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(data, EVENT_TYPES, lambda slot: slot.required)
    drop(document, slot.path)
    return Case(event_type.TOPIC, dumps(document), RejectReason.MISSING_FIELD, slot.dotted)


_VALUES_BY_JSON_TYPE: Mapping[str, Any] = {
    "boolean": True,
    "integer": 7,
    "number": 1.5,
    "string": "zz",
    "array": [],
    "object": {},
    "null": None,
}


@mutation("wrong JSON type", RejectReason.WRONG_TYPE)
def _wrong_type(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(data, EVENT_TYPES, lambda slot: True)
    allowed = json_types(slot.schema)
    choices = [kind for kind in _VALUES_BY_JSON_TYPE if kind not in allowed]
    put(document, slot.path, _VALUES_BY_JSON_TYPE[data.draw(st.sampled_from(choices))])
    return Case(event_type.TOPIC, dumps(document), RejectReason.WRONG_TYPE, slot.dotted)


@mutation("unknown schema version", RejectReason.UNKNOWN_SCHEMA_VERSION)
def _bad_version(data: st.DataObject) -> Case:
    event_type, document = draw_event(data)
    known = event_type.known_versions()
    document["schema_version"] = data.draw(st.integers().filter(lambda v: v not in known))
    return Case(
        event_type.TOPIC, dumps(document), RejectReason.UNKNOWN_SCHEMA_VERSION, "schema_version"
    )


_NON_FINITE_RAW = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")
_NON_FINITE_TEXT = ("NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "-inf", "+Inf")


@mutation("NaN or infinite amount", RejectReason.NON_FINITE_AMOUNT)
def _non_finite(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(data, WITH_MONEY, lambda slot: is_money(slot.schema))
    if data.draw(st.booleans(), label="as a string"):
        put(document, slot.path, data.draw(st.sampled_from(_NON_FINITE_TEXT)))
        payload = dumps(document)
    else:
        put(document, slot.path, _RAW)
        payload = dumps(document, raw=data.draw(st.sampled_from(_NON_FINITE_RAW)))
    return Case(event_type.TOPIC, payload, RejectReason.NON_FINITE_AMOUNT, slot.dotted)


def _amount_as_json(data: st.DataObject, amount: Decimal) -> Any:
    form = data.draw(st.sampled_from(["string", "number"]), label="amount form")
    return format(amount, "f") if form == "string" else float(amount)


@mutation("negative amount", RejectReason.NEGATIVE_AMOUNT)
def _negative(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data,
        WITH_MONEY,
        lambda slot: is_money(slot.schema) and money_bound(slot.schema, "minimum") == 0,
    )
    amount = data.draw(st.decimals(min_value=-(10**9), max_value=Decimal("-0.01"), places=2))
    put(document, slot.path, _amount_as_json(data, amount))
    return Case(event_type.TOPIC, dumps(document), RejectReason.NEGATIVE_AMOUNT, slot.dotted)


@mutation("amount above the ceiling", RejectReason.AMOUNT_ABOVE_CEILING)
def _above_ceiling(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data,
        (ExpenseSheetSubmitted,),
        lambda slot: is_money(slot.schema) and money_bound(slot.schema, "maximum") is not None,
    )
    ceiling = CODEC.limits.max_amount
    amount = data.draw(st.decimals(min_value=ceiling + Decimal("0.01"), max_value=10**15, places=2))
    put(document, slot.path, _amount_as_json(data, amount))
    return Case(event_type.TOPIC, dumps(document), RejectReason.AMOUNT_ABOVE_CEILING, slot.dotted)


@mutation("amount out of the storable range", RejectReason.AMOUNT_OUT_OF_RANGE)
def _out_of_range(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(data, WITH_MONEY, lambda slot: is_money(slot.schema))
    non_negative = money_bound(slot.schema, "minimum") == 0
    digits = data.draw(st.integers(min_value=MAX_AMOUNT_INTEGER_DIGITS + 1, max_value=140_000))
    places = data.draw(st.integers(min_value=0, max_value=MAX_AMOUNT_DECIMAL_PLACES))
    text = data.draw(st.sampled_from("123456789")) + "0" * (digits - 1)
    if places:
        text += "." + "5" * places
    if not non_negative and data.draw(st.booleans(), label="negative"):
        text = "-" + text
    # A JSON number that large is a double (or, past 4,300 digits, refused by the parser).
    if digits <= 300 and data.draw(st.booleans(), label="as a number"):
        put(document, slot.path, _RAW)
        payload = dumps(document, raw=text)
    else:
        put(document, slot.path, text)
        payload = dumps(document)
    return Case(event_type.TOPIC, payload, RejectReason.AMOUNT_OUT_OF_RANGE, slot.dotted)


@mutation("amount with too many decimal places", RejectReason.AMOUNT_TOO_PRECISE)
def _too_precise(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(data, WITH_MONEY, lambda slot: is_money(slot.schema))
    places = data.draw(st.integers(min_value=MAX_AMOUNT_DECIMAL_PLACES + 1, max_value=20_000))
    fraction = data.draw(st.sampled_from(["0", "1", "5"])) * (places - 1) + "1"
    whole = data.draw(st.sampled_from(["0", "1", "12", "999999"]))
    if places <= 15 and data.draw(st.booleans(), label="as a number"):
        # A double keeps up to 17 significant digits: 0.0000000001 stays 1e-10.
        put(document, slot.path, _RAW)
        payload = dumps(document, raw=f"0.{'0' * (places - 1)}1")
    else:
        put(document, slot.path, f"{whole}.{fraction}")
        payload = dumps(document)
    return Case(event_type.TOPIC, payload, RejectReason.AMOUNT_TOO_PRECISE, slot.dotted)


@mutation("date or instant out of the storable range", RejectReason.DATE_OUT_OF_RANGE)
def _date_out_of_range(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data, EVENT_TYPES, lambda slot: main_branch(slot.schema).get("format") in DATE_FORMATS
    )
    if main_branch(slot.schema).get("format") == "date":
        day = data.draw(
            st.dates(max_value=EARLIEST_DATE - timedelta(days=1))
            | st.dates(min_value=LATEST_DATE + timedelta(days=1))
        )
        put(document, slot.path, day.isoformat())
    else:
        offset = data.draw(_OFFSETS)
        # Local times near the ends of Python's range that are out of it in UTC included.
        early = st.datetimes(max_value=datetime(1900, 1, 2)).filter(
            lambda moment: moment.replace(tzinfo=offset) < EARLIEST_INSTANT
        )
        late = st.datetimes(min_value=datetime(9999, 12, 30)).filter(
            lambda moment: moment.replace(tzinfo=offset) > LATEST_INSTANT
        )
        moment = data.draw(early | late)
        put(document, slot.path, moment.replace(tzinfo=offset).isoformat())
    return Case(event_type.TOPIC, dumps(document), RejectReason.DATE_OUT_OF_RANGE, slot.dotted)


_NOT_CURRENCIES = ("usd", "eur", "Eur", "EURO", "US", "", " EUR", "XXY", "BGN", "HRK", "ANG", "ZWL")


@mutation("invalid currency", RejectReason.INVALID_CURRENCY)
def _bad_currency(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data, (ExpenseSheetSubmitted,), lambda slot: slot.path[-1] == "currency"
    )
    code = data.draw(
        st.sampled_from(_NOT_CURRENCIES)
        | st.text(max_size=5).filter(lambda c: c not in ISO_4217_CODES)
    )
    put(document, slot.path, code)
    return Case(event_type.TOPIC, dumps(document), RejectReason.INVALID_CURRENCY, slot.dotted)


_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@mutation("date in the future", RejectReason.DATE_IN_FUTURE)
def _future(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data, EVENT_TYPES, lambda slot: slot.path[-1] in FUTURE_CHECKED
    )
    if slot.schema.get("format") == "date":
        day = data.draw(
            st.dates(min_value=LATEST.date() + timedelta(days=1), max_value=LATEST_DATE)
        )
        put(document, slot.path, day.isoformat())
    else:
        instant = data.draw(
            st.datetimes(
                min_value=(LATEST + timedelta(microseconds=1)).replace(tzinfo=None),
                max_value=datetime(9000, 1, 1),
                timezones=st.just(UTC),
            )
        )
        put(document, slot.path, instant.astimezone(data.draw(_OFFSETS)).isoformat())
    return Case(event_type.TOPIC, dumps(document), RejectReason.DATE_IN_FUTURE, slot.dotted)


@mutation("empty sheet", RejectReason.EMPTY_SHEET)
def _empty_sheet(data: st.DataObject) -> Case:
    if data.draw(st.booleans(), label="as v1"):
        sheet, currency = data.draw(single_currency_sheets())
        payload = as_v1_payload(sheet, currency)
        payload["items"] = []
    else:
        _, payload = draw_event(data, (ExpenseSheetSubmitted,))
        payload["lines"] = []
    return Case("expense-sheet", dumps(payload), RejectReason.EMPTY_SHEET, "lines")


@mutation("duplicate expense id", RejectReason.DUPLICATE_EXPENSE_ID)
def _duplicate(data: st.DataObject) -> Case:
    _, document = draw_event(data, (ExpenseSheetSubmitted,))
    lines = document["lines"]
    original = data.draw(st.integers(min_value=0, max_value=len(lines) - 1))
    if original < len(lines) - 1 and data.draw(st.booleans(), label="rename a later line"):
        later = data.draw(st.integers(min_value=original + 1, max_value=len(lines) - 1))
        lines[later]["expense_id"] = lines[original]["expense_id"]
    else:
        lines.append(copy.deepcopy(lines[original]))
        later = len(lines) - 1
    return Case(
        "expense-sheet",
        dumps(document),
        RejectReason.DUPLICATE_EXPENSE_ID,
        f"lines.{later}.expense_id",
    )


@mutation("over-long string", RejectReason.STRING_TOO_LONG)
def _too_long(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data, EVENT_TYPES, lambda slot: "maxLength" in main_branch(slot.schema)
    )
    limit = main_branch(slot.schema)["maxLength"]
    length = data.draw(st.integers(min_value=limit + 1, max_value=limit + 500))
    put(document, slot.path, data.draw(st.sampled_from("aé€😀")) * length)
    return Case(event_type.TOPIC, dumps(document), RejectReason.STRING_TOO_LONG, slot.dotted)


@mutation("oversized payload", RejectReason.PAYLOAD_TOO_LARGE)
def _oversized(data: st.DataObject) -> Case:
    event_type, document = draw_event(data)
    encoded = dumps(document)
    excess = data.draw(st.integers(min_value=1, max_value=4096))
    # Garbage padding: the size check must come before any parsing.
    padding = data.draw(st.sampled_from([b" ", b"\xff", b"x"]))
    payload = encoded + padding * (CODEC.limits.max_payload_bytes - len(encoded) + excess)
    return Case(event_type.TOPIC, payload, RejectReason.PAYLOAD_TOO_LARGE, None)


@mutation("not JSON", RejectReason.INVALID_JSON)
def _not_json(data: st.DataObject) -> Case:
    event_type, document = draw_event(data)
    encoded = dumps(document)
    damage = data.draw(st.sampled_from(["truncate", "invalid utf-8", "trailing", "leading"]))
    if damage == "truncate":
        payload = encoded[: data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))]
    elif damage == "invalid utf-8":
        at = data.draw(st.integers(min_value=0, max_value=len(encoded)))
        payload = (
            encoded[:at]
            + data.draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80"]))
            + encoded[at:]
        )
    elif damage == "trailing":
        payload = encoded + data.draw(st.sampled_from([b"x", b"}", b",", b"{}"]))
    else:
        payload = (
            data.draw(st.sampled_from([b"'", b"{'a': 1}", b"\xef\xbb\xbf", b"<xml/>"])) + encoded
        )
    return Case(event_type.TOPIC, payload, RejectReason.INVALID_JSON, None)


@mutation("unknown field", RejectReason.UNKNOWN_FIELD)
def _unknown_field(data: st.DataObject) -> Case:
    event_type, document = draw_event(data)
    where = data.draw(st.sampled_from(objects(event_type, document)), label="object")
    target = get(document, where)
    name = data.draw(
        st.from_regex(r"x_[a-z]{1,8}", fullmatch=True).filter(lambda n: n not in target)
    )
    target[name] = data.draw(json_values)
    field = ".".join(str(part) for part in (*where, name))
    return Case(event_type.TOPIC, dumps(document), RejectReason.UNKNOWN_FIELD, field)


@mutation("not an object", RejectReason.NOT_AN_OBJECT)
def _not_an_object(data: st.DataObject) -> Case:
    event_type, document = draw_event(data)
    shape = data.draw(st.sampled_from(["array", "string", "scalar"]))
    if shape == "array":
        value: Any = [document]
    elif shape == "string":
        value = json.dumps(document)
    else:
        value = data.draw(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False))
    return Case(event_type.TOPIC, dumps(value), RejectReason.NOT_AN_OBJECT, None)


def invalid_values(slot: Slot) -> list[tuple[Any, Path]]:
    """Values of the right JSON type that the field must refuse (and where the error points)."""
    schema = main_branch(slot.schema)
    if slot.path[-1] == "currency" or is_money(slot.schema) or "const" in schema:
        return []
    kind, fmt = schema.get("type"), schema.get("format")
    if fmt == "uuid":
        return [("not-a-uuid", ()), ("1234", ())]
    if fmt == "date-time":
        return [("2024-01-01T00:00:00", ()), ("2024-13-01T00:00:00Z", ()), ("yesterday", ())]
    if fmt == "date":
        return [("2024-02-30", ()), ("01/02/2024", ()), ("2024-01-01T00:00:00Z", ())]
    if "enum" in schema:
        return [("not-a-member", ())]
    if "pattern" in schema and "maxLength" not in schema:
        return [("not valid!", ())]
    if kind in ("integer", "number"):
        step = 1 if kind == "integer" else 0.5
        values: list[tuple[Any, Path]] = []
        if "minimum" in schema:
            values.append((schema["minimum"] - step, ()))
        if "maximum" in schema:
            values.append((schema["maximum"] + step, ()))
        if kind == "number":
            values += [(math.nan, ()), (math.inf, ())]
        return values
    if kind == "string":
        values = [("nul\x00inside", ())] if "maxLength" in schema else []
        if schema.get("minLength") == 1:
            values.append(("", ()))
        return values
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return [({"metric": math.nan}, ("metric",))]
    return []


@mutation("invalid value of the right type", RejectReason.INVALID_VALUE)
def _invalid_value(data: st.DataObject) -> Case:
    event_type, document, slot = draw_slot(
        data, EVENT_TYPES, lambda slot: bool(invalid_values(slot))
    )
    value, suffix = data.draw(st.sampled_from(invalid_values(slot)))
    put(document, slot.path, value)
    field = ".".join(str(part) for part in (*slot.path, *suffix))
    return Case(event_type.TOPIC, dumps(document), RejectReason.INVALID_VALUE, field)


# --- the tests -------------------------------------------------------------------------------

EXAMPLES_PER_KIND = 80


def test_the_mutations_cover_every_reason_and_a_thousand_messages() -> None:
    assert set(REASON_OF_KIND.values()) == set(RejectReason)
    assert len(MUTATIONS) * EXAMPLES_PER_KIND >= 1000


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@settings(
    max_examples=EXAMPLES_PER_KIND,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_malformed_message_is_rejected_with_the_expected_reason(
    kind: str, data: st.DataObject
) -> None:
    case = MUTATIONS[kind](data)
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(case.topic, case.payload)
    error = caught.value
    assert case.reason is REASON_OF_KIND[kind]
    assert (error.reason, error.field) == (case.reason, case.field), error.detail
