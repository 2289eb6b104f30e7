"""What every event shares: the Event base class, ModelFamily, and the constrained field types.

Field types carry their own checks so pydantic runs them inside one validation pass.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Self, get_args
from uuid import UUID, SafeUUID, uuid4

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import PydanticCustomError

from schemas.currencies import ISO_4217_CODES
from schemas.families import ModelFamily as ModelFamily
from schemas.limits import (
    AMOUNT_BOUND,
    DEFAULT_LIMITS,
    EARLIEST_DATE,
    EARLIEST_INSTANT,
    LATEST_DATE,
    LATEST_INSTANT,
    MAX_AMOUNT_DECIMAL_PLACES,
    MAX_AMOUNT_INTEGER_DIGITS,
    MAX_IDENTIFIER_LENGTH,
    ValidationContext,
)


def _context(info: ValidationInfo) -> ValidationContext | None:
    context = info.context
    return context if type(context) is ValidationContext else None


# Outside the codec (an event built in Python) the published default limits still hold, so a
# producer cannot build an event that consumers with the default limits would reject.
_DEFAULT_MAX_STRING_LENGTH = DEFAULT_LIMITS.max_string_length
_DEFAULT_MAX_IDENTIFIER_LENGTH = min(DEFAULT_LIMITS.max_string_length, MAX_IDENTIFIER_LENGTH)
_DEFAULT_MAX_AMOUNT = DEFAULT_LIMITS.max_amount


# ---------------------------------------------------------------------------------------------
# Text


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_storable_text(value: str, limit: int) -> str:
    if len(value) > limit:
        raise PydanticCustomError(
            "string_too_long",
            "Text should have at most {max_length} characters",
            {"max_length": limit},
        )
    # PostgreSQL text and jsonb cannot hold NUL, so it is refused here rather than in the sink.
    if "\x00" in value:
        raise PydanticCustomError("invalid_value", "Text must not contain NUL characters")
    # Nor a lone surrogate, which is not a character at all. The JSON parser refuses one; this
    # catches one in an event built in Python (asyncpg could not even encode it).
    if not value.isascii() and _SURROGATE.search(value) is not None:
        raise PydanticCustomError("invalid_value", "Text must not contain lone surrogates")
    return value


def _check_text(value: str, info: ValidationInfo) -> str:
    context = info.context
    limit = (
        context.max_string_length
        if type(context) is ValidationContext
        else _DEFAULT_MAX_STRING_LENGTH
    )
    return _check_storable_text(value, limit)


def _check_identifier(value: str, info: ValidationInfo) -> str:
    context = info.context
    limit = (
        context.max_identifier_length
        if type(context) is ValidationContext
        else _DEFAULT_MAX_IDENTIFIER_LENGTH
    )
    return _check_storable_text(value, limit)


_NO_NUL_PATTERN = "^[^\\u0000]*$"

Text = Annotated[
    str,
    AfterValidator(_check_text),
    Field(
        json_schema_extra={
            "maxLength": DEFAULT_LIMITS.max_string_length,
            "pattern": _NO_NUL_PATTERN,
        }
    ),
]
"""Free text: any characters but NUL (and lone surrogates), at most `max_string_length` of them;
may be empty."""

Identifier = Annotated[
    str,
    StringConstraints(min_length=1),
    AfterValidator(_check_identifier),
    Field(
        json_schema_extra={
            "maxLength": min(DEFAULT_LIMITS.max_string_length, MAX_IDENTIFIER_LENGTH),
            "pattern": _NO_NUL_PATTERN,
        }
    ),
]
"""An id or a machine-readable code: never empty, no NUL, at most `MAX_IDENTIFIER_LENGTH`
characters (fewer if `max_string_length` is lower), so it fits a database index entry."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest as 64 lowercase hex digits."""

Base64 = Annotated[
    str,
    StringConstraints(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"),
]
"""Opaque bytes in standard, padded base64; exempt from the text length limit."""

TopicName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,249}$")]
"""A Kafka topic name (the characters and length Kafka allows)."""


def _check_currency(value: str) -> str:
    if value not in ISO_4217_CODES:
        raise PydanticCustomError(
            "invalid_currency",
            "Input should be an active ISO 4217 alphabetic code such as EUR or USD",
        )
    return value


