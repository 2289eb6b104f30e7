"""Errors of the contracts package: one base class, and the codec's rejection with its reason."""

from __future__ import annotations

from enum import StrEnum


class RejectReason(StrEnum):
    """Why the codec refused a message; the machine-readable code a dead letter carries."""

    PAYLOAD_TOO_LARGE = "payload_too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    INVALID_VALUE = "invalid_value"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    NON_FINITE_AMOUNT = "non_finite_amount"
    NEGATIVE_AMOUNT = "negative_amount"
    AMOUNT_ABOVE_CEILING = "amount_above_ceiling"
    INVALID_CURRENCY = "invalid_currency"
    DATE_IN_FUTURE = "date_in_future"
    EMPTY_SHEET = "empty_sheet"
    DUPLICATE_EXPENSE_ID = "duplicate_expense_id"
    STRING_TOO_LONG = "string_too_long"
    UNKNOWN_FIELD = "unknown_field"
    AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
    """An amount with more integer digits than storage holds (see schemas.limits)."""
    AMOUNT_TOO_PRECISE = "amount_too_precise"
    """An amount with more decimal places than storage holds (see schemas.limits)."""
    DATE_OUT_OF_RANGE = "date_out_of_range"
    """A date or instant outside the years storage holds exactly (see schemas.limits)."""


class SchemaError(Exception):
    """Base of every error the schemas package raises."""


class DecodeError(SchemaError):
    """A message cannot become an event: `reason` for machines, `detail` for people.

    `field` is the dotted path of the offending value inside the message (``"lines.3.amount"``),
    or None when the problem is the message as a whole.
    """

    def __init__(self, reason: RejectReason, detail: str, field: str | None = None) -> None:
        # Passing every attribute to Exception keeps `args` complete, so copies rebuild faithfully.
        super().__init__(reason, detail, field)
        self.reason = reason
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        where = f" at {self.field}" if self.field is not None else ""
        return f"{self.reason.value}{where}: {self.detail}"


class UnknownTopicError(SchemaError):
    """The codec was asked to decode a topic it has no event type for (a wiring mistake)."""

    def __init__(self, topic: str) -> None:
        super().__init__(topic)
        self.topic = topic

    def __str__(self) -> str:
        return f"no event type is registered for topic {self.topic!r}"


class ArtifactIntegrityError(SchemaError):
    """A stored artifact's bytes do not match its sha256, or it holds types we do not trust."""
