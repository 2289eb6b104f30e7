"""What the worker's HTTP API accepts: bounded JSON bodies read into closed request models.

Bodies are read with bounds (size, nesting, digits, text that PostgreSQL can store) and
validated into request models that refuse unknown fields; a refusal is an `ApiError`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Final, Protocol, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from schemas.base import ModelFamily
from streams.web.errors import ApiError, check_text, shown, text_problem

MAX_JSON_DEPTH: Final = 10
"""Deepest nesting of arrays and objects in a body; an upload needs 5 (sheets, lines, line)."""
MAX_INTEGER_DIGITS: Final = 18
"""Longest integer literal in a body (a sign aside): far beyond any number the API takes."""
MAX_LABEL_LENGTH: Final = 200
"""Longest `requested_by`, model version or other short label."""
MAX_SHEET_IDS: Final = 1000
"""Most sheets one bulk analysis names, and most sheets one upload carries."""
MAX_DAYS: Final = 3650
"""Longest look-back of a bulk analysis, in days."""

KNOWN_FAMILIES: Final = ", ".join(f.value for f in ModelFamily)


# -- JSON bodies ---------------------------------------------------------------------------------


def _integer(literal: str) -> int:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ApiError(422, "out_of_range", f"numbers may have at most {MAX_INTEGER_DIGITS} digits")
    return int(literal)


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ApiError(422, "out_of_range", f"the number {shown(literal)} is too large")
    return number


def _constant(name: str) -> float:
    raise ApiError(400, "invalid_json", f"{name} is not a JSON number")


def parse_json(raw: bytes, max_string_length: int) -> Any:
    """Bytes to a JSON value, bounded: nesting, digits, finite numbers, storable text."""
    try:
        value = json.loads(raw, parse_int=_integer, parse_float=_finite, parse_constant=_constant)
    except RecursionError as exc:
        raise ApiError(
            422, "too_deep", f"the body is nested deeper than {MAX_JSON_DEPTH} levels"
        ) from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise ApiError(400, "invalid_json", f"the body is not JSON: {exc}") from exc
    check_tree(value, max_string_length)
    return value


def check_tree(value: Any, max_string_length: int) -> None:
    """Refuse a JSON value nested too deep or holding text PostgreSQL cannot store."""
    pending: list[tuple[Any, str, int]] = [(value, "", 0)]
    while pending:
        item, path, depth = pending.pop()
        if isinstance(item, str):
            check_text(item, path or None, max_string_length)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth >= MAX_JSON_DEPTH:
            raise ApiError(
                422,
                "too_deep",
                f"the body is nested deeper than {MAX_JSON_DEPTH} levels",
                path or None,
            )
        children = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in children:
            if isinstance(key, str):
                problem = text_problem(key, max_string_length)
                if problem is not None:
                    raise ApiError(422, problem[0], f"a key: {problem[1]}", path or None)
            pending.append((child, f"{path}.{key}" if path else str(key), depth + 1))


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


class HasBody(Protocol):
    """What the body readers need of a request (Faust's and aiohttp's both have it)."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self) -> bytes: ...


def declared_type(request: HasBody) -> str | None:
    """The body's media type as sent (lower case, no parameters), None when not sent."""
    header = request.headers.get("Content-Type")
    if header is None:
        return None
    return header.partition(";")[0].strip().lower()


async def read_json(request: HasBody, max_string_length: int) -> Any:
    """The body as JSON; an empty body reads as `{}`. Not JSON by its Content-Type: 415."""
    raw = await request.read()
    if not raw.strip():
        return {}
    media = declared_type(request)
    if media is not None and not is_json(media):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {shown(media)}",
            headers={"Accept-Post": "application/json"},
        )
    return parse_json(raw, max_string_length)


# -- request models ------------------------------------------------------------------------------


def unknown_family(value: object) -> str:
    return f"unknown model family {shown(value)}; known: {KNOWN_FAMILIES}"