Currency = Annotated[
    str,
    AfterValidator(_check_currency),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(ISO_4217_CODES),
            "description": "An active ISO 4217 alphabetic code, upper case.",
        }
    ),
]
"""An active ISO 4217 alphabetic currency code (upper case, no silent case folding)."""


# ---------------------------------------------------------------------------------------------
# Money


# A numeric string is plain decimal notation: no spaces, underscores, signs other than a leading
# minus, or exponents (an exponent such as 1e999999 would expand to a huge number on encode).
_MONEY_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_NON_FINITE_TEXT = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "snan", "inf", "infinity")
)
# The exported patterns also carry the storage limits: leading zeros, then at most
# MAX_AMOUNT_INTEGER_DIGITS digits, and at most MAX_AMOUNT_DECIMAL_PLACES after the point.
_DIGITS_PATTERN = (
    f"0*[0-9]{{1,{MAX_AMOUNT_INTEGER_DIGITS}}}(\\.[0-9]{{1,{MAX_AMOUNT_DECIMAL_PLACES}}})?$"
)
_MONEY_TEXT_PATTERN = "^-?" + _DIGITS_PATTERN
_NON_NEGATIVE_MONEY_TEXT_PATTERN = "^" + _DIGITS_PATTERN


def _wrong_money_type() -> PydanticCustomError:
    return PydanticCustomError(
        "wrong_type", 'Input should be a number or a decimal string such as "12.50"'
    )


def _non_finite() -> PydanticCustomError:
    return PydanticCustomError("non_finite_amount", "Amount must be a finite number")


_ZERO = Decimal(0)
_NEGATIVE_BOUND = -AMOUNT_BOUND


def money_amount(value: Any, *, non_negative: bool, ceiling: Decimal | None) -> Decimal:
    """The amount a JSON number or decimal string stands for, or PydanticCustomError.

    Both decoders call it (the pydantic models and the codec's fast path), so they accept the
    same amounts and read them the same way. `ceiling` is the codec's `max_amount`, or None.
    """
    kind = type(value)
    places: int | None = None  # digits after the point, where the input shows them plainly
    if kind is str:
        if _MONEY_TEXT.fullmatch(value) is None:
            if value.lower() in _NON_FINITE_TEXT:
                raise _non_finite()
            raise _wrong_money_type()
        amount = Decimal(value)
        point = value.find(".")
        places = 0 if point < 0 else len(value) - point - 1
    elif kind is int:
        amount = Decimal(value)
        places = 0
    elif kind is float:
        if not math.isfinite(value):
            raise _non_finite()
        # repr is the shortest text that reads back as the same float: 0.1, not 0.1000…0555.
        amount = Decimal(repr(value))
    elif kind is Decimal:
        amount = value
        if not amount.is_finite():
            raise _non_finite()
    else:
        raise _wrong_money_type()
    if non_negative and amount.is_signed() and not amount.is_zero():
        raise PydanticCustomError("negative_amount", "Amount must not be negative")
    # The storage limits come before the configurable ceiling: no setting lifts them.
    if not _NEGATIVE_BOUND < amount < AMOUNT_BOUND:
        raise PydanticCustomError(
            "amount_out_of_range",
            "Amount must have at most {digits} digits before the decimal point",
            {"digits": MAX_AMOUNT_INTEGER_DIGITS},
        )
    if places is None:
        exponent = amount.as_tuple().exponent
        places = -exponent if type(exponent) is int else 0
    if places > MAX_AMOUNT_DECIMAL_PLACES:
        raise PydanticCustomError(
            "amount_too_precise",
            "Amount must have at most {places} digits after the decimal point",
            {"places": MAX_AMOUNT_DECIMAL_PLACES},
        )
    if amount.is_signed() and amount.is_zero():
        # -0 and 0 are the same amount; one spelling keeps encodings canonical.
        return _ZERO
    if ceiling is not None and amount > ceiling:
        raise PydanticCustomError(
            "amount_above_ceiling",
            "Amount must not exceed {ceiling}",
            {"ceiling": str(ceiling)},
        )
    return amount


