"""Malformed messages: a valid message bent into one the codec must refuse, for a known reason.

Each mutation changes exactly one thing, so the reason the codec gives is the one intended.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from retrainer.simulator.events import ACTIVITY_TOPIC, CUSTOMER_TOPIC, LABEL_TOPIC, SHEET_TOPIC
from schemas import CodecLimits, RejectReason

Document = dict[str, Any]
Path = tuple[str | int, ...]
Mutation = Callable[[Document, np.random.Generator, CodecLimits], bytes]

FAR_FUTURE_DATE = "2999-01-01"
"""Beyond any clock the codec may run with, so `date_in_future` does not depend on today."""


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _replaced(document: Document, path: Path, value: Any) -> Document:
    changed = copy.deepcopy(document)
    target: Any = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


def _set(path_of: Callable[[Document, np.random.Generator], Path], value: Any) -> Mutation:
    def mutate(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
        return _dump(_replaced(document, path_of(document, rng), value))

    return mutate


def _at(*path: str | int) -> Callable[[Document, np.random.Generator], Path]:
    return lambda _document, _rng: path


def _some_line(field: str) -> Callable[[Document, np.random.Generator], Path]:
    def path(document: Document, rng: np.random.Generator) -> Path:
        return ("lines", int(rng.integers(0, len(document["lines"]))), field)

    return path


def _without(*path: str) -> Mutation:
    def mutate(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
        changed = copy.deepcopy(document)
        target: Any = changed
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]
        return _dump(changed)

    return mutate


def _too_large(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    # Whitespace after the object keeps it valid JSON: only its size is wrong.
    body = _dump(document)
    return body + b" " * (limits.max_payload_bytes + 1 - len(body) + int(rng.integers(0, 64)))


def _truncated(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    body = _dump(document)
    return body[: int(rng.integers(1, len(body) - 1))]


def _not_utf8(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    return b"\xff\xfe" + _dump(document).decode().encode("utf-16-le")


def _plain_text(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    return b"sheet submitted, see attachment"


def _array(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    return _dump([document])


def _scalar(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    return _dump([None, 42, "expense", True][int(rng.integers(0, 4))])


def _long_text(path_of: Callable[[Document, np.random.Generator], Path]) -> Mutation:
    def mutate(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
        text = "lorem ipsum " * (limits.max_string_length // 12 + 2)
        return _dump(_replaced(document, path_of(document, rng), text))

    return mutate


def _duplicate_line(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    changed = copy.deepcopy(document)
    lines = changed["lines"]
    if len(lines) == 1:
        lines.append(dict(lines[0]))
    else:
        first, second = rng.choice(len(lines), size=2, replace=False)
        lines[int(second)]["expense_id"] = lines[int(first)]["expense_id"]
    return _dump(changed)


def _extra_field(document: Document, rng: np.random.Generator, limits: CodecLimits) -> bytes:
    return _dump({**document, "approved_by": "manager"})


_EVERY_TOPIC: Mapping[RejectReason, tuple[Mutation, ...]] = {
    RejectReason.PAYLOAD_TOO_LARGE: (_too_large,),
    RejectReason.INVALID_JSON: (_truncated, _not_utf8, _plain_text),
    RejectReason.NOT_AN_OBJECT: (_array, _scalar),
    RejectReason.WRONG_TYPE: (_set(_at("occurred_at"), 1_700_000_000),),
    RejectReason.INVALID_VALUE: (
        _set(_at("event_id"), "not-a-uuid"),
        _set(_at("occurred_at"), "yesterday"),
    ),
    RejectReason.UNKNOWN_SCHEMA_VERSION: (_set(_at("schema_version"), 99),),
    RejectReason.DATE_IN_FUTURE: (_set(_at("occurred_at"), f"{FAR_FUTURE_DATE}T00:00:00Z"),),
    RejectReason.UNKNOWN_FIELD: (_extra_field,),
    RejectReason.DATE_OUT_OF_RANGE: (_set(_at("occurred_at"), "1899-12-31T23:59:59Z"),),
}

_BY_TOPIC: Mapping[str, Mapping[RejectReason, tuple[Mutation, ...]]] = {
    SHEET_TOPIC: {
        RejectReason.MISSING_FIELD: (_without("sheet_id"), _without("employee_id")),
        RejectReason.WRONG_TYPE: (_set(_at("lines"), "see attachment"),),
        RejectReason.INVALID_VALUE: (_set(_at("sheet_id"), ""),),
        RejectReason.NON_FINITE_AMOUNT: (
            _set(_some_line("amount"), "NaN"),
            _set(_some_line("amount"), "Infinity"),
        ),
        RejectReason.NEGATIVE_AMOUNT: (_set(_some_line("amount"), "-42.50"),),
        RejectReason.AMOUNT_ABOVE_CEILING: (_set(_some_line("amount"), "98000000.00"),),
        RejectReason.AMOUNT_OUT_OF_RANGE: (_set(_some_line("amount"), "1000000000000000000"),),
        RejectReason.AMOUNT_TOO_PRECISE: (_set(_some_line("amount"), "12.3456789012"),),
        RejectReason.DATE_OUT_OF_RANGE: (_set(_some_line("expense_date"), "1899-12-31"),),
        RejectReason.INVALID_CURRENCY: (
            _set(_some_line("currency"), "EURO"),
            _set(_some_line("currency"), "eur"),
        ),
        RejectReason.DATE_IN_FUTURE: (_set(_some_line("expense_date"), FAR_FUTURE_DATE),),
        RejectReason.EMPTY_SHEET: (_set(_at("lines"), []),),
        RejectReason.DUPLICATE_EXPENSE_ID: (_duplicate_line,),
        RejectReason.STRING_TOO_LONG: (_long_text(_some_line("description")),),
    },
    CUSTOMER_TOPIC: {
        RejectReason.MISSING_FIELD: (_without("customer_id"), _without("profile", "age")),
        RejectReason.WRONG_TYPE: (_set(_at("profile", "age"), "forty"),),
        RejectReason.INVALID_VALUE: (_set(_at("profile", "age"), 12),),
        RejectReason.NON_FINITE_AMOUNT: (_set(_at("profile", "annual_income"), "NaN"),),
        RejectReason.NEGATIVE_AMOUNT: (_set(_at("profile", "credit_limit"), "-500.00"),),
        RejectReason.STRING_TOO_LONG: (_long_text(_at("profile", "region")),),
    },
    ACTIVITY_TOPIC: {
        RejectReason.MISSING_FIELD: (_without("statement_id"), _without("days_past_due")),
        RejectReason.WRONG_TYPE: (_set(_at("days_past_due"), "12"),),
        RejectReason.INVALID_VALUE: (_set(_at("days_past_due"), -3),),
        RejectReason.NON_FINITE_AMOUNT: (_set(_at("balance"), "-Infinity"),),
        RejectReason.NEGATIVE_AMOUNT: (_set(_at("payment_amount"), "-25.00"),),
        RejectReason.DATE_IN_FUTURE: (_set(_at("statement_date"), FAR_FUTURE_DATE),),
        RejectReason.STRING_TOO_LONG: (_long_text(_at("statement_id")),),
    },
    LABEL_TOPIC: {
        RejectReason.MISSING_FIELD: (_without("expense_id"), _without("is_fraud")),
        RejectReason.WRONG_TYPE: (_set(_at("is_fraud"), "yes"),),
        RejectReason.INVALID_VALUE: (_set(_at("expense_id"), ""),),
        RejectReason.STRING_TOO_LONG: (_long_text(_at("source")),),
    },
}


def mutations(topic: str) -> Mapping[RejectReason, tuple[Mutation, ...]]:
    """Every way to spoil a message of `topic`, by the reason the codec will give."""
    merged: dict[RejectReason, tuple[Mutation, ...]] = {}
    for reason, ways in (*_EVERY_TOPIC.items(), *_BY_TOPIC[topic].items()):
        merged[reason] = merged.get(reason, ()) + ways
    return merged


def reasons_for(topic: str) -> tuple[RejectReason, ...]:
    """The reasons a malformed message on `topic` can be made to fail with, in enum order."""
    available = mutations(topic)
    return tuple(reason for reason in RejectReason if reason in available)


def spoil(
    topic: str,
    valid: bytes,
    reason: RejectReason,
    rng: np.random.Generator,
    limits: CodecLimits,
) -> bytes:
    """`valid` (a correct message of `topic`) changed so that the codec rejects it for `reason`."""
    ways = mutations(topic)[reason]
    document = json.loads(valid)
    return ways[int(rng.integers(0, len(ways)))](document, rng, limits)
