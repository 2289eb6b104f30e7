"""The codec: bytes from a topic to a validated event and back, with one error type for rejects."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

import pydantic_core
from pydantic import ValidationError

from schemas.base import Event
from schemas.errors import DecodeError, RejectReason, UnknownTopicError
from schemas.fast_decode import FastDecoder, fast_decoders
from schemas.limits import DEFAULT_LIMITS, CodecLimits, ValidationContext
from schemas.topics import TOPICS

__all__ = ["Codec", "CodecLimits", "DecodeError", "RejectReason"]

EventT = TypeVar("EventT", bound=Event)

_SCHEMA_VERSION = "schema_version"

# pydantic error types that mean "the JSON value has the wrong type for this field".
_TYPE_ERRORS = frozenset(
    {
        "bool_parsing",
        "bool_type",
        "date_type",
        "datetime_type",
        "decimal_parsing",
        "decimal_type",
        "dict_type",
        "float_parsing",
        "float_type",
        "int_from_float",
        "int_parsing",
        "int_type",
        "is_instance_of",
        "list_type",
        "model_attributes_type",
        "model_type",
        "none_required",
        "string_type",
        "tuple_type",
        "uuid_type",
    }
)
# Choice errors are a wrong value when the input is a string, and a wrong type otherwise.
_CHOICE_ERRORS = frozenset({"enum", "literal_error"})
_ROOT_TYPE_ERRORS = frozenset({"model_type", "model_attributes_type", "dict_type"})
_REASONS_BY_VALUE: Mapping[str, RejectReason] = MappingProxyType(
    {reason.value: reason for reason in RejectReason}
)


def utc_now() -> datetime:
    """The default clock: now, timezone-aware, in UTC."""
    return datetime.now(UTC)


class Codec:
    """Decodes topic bytes into events (or raises DecodeError) and encodes events as JSON.

    One instance is meant to be shared by a whole worker; it holds no per-message state.
    """

    __slots__ = ("_clock", "_fast", "_limits", "_topics")

    def __init__(
        self,
        limits: CodecLimits = DEFAULT_LIMITS,
        clock: Callable[[], datetime] = utc_now,
        topics: Mapping[str, type[Event]] | None = None,
        *,
        fast_path: bool = True,
    ) -> None:
        """`topics` maps topic names to event types; by default the registry's default names.

        With `fast_path` (the default) the upstream events are decoded by schemas.fast_decode
        first, and by the pydantic models only when it does not accept a message outright; the
        results are the same (tests/unit/schemas/test_fast_decode.py), only faster.
        """
        self._limits = limits
        self._fast: Mapping[type[Event], FastDecoder] = (
            fast_decoders(limits.max_string_length) if fast_path else MappingProxyType({})
        )
        self._clock = clock
        ValidationContext(clock(), limits)  # a naive clock is a wiring mistake: fail at start-up
        self._topics: Mapping[str, type[Event]] = MappingProxyType(
            dict(topics)
            if topics is not None
            else {name: topic.event_type for name, topic in TOPICS.items()}
        )

    @property
    def limits(self) -> CodecLimits:
        """The limits this codec enforces."""
        return self._limits

    def decode(self, topic: str, data: bytes) -> Event:
        """Decode a message of `topic`; raises DecodeError, or UnknownTopicError for a bad name."""
        try:
            event_type = self._topics[topic]
        except KeyError:
            raise UnknownTopicError(topic) from None
        return self.decode_as(event_type, data)

    def decode_as(self, event_type: type[EventT], data: bytes) -> EventT:
        """Decode `data` as `event_type`, upcasting older versions; raises DecodeError."""
        if len(data) > self._limits.max_payload_bytes:
            raise DecodeError(
                RejectReason.PAYLOAD_TOO_LARGE,
                f"payload has {len(data)} bytes; the limit is {self._limits.max_payload_bytes}",
            )
        context = ValidationContext(self._clock(), self._limits)
        fast = self._fast.get(event_type)
        if fast is not None:
            event = fast(data, context)
            if isinstance(event, event_type):
                return event
        try:
            return event_type.model_validate_json(data, context=context)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if not _concerns_version(errors, data):
                raise _rejection(errors) from exc
        # The version is missing or not the current one: the shape depends on it, so it is
        # judged first; then the payload is upcast or refused.
        return self._decode_older(event_type, data, context)

    def encode(self, event: Event) -> bytes:
        """Compact UTF-8 JSON, keys in field order; money as decimal strings, instants in UTC."""
        return event.__pydantic_serializer__.to_json(event)

    def key_of(self, event: Event) -> bytes:
        """The Kafka key for `event` (its topic's key field as UTF-8)."""
        return event.partition_key()

    def _decode_older(
        self, event_type: type[EventT], data: bytes, context: ValidationContext
    ) -> EventT:
        try:
            payload = pydantic_core.from_json(data)
        except ValueError as exc:  # unreachable after a parse that succeeded; kept for safety
            raise DecodeError(RejectReason.INVALID_JSON, str(exc)) from exc
        if not isinstance(payload, dict):
            raise DecodeError(RejectReason.NOT_AN_OBJECT, "Input should be an object")
        version = payload.get(_SCHEMA_VERSION)
        field = _SCHEMA_VERSION
        if _SCHEMA_VERSION not in payload:
            raise DecodeError(RejectReason.MISSING_FIELD, "Field required", field)
        if type(version) is not int:
            raise DecodeError(RejectReason.WRONG_TYPE, "Input should be an integer", field)
        if version not in event_type.known_versions():
            known = ", ".join(str(v) for v in sorted(event_type.known_versions()))
            raise DecodeError(
                RejectReason.UNKNOWN_SCHEMA_VERSION,
                f"{event_type.__name__} has no version {version}; known: {known}",
                field,
            )
        try:
            upcast = event_type.upcast(payload, version)
            # Back to JSON so the result gets JSON-mode validation (decimal strings, RFC 3339).
            rewritten = pydantic_core.to_json(upcast, inf_nan_mode="constants")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # Upcasters must not raise; if one does, the message still goes to dead-letter.
            raise DecodeError(
                RejectReason.INVALID_VALUE, f"cannot upcast from version {version}: {exc!r}"
            ) from exc
        try:
            return event_type.model_validate_json(rewritten, context=context)
        except ValidationError as exc:
            raise _rejection(
                exc.errors(include_url=False), note=f" (after upcast from version {version})"
            ) from exc


def _concerns_version(errors: Sequence[Any], data: bytes) -> bool:
    """Whether a failed validation may be due to the version rather than the fields."""
    if any(error["loc"] == (_SCHEMA_VERSION,) for error in errors):
        return True
    if not errors[0]["loc"]:
        # Unparseable, not an object, or a whole-event check that runs only on valid fields.
        return False
    # Field errors while schema_version took its Python default: was it on the wire at all?
    try:
        payload = pydantic_core.from_json(data)
    except ValueError:
        return False
    return isinstance(payload, dict) and _SCHEMA_VERSION not in payload


def _rejection(errors: Sequence[Any], note: str = "") -> DecodeError:
    """The DecodeError for pydantic's errors: the first one, in field order, decides."""
    error = errors[0]
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    context: Mapping[str, Any] = error.get("ctx") or {}
    detail = str(error["msg"]) + note
    at = context.get("at")
    if isinstance(at, str):
        loc = (*loc, *at.split("."))
    field = ".".join(str(part) for part in loc) or None
    return DecodeError(_reason_for(kind, loc, error.get("input")), detail, field)


def _reason_for(kind: str, loc: tuple[str | int, ...], value: Any) -> RejectReason:
    if kind == "json_invalid":
        return RejectReason.INVALID_JSON
    if not loc and kind in _ROOT_TYPE_ERRORS:
        return RejectReason.NOT_AN_OBJECT
    if kind == "missing":
        return RejectReason.MISSING_FIELD
    if kind == "extra_forbidden":
        return RejectReason.UNKNOWN_FIELD
    reason = _REASONS_BY_VALUE.get(kind)
    if reason is not None:
        return reason
    if kind in _TYPE_ERRORS or (kind in _CHOICE_ERRORS and not isinstance(value, str)):
        return RejectReason.WRONG_TYPE
    return RejectReason.INVALID_VALUE
