"""The codec's fast path for the four upstream topics: msgspec structs check in C what the pydantic
models check, and the same pydantic events are then built without being validated again.

The fast path only ever accepts. A message it does not take outright (anything invalid, and a few
valid but unusual spellings) goes on to the pydantic models, whose verdict, the event or a
DecodeError with its reason and field, is the codec's. So the two decoders cannot disagree on a
rejection, upcasts stay where they are, and tests/unit/schemas/test_fast_decode.py holds the two
equal on what is accepted: the same values, types and fields set.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar, Union
from uuid import UUID

import msgspec
from pydantic_core import PydanticCustomError

from schemas.base import Contract, Event, calendar_date, instant_in_utc, money_amount
from schemas.currencies import ISO_4217_CODES
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_created import CustomerCreated, CustomerProfile
from schemas.expense_label import ExpenseLabelled
from schemas.expense_sheet import MAX_LINES, ExpenseLine, ExpenseSheetSubmitted
from schemas.limits import MAX_IDENTIFIER_LENGTH, ValidationContext

__all__ = ["FastDecoder", "built", "check_buildable", "fast_decoders", "wire_structs"]

ContractT = TypeVar("ContractT", bound=Contract)

FastDecoder = Callable[[bytes, ValidationContext], Event | None]
"""Decodes one message under a context: the event, or None to leave the verdict to pydantic."""


class _LeftToPydantic(Exception):
    """Raised inside the fast path for a message the pydantic models must judge."""


_REFUSED = (msgspec.DecodeError, PydanticCustomError, _LeftToPydantic)
"""What the fast path stops at (msgspec's ValidationError is a DecodeError)."""

# NUL is the one character that Text refuses and JSON can carry, and only as this escape; the
# check that refuses it is pydantic's, with its own reason and field.
_ESCAPED_NUL = b"\\u0000"

# msgspec rounds an instant's fraction beyond microseconds, pydantic truncates it. Text of
# "YYYY-MM-DDTHH:MM:SS.ffffffZ" length or less has no room for a longer fraction.
_LONG_FRACTION = re.compile(r"\.[0-9]{7}")
_ROOM_FOR_MICROSECONDS_ONLY = len("2025-01-01T00:00:00.000000Z")


def _instant(text: str, latest: datetime) -> datetime:
    if len(text) > _ROOM_FOR_MICROSECONDS_ONLY and _LONG_FRACTION.search(text) is not None:
        raise _LeftToPydantic
    value = msgspec.convert(text, datetime)
    if value.tzinfo is None:
        raise _LeftToPydantic  # pydantic names the field; no offset is its refusal
    return instant_in_utc(value, latest)


# ---------------------------------------------------------------------------------------------
# Building the pydantic events without validating them again

_set = object.__setattr__


def built(model: type[ContractT], values: dict[str, Any], fields_set: set[str]) -> ContractT:
    """What `model.model_validate` leaves behind, from values that passed the same checks.

    Also for events the project builds from values it has checked itself (the scored events):
    `model` must pass `check_buildable`, `values` hold every field in field order."""
    instance = model.__new__(model)
    _set(instance, "__dict__", values)
    _set(instance, "__pydantic_fields_set__", fields_set)
    _set(instance, "__pydantic_extra__", None)
    _set(instance, "__pydantic_private__", None)
    return instance


def check_buildable(model: type[Contract]) -> None:
    # `built` sets exactly what pydantic sets for a closed model without a post-init hook or
    # private attributes; anything else would need pydantic's own construction.
    if (
        model.model_config.get("extra") != "forbid"
        or model.__pydantic_post_init__ is not None
        or model.__private_attributes__
        or model.__pydantic_root_model__
    ):
        raise TypeError(f"{model.__name__} cannot be built by the fast path")


def _line(wire: Any, ceiling: Decimal, latest: date) -> ExpenseLine:
    receipt_ref = wire.receipt_ref
    values = {
        "expense_id": wire.expense_id,
        "amount": money_amount(wire.amount, non_negative=True, ceiling=ceiling),
        "currency": wire.currency,
        "category": wire.category,
        "merchant": wire.merchant,
        "expense_date": calendar_date(wire.expense_date, latest),
        "description": wire.description,
        "receipt_ref": receipt_ref,
    }
    if receipt_ref is msgspec.UNSET:
        values["receipt_ref"] = None
        return built(ExpenseLine, values, set(_LINE_FIELDS_WITHOUT_RECEIPT))
    return built(ExpenseLine, values, set(_LINE_FIELDS))


def _sheet(wire: Any, context: ValidationContext) -> ExpenseSheetSubmitted:
    ceiling, latest_date = context.max_amount, context.latest_date
    lines = tuple([_line(item, ceiling, latest_date) for item in wire.lines])
    if len({line.expense_id for line in wire.lines}) != len(lines):
        raise _LeftToPydantic  # duplicate_expense_id, with the line pydantic names
    values = {
        "event_id": wire.event_id,
        "occurred_at": _instant(wire.occurred_at, context.latest_datetime),
        "schema_version": ExpenseSheetSubmitted.SCHEMA_VERSION,
        "sheet_id": wire.sheet_id,
        "employee_id": wire.employee_id,
        "submitted_at": _instant(wire.submitted_at, context.latest_datetime),
        "lines": lines,
    }
    return built(ExpenseSheetSubmitted, values, set(_SHEET_FIELDS))


def _customer(wire: Any, context: ValidationContext) -> CustomerCreated:
    profile = wire.profile
    profile_values = {
        "age": profile.age,
        "annual_income": money_amount(profile.annual_income, non_negative=True, ceiling=None),
        "credit_limit": money_amount(profile.credit_limit, non_negative=True, ceiling=None),
        "region": profile.region,
        "product": profile.product,
        "tenure_months": profile.tenure_months,
        "employment_status": profile.employment_status,
    }
    values = {
        "event_id": wire.event_id,
        "occurred_at": _instant(wire.occurred_at, context.latest_datetime),
        "schema_version": CustomerCreated.SCHEMA_VERSION,
        "customer_id": wire.customer_id,
        "created_at": _instant(wire.created_at, context.latest_datetime),
        "profile": built(CustomerProfile, profile_values, set(_PROFILE_FIELDS)),
    }
    return built(CustomerCreated, values, set(_CUSTOMER_FIELDS))


def _activity(wire: Any, context: ValidationContext) -> CustomerActivityRecorded:
    values = {
        "event_id": wire.event_id,
        "occurred_at": _instant(wire.occurred_at, context.latest_datetime),
        "schema_version": CustomerActivityRecorded.SCHEMA_VERSION,
        "statement_id": wire.statement_id,
        "customer_id": wire.customer_id,
        "statement_date": calendar_date(wire.statement_date, context.latest_date),
        "balance": money_amount(wire.balance, non_negative=False, ceiling=None),
        "credit_limit": money_amount(wire.credit_limit, non_negative=True, ceiling=None),
        "payment_amount": money_amount(wire.payment_amount, non_negative=True, ceiling=None),
        "minimum_due": money_amount(wire.minimum_due, non_negative=True, ceiling=None),
        "purchase_amount": money_amount(wire.purchase_amount, non_negative=True, ceiling=None),
        "cash_advance_amount": money_amount(
            wire.cash_advance_amount, non_negative=True, ceiling=None
        ),
        "days_past_due": wire.days_past_due,
    }
    return built(CustomerActivityRecorded, values, set(_ACTIVITY_FIELDS))


def _label(wire: Any, context: ValidationContext) -> ExpenseLabelled:
    sheet_id = wire.sheet_id
    values = {
        "event_id": wire.event_id,
        "occurred_at": _instant(wire.occurred_at, context.latest_datetime),
        "schema_version": ExpenseLabelled.SCHEMA_VERSION,
        "expense_id": wire.expense_id,
        "sheet_id": sheet_id,
        "is_fraud": wire.is_fraud,
        "labelled_at": _instant(wire.labelled_at, context.latest_datetime),
        "source": wire.source,
    }
    if sheet_id is msgspec.UNSET:
        values["sheet_id"] = None
        return built(ExpenseLabelled, values, set(_LABEL_FIELDS_WITHOUT_SHEET))
    return built(ExpenseLabelled, values, set(_LABEL_FIELDS))


def _fields(model: type[Contract], *absent: str) -> frozenset[str]:
    return frozenset(model.model_fields) - set(absent)


_LINE_FIELDS = _fields(ExpenseLine)
_LINE_FIELDS_WITHOUT_RECEIPT = _fields(ExpenseLine, "receipt_ref")
_SHEET_FIELDS = _fields(ExpenseSheetSubmitted)
_PROFILE_FIELDS = _fields(CustomerProfile)
_CUSTOMER_FIELDS = _fields(CustomerCreated)
_ACTIVITY_FIELDS = _fields(CustomerActivityRecorded)
_LABEL_FIELDS = _fields(ExpenseLabelled)
_LABEL_FIELDS_WITHOUT_SHEET = _fields(ExpenseLabelled, "sheet_id")


# ---------------------------------------------------------------------------------------------
# The wire structs: one set per text limit, since msgspec checks lengths as part of the type

Field = tuple[str, Any] | tuple[str, Any, Any]

# Money is a JSON number or a decimal string; money_amount reads either one exactly as the
# pydantic validator does.
_AMOUNT: Any = Union[str, int, float]  # noqa: UP007 - a runtime type for msgspec, not a hint
_CURRENCY: Any = Literal.__getitem__(tuple(sorted(ISO_4217_CODES)))
_COUNT: Any = Annotated[int, msgspec.Meta(ge=0, le=2**31 - 1)]
_AGE: Any = Annotated[int, msgspec.Meta(ge=18, le=120)]


def _version(event_type: type[Event]) -> Any:
    return Literal.__getitem__(event_type.SCHEMA_VERSION)


def _tuple_of(item: type[msgspec.Struct]) -> Any:
    return tuple.__class_getitem__((item, ...))


def _struct(model: type[Contract], fields: Iterable[Field]) -> type[msgspec.Struct]:
    """A closed struct for `model`: the same field names in the same order, or TypeError."""
    fields = list(fields)
    names = [field[0] for field in fields]
    if names != list(model.model_fields):
        raise TypeError(f"the wire struct of {model.__name__} has fields {names}")
    check_buildable(model)
    return msgspec.defstruct(
        f"{model.__name__}Wire", fields, forbid_unknown_fields=True, kw_only=True, gc=False
    )


def _envelope(event_type: type[Event]) -> list[Field]:
    # Instants arrive as text: _instant reads them (see _LONG_FRACTION).
    return [("event_id", UUID), ("occurred_at", str), ("schema_version", _version(event_type))]


@lru_cache(maxsize=8)
def wire_structs(max_string_length: int) -> Mapping[type[Event], type[msgspec.Struct]]:
    """The msgspec struct of every upstream event type, for codecs with this text limit."""
    text: Any = Annotated[str, msgspec.Meta(max_length=max_string_length)]
    identifier: Any = Annotated[
        str, msgspec.Meta(min_length=1, max_length=min(max_string_length, MAX_IDENTIFIER_LENGTH))
    ]
    unset = msgspec.UNSET
    line = _struct(
        ExpenseLine,
        [
            ("expense_id", identifier),
            ("amount", _AMOUNT),
            ("currency", _CURRENCY),
            ("category", text),
            ("merchant", text),
            ("expense_date", date),
            ("description", text),
            ("receipt_ref", Union[text, None, msgspec.UnsetType], unset),  # noqa: UP007
        ],
    )
    sheet = _struct(
        ExpenseSheetSubmitted,
        [
            *_envelope(ExpenseSheetSubmitted),
            ("sheet_id", identifier),
            ("employee_id", identifier),
            ("submitted_at", str),
            ("lines", Annotated[_tuple_of(line), msgspec.Meta(min_length=1, max_length=MAX_LINES)]),
        ],
    )
    profile = _struct(
        CustomerProfile,
        [
            ("age", _AGE),
            ("annual_income", _AMOUNT),
            ("credit_limit", _AMOUNT),
            ("region", text),
            ("product", text),
            ("tenure_months", _COUNT),
            ("employment_status", text),
        ],
    )
    customer = _struct(
        CustomerCreated,
        [
            *_envelope(CustomerCreated),
            ("customer_id", identifier),
            ("created_at", str),
            ("profile", profile),
        ],
    )
    activity = _struct(
        CustomerActivityRecorded,
        [
            *_envelope(CustomerActivityRecorded),
            ("statement_id", identifier),
            ("customer_id", identifier),
            ("statement_date", date),
            ("balance", _AMOUNT),
            ("credit_limit", _AMOUNT),
            ("payment_amount", _AMOUNT),
            ("minimum_due", _AMOUNT),
            ("purchase_amount", _AMOUNT),
            ("cash_advance_amount", _AMOUNT),
            ("days_past_due", _COUNT),
        ],
    )
    label = _struct(
        ExpenseLabelled,
        [
            *_envelope(ExpenseLabelled),
            ("expense_id", identifier),
            ("sheet_id", Union[identifier, None, msgspec.UnsetType], unset),  # noqa: UP007
            ("is_fraud", bool),
            ("labelled_at", str),
            ("source", text),
        ],
    )
    return MappingProxyType(
        {
            ExpenseSheetSubmitted: sheet,
            CustomerCreated: customer,
            CustomerActivityRecorded: activity,
            ExpenseLabelled: label,
        }
    )


_BUILDERS: Mapping[type[Event], Callable[[Any, ValidationContext], Event]] = MappingProxyType(
    {
        ExpenseSheetSubmitted: _sheet,
        CustomerCreated: _customer,
        CustomerActivityRecorded: _activity,
        ExpenseLabelled: _label,
    }
)


@lru_cache(maxsize=8)
def fast_decoders(max_string_length: int) -> Mapping[type[Event], FastDecoder]:
    """The fast path of every upstream event type, for codecs with this text limit."""
    structs = wire_structs(max_string_length)
    return MappingProxyType(
        {
            event_type: _decoder(structs[event_type], build)
            for event_type, build in _BUILDERS.items()
        }
    )


def _decoder(
    struct: type[msgspec.Struct], build: Callable[[Any, ValidationContext], Event]
) -> FastDecoder:
    parse = msgspec.json.Decoder(struct).decode

    def decode(data: bytes, context: ValidationContext) -> Event | None:
        if _ESCAPED_NUL in data:
            return None
        try:
            return build(parse(data), context)
        except _REFUSED:
            return None

    return decode