def _money_validator(
    *, non_negative: bool, capped: bool
) -> Callable[[Any, ValidationInfo], Decimal]:
    # One plain validator per amount does the whole job: pydantic's own Decimal validator would
    # accept "1_000" or " 1" and reports NaN in a way that cannot be told from a float's NaN.
    if not capped:

        def validate(value: Any, info: ValidationInfo) -> Decimal:
            return money_amount(value, non_negative=non_negative, ceiling=None)

        return validate

    def validate_capped(value: Any, info: ValidationInfo) -> Decimal:
        context = info.context
        ceiling = context.max_amount if type(context) is ValidationContext else _DEFAULT_MAX_AMOUNT
        return money_amount(value, non_negative=non_negative, ceiling=ceiling)

    return validate_capped


def _money_text(amount: Decimal) -> str:
    # Fixed-point notation, never an exponent: exact, and readable by any JSON consumer.
    return format(amount, "f")


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _money_schema(*, non_negative: bool, maximum: Decimal | None, description: str) -> Any:
    number: dict[str, Any] = {"type": "number"}
    if non_negative:
        number["minimum"] = 0
    else:
        number["exclusiveMinimum"] = _json_number(_NEGATIVE_BOUND)
    if maximum is not None:
        number["maximum"] = _json_number(maximum)
    else:
        number["exclusiveMaximum"] = _json_number(AMOUNT_BOUND)
    pattern = _NON_NEGATIVE_MONEY_TEXT_PATTERN if non_negative else _MONEY_TEXT_PATTERN
    return WithJsonSchema(
        {
            "anyOf": [number, {"type": "string", "pattern": pattern}],
            "description": description,
            # A field's docstring replaces the description; the storage limits must stay.
            "$comment": (
                f"At most {MAX_AMOUNT_INTEGER_DIGITS} digits before the decimal point and "
                f"{MAX_AMOUNT_DECIMAL_PLACES} after it (trailing zeros count); a JSON number "
                "is read as the shortest decimal that gives back its double (0.1 is 0.1)."
            ),
        }
    )


_MONEY_SERIALIZER = PlainSerializer(_money_text, return_type=str, when_used="json")

Money = Annotated[
    Decimal,
    PlainValidator(_money_validator(non_negative=False, capped=False)),
    _MONEY_SERIALIZER,
    _money_schema(
        non_negative=False,
        maximum=None,
        description="A finite amount, possibly negative: a JSON number or a decimal string.",
    ),
]
"""A finite amount that may be negative (a balance in credit), within the storage limits."""

NonNegativeMoney = Annotated[
    Decimal,
    PlainValidator(_money_validator(non_negative=True, capped=False)),
    _MONEY_SERIALIZER,
    _money_schema(
        non_negative=True,
        maximum=None,
        description="A finite amount >= 0: a JSON number or a decimal string.",
    ),
]
"""A finite amount >= 0, within the storage limits."""

ExpenseAmount = Annotated[
    Decimal,
    PlainValidator(_money_validator(non_negative=True, capped=True)),
    _MONEY_SERIALIZER,
    _money_schema(
        non_negative=True,
        maximum=DEFAULT_LIMITS.max_amount,
        description=(
            "A finite amount >= 0 and at most the codec's ceiling "
            f"(default {DEFAULT_LIMITS.max_amount}): a JSON number or a decimal string."
        ),
    ),
]
"""A finite amount >= 0 and at most the codec's `max_amount` (within the storage limits)."""


# ---------------------------------------------------------------------------------------------
# Numbers

Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
"""A non-negative count that fits a PostgreSQL integer."""