def parse_family(value: str, field: str = "family") -> ModelFamily:
    """The family named by a query parameter; 422 `unknown_family` as in every body."""
    try:
        return ModelFamily(value)
    except ValueError as exc:
        raise ApiError(422, "unknown_family", unknown_family(value), field) from exc


def _family(value: object) -> object:
    if isinstance(value, ModelFamily):
        return value
    if isinstance(value, str):
        try:
            return ModelFamily(value)
        except ValueError:
            pass  # answered below, as any other unknown value
    raise PydanticCustomError("unknown_family", unknown_family(value))


Family = Annotated[ModelFamily, BeforeValidator(_family)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=MAX_LABEL_LENGTH)]
SheetId = Annotated[str, StringConstraints(min_length=1)]
"""As long as the codec lets an id be (every string of a body is bounded by max_string_length)."""


class RequestBody(BaseModel):
    """A JSON request body: closed (an unknown field is refused) and strictly typed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TriggerBody(RequestBody):
    """`POST /retraining/trigger`."""

    family: Family = ModelFamily.DELINQUENCY
    force: bool = False
    requested_by: Label = "api"


class AnalyzeBody(RequestBody):
    """`POST /sheets/{id}/analyze`: takes no fields (an empty body or `{}`)."""


class BulkBody(RequestBody):
    """`POST /analysis/bulk`: the sheets to analyse, or the last `days` days of them."""

    sheet_ids: list[SheetId] | None = Field(default=None, max_length=MAX_SHEET_IDS)
    days: int = Field(default=30, ge=1, le=MAX_DAYS)


class TrainBody(RequestBody):
    """`POST /analysis/train`."""

    force: bool = False


class StatusQuery(RequestBody):
    """`GET /retraining/status?family=`: the family answered for; the others come under
    `families`."""

    family: Family = ModelFamily.DELINQUENCY


SheetPayload = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": "object",
            "description": "an expense sheet as schemas/json/expense-sheet.json describes it; "
            "event_id, occurred_at, schema_version and submitted_at may be left out",
        }
    ),
]


class SheetsBody(RequestBody):
    """`POST /expenses/upload` as JSON: `{"sheets": [...]}` (one sheet object, or a bare list
    of them, is taken as well); each sheet is decoded by the event codec."""

    sheets: list[SheetPayload] = Field(max_length=MAX_SHEET_IDS)


class ShadowBody(RequestBody):
    """`POST /models/shadow`: `version` null (or absent) stops shadow scoring."""

    family: Family
    version: Label | None = None


_REASONS: Final = {
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "string_too_long": "string_too_long",
    "string_too_short": "invalid_value",
    "too_long": "too_many_items",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "unknown_family": "unknown_family",
}
_OWN_ERRORS: Final = frozenset({"unknown_family"})


def refusal(exc: PydanticValidationError, model: type[BaseModel]) -> ApiError:
    """The first problem pydantic found (an unknown field before all), in the API's shape."""
    errors = exc.errors(include_url=False, include_input=False)
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = ".".join(str(part) for part in first["loc"]) or None
    kind = str(first["type"])
    reason = _REASONS.get(kind) or ("wrong_type" if kind.endswith("_type") else "invalid_value")
    if kind == "extra_forbidden":
        known = ", ".join(model.model_fields) or "none"
        detail = f"unknown field {shown(field)}; this endpoint takes: {known}"
    elif field is None or kind in _OWN_ERRORS:
        detail = str(first["msg"])  # ours already say what they are about
    else:
        detail = f"{field}: {first['msg']}"
    return ApiError(422, reason, detail, field)


Body = TypeVar("Body", bound=RequestBody)


def validate_body(model: type[Body], value: Any) -> Body:
    """A parsed JSON value as `model`, or ApiError."""
    if not isinstance(value, dict):
        raise ApiError(422, "not_an_object", "the body must be a JSON object")
    try:
        return model.model_validate(value)
    except PydanticValidationError as exc:
        raise refusal(exc, model) from exc


async def read_body(request: HasBody, model: type[Body], max_string_length: int) -> Body:
    """The request's JSON body as `model`, or ApiError with the reason."""
    return validate_body(model, await read_json(request, max_string_length))