Offset = Annotated[int, Field(ge=0, le=2**63 - 1)]
"""A non-negative position that fits a PostgreSQL bigint (Kafka offsets)."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
"""A finite probability in [0, 1]."""

NonNegativeFloat = Annotated[float, Field(ge=0.0)]
"""A finite float >= 0."""

Metrics = dict[Identifier, float]
"""Named finite numbers (metric name -> value)."""


# ---------------------------------------------------------------------------------------------
# Time


def _to_utc(value: datetime) -> datetime:
    # Compared before the conversion: near the ends of Python's range an offset would push the
    # instant out of it (OverflowError) once converted to UTC.
    if not EARLIEST_INSTANT <= value <= LATEST_INSTANT:
        raise PydanticCustomError(
            "date_out_of_range",
            "Instant must lie between {earliest} and {latest}",
            {"earliest": EARLIEST_INSTANT.isoformat(), "latest": LATEST_INSTANT.isoformat()},
        )
    return value.astimezone(UTC)


def instant_in_utc(value: datetime, latest: datetime | None) -> datetime:
    """`value` (timezone-aware) in UTC if it lies in the storable range and not after `latest`
    (no bound when None), or PydanticCustomError; both decoders call it."""
    value = _to_utc(value)
    if latest is not None and value > latest:
        raise PydanticCustomError(
            "date_in_future",
            "Instant is after the latest accepted one ({latest})",
            {"latest": latest.isoformat()},
        )
    return value


def calendar_date(value: date, latest: date | None) -> date:
    """`value` if it lies in the storable range and not after `latest` (no bound when None), or
    PydanticCustomError; both decoders call it."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError(
            "date_out_of_range",
            "Date must lie between {earliest} and {latest}",
            {"earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()},
        )
    if latest is not None and value > latest:
        raise PydanticCustomError(
            "date_in_future",
            "Date is after the latest accepted one ({latest})",
            {"latest": latest.isoformat()},
        )
    return value


def _to_utc_not_future(value: datetime, info: ValidationInfo) -> datetime:
    context = _context(info)
    # Without a codec there is no clock to compare with; the check belongs to decoding.
    return instant_in_utc(value, context.latest_datetime if context is not None else None)


def _date_not_future(value: date, info: ValidationInfo) -> date:
    context = _context(info)
    return calendar_date(value, context.latest_date if context is not None else None)


# JSON Schema can state the earliest year: exactly for a date; for an instant only as written,
# so the last day of 1899 passes the pattern (with a negative offset it can be 1900 in UTC) and
# the codec judges it in UTC. The latest ones lie beyond any clock's max_future.
_DATE_FROM_1900 = Field(json_schema_extra={"pattern": "^(19[0-9]{2}|[2-9][0-9]{3})-"})
_INSTANT_FROM_1900 = Field(
    json_schema_extra={"pattern": "^(1899-12-31T|19[0-9]{2}-|[2-9][0-9]{3}-)"}
)

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc), _INSTANT_FROM_1900]
"""An instant with an explicit offset on the wire (RFC 3339), held in UTC, between
EARLIEST_INSTANT and LATEST_INSTANT."""

NotFutureDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc_not_future), _INSTANT_FROM_1900]
"""A UtcDatetime that a decode rejects when it lies beyond now + `max_future`."""

NotFutureDate = Annotated[date, AfterValidator(_date_not_future), _DATE_FROM_1900]
"""A calendar date (YYYY-MM-DD) between EARLIEST_DATE and LATEST_DATE that a decode rejects
beyond today (UTC) + `max_future`."""


# ---------------------------------------------------------------------------------------------
# Models


class Contract(BaseModel):
    """Base of every event and nested value: frozen, strict, closed to unknown fields."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        hide_input_in_errors=True,
        use_attribute_docstrings=True,
    )


def _exact_int(value: Any) -> Any:
    # Literal[1] alone would take JSON true or 1.0 for 1.
    if type(value) is not int:
        raise PydanticCustomError("int_type", "Input should be an integer")
    return value


VERSION_IS_INT = BeforeValidator(_exact_int)
"""Mark on `schema_version`: ``Annotated[Literal[N], VERSION_IS_INT] = N``."""


Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Turns a payload of version N into one of version N + 1 (the codec sets schema_version).

It receives any JSON object claiming version N and must not raise: whatever it cannot convert it
leaves as it is, so validation reports it with a precise reason.
"""


_WIRE_REQUIRED = ("event_id", "schema_version")
"""Fields that default in Python but that every message on the wire must carry."""


def _require_on_the_wire(schema: dict[str, Any]) -> None:
    properties = schema.get("properties", {})
    for name in _WIRE_REQUIRED:
        properties.get(name, {}).pop("default", None)
    required = [name for name in schema.get("required", []) if name not in _WIRE_REQUIRED]
    schema["required"] = [*_WIRE_REQUIRED, *required]


# The bits uuid4 sets in 16 random bytes: version 4 and the RFC 4122 variant.
_KEEP_RANDOM_BITS = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_4_BITS = (4 << 76) | (0x8000 << 48)


def new_event_ids(count: int) -> list[UUID]:
    """`count` fresh version-4 UUIDs, what `uuid4()` gives one at a time, at a quarter of its cost
    (one read of the system's random source; each UUID set as `UUID.__init__` sets it)."""
    random = os.urandom(16 * count)
    from_bytes = int.from_bytes
    new, set_slot, unknown = object.__new__, object.__setattr__, SafeUUID.unknown
    ids: list[UUID] = []
    for start in range(0, 16 * count, 16):
        value = (from_bytes(random[start : start + 16]) & _KEEP_RANDOM_BITS) | _VERSION_4_BITS
        event_id = new(UUID)
        set_slot(event_id, "int", value)
        set_slot(event_id, "is_safe", unknown)
        ids.append(event_id)
    return ids


class Event(Contract):
    """A fact (or, for retrain-requested, a command) published on one Kafka topic.

    Subclasses set TOPIC, KEY_FIELD and SCHEMA_VERSION, narrow `schema_version` to
    ``Annotated[Literal[SCHEMA_VERSION], VERSION_IS_INT] = SCHEMA_VERSION``, and list in
    UPCASTERS a step for every older version they accept.
    """

    model_config = ConfigDict(json_schema_extra=_require_on_the_wire)

    TOPIC: ClassVar[str]
    """The default topic name."""
    KEY_FIELD: ClassVar[str]
    """The field whose value is the Kafka message key."""
    SCHEMA_VERSION: ClassVar[int] = 1
    """The version this class validates and encodes."""
    UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({})
    """old version -> step to old version + 1."""

    event_id: UUID = Field(default_factory=uuid4)
    """Unique id of this event; consumers use it to ignore redeliveries."""
    occurred_at: NotFutureDatetime
    """When the fact happened: RFC 3339 with an offset, normalised to UTC."""
    schema_version: int
    """Version of this event's shape."""

    @model_validator(mode="after")
    def _wire_fields_present(self, info: ValidationInfo) -> Self:
        # In Python a new event gets a fresh id and the current version by default; a decoded
        # message must state both, or a missing version would pass for the current one.
        if _context(info) is not None:
            for name in _WIRE_REQUIRED:
                if name not in self.model_fields_set:
                    raise PydanticCustomError("missing", "Field required", {"at": name})
        return self

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        version = cls.SCHEMA_VERSION
        field = cls.model_fields["schema_version"]
        if get_args(field.annotation) != (version,) or field.default != version:
            raise TypeError(f"{cls.__name__}.schema_version must be Literal[{version}] = {version}")
        for old in cls.UPCASTERS:
            if not 1 <= old < version or any(
                step not in cls.UPCASTERS for step in range(old, version)
            ):
                raise TypeError(
                    f"{cls.__name__}: no complete upcast path from v{old} to v{version}"
                )
        key_field = getattr(cls, "KEY_FIELD", None)
        if key_field is not None and key_field not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.KEY_FIELD names no field: {key_field!r}")

    @classmethod
    def known_versions(cls) -> frozenset[int]:
        """Every schema_version the codec accepts for this event (older ones are upcast)."""
        return frozenset({cls.SCHEMA_VERSION, *cls.UPCASTERS})

    @classmethod
    def upcast(cls, payload: dict[str, Any], version: int) -> dict[str, Any]:
        """Bring a payload written at `version` (a known one) to SCHEMA_VERSION, step by step."""
        if version not in cls.known_versions():
            raise ValueError(f"{cls.__name__} has no upcast from version {version}")
        while version < cls.SCHEMA_VERSION:
            payload = dict(cls.UPCASTERS[version](payload))
            version += 1
            payload["schema_version"] = version
        return payload

    def partition_key(self) -> bytes:
        """The Kafka message key: the KEY_FIELD value as UTF-8 text."""
        return str(getattr(self, self.KEY_FIELD)).encode()
