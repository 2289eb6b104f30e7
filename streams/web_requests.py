"""What the worker's HTTP API accepts and how it refuses the rest.

Bodies are read with bounds (size, nesting, digits, text that PostgreSQL can store), validated
into closed request models, and every refusal, routing errors included, is one JSON shape:
`{"error": <for people>, "reason": <for machines>, "field": <where, when it is one field>}`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Final, Protocol, TypeVar

import aiokafka.errors
import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware
from confluent_kafka import KafkaException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, StringConstraints
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from schemas.base import ModelFamily

log = logging.getLogger(__name__)

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


class ApiError(Exception):
    """A request the API refuses: answered with `status` and the one error shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        detail: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, reason, detail, field)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.detail, self.reason, self.field)

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def error_body(detail: str, reason: str, field: str | None = None) -> dict[str, Any]:
    """The one error shape; `field` only when the problem is one field."""
    body: dict[str, Any] = {"error": detail, "reason": reason}
    if field is not None:
        body["field"] = field
    return body


def shown(value: object, limit: int = 60) -> str:
    """A value quoted for an error message: printable ASCII, cut short, safe to send back."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# -- text ----------------------------------------------------------------------------------------


def text_problem(value: str, max_length: int) -> tuple[str, str] | None:
    """(reason, detail) when `value` cannot be stored as PostgreSQL text or is too long."""
    if len(value) > max_length:
        return "string_too_long", f"text may have at most {max_length} characters"
    if "\x00" in value:
        return "invalid_text", "text must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid_text", "text must not contain lone surrogates (it is not valid Unicode)"
    return None


def check_text(value: str, field: str | None, max_length: int) -> None:
    problem = text_problem(value, max_length)
    if problem is not None:
        raise ApiError(422, problem[0], problem[1], field)


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


# -- every answer ---------------------------------------------------------------------------------

_HTTP_REASONS: Final = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_url(request: web.Request, max_string_length: int) -> None:
    """Path parameters and query values must be storable text, like every string in a body."""
    for name, value in request.match_info.items():
        check_text(value, name, max_string_length)
    for name, value in request.query.items():
        check_text(name, None, max_string_length)
        check_text(value, name, max_string_length)


OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    KafkaException,
    aiokafka.errors.KafkaError,
)
"""Failures that mean a dependency is down right now, not that the request is wrong."""


def unavailable(exc: BaseException) -> str:
    what = "Kafka" if isinstance(exc, KafkaException | aiokafka.errors.KafkaError) else "PostgreSQL"
    return f"{what} is unreachable right now ({type(exc).__name__}); try again shortly"


def json_errors(max_string_length: int) -> Middleware:
    """aiohttp middleware: refusals and routing errors answered in the one JSON shape."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            check_url(request, max_string_length)
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return http_error(request, exc)
        except OUTAGES as exc:
            # PostgreSQL or Kafka is unreachable: a retry later will do.
            log.warning("%s %s: dependency unavailable: %r", request.method, request.path, exc)
            return web.json_response(
                error_body(unavailable(exc), "dependency_unavailable"),
                status=503,
                headers={"Retry-After": "5"},
            )
        except Exception:
            log.exception("the HTTP API could not answer %s %s", request.method, request.path)
            return web.json_response(
                error_body("the worker could not answer; its log has the cause", "internal_error"),
                status=500,
            )

    return middleware


def http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no route, wrong method, body too large …) as JSON."""
    reason = _HTTP_REASONS.get(exc.status, "http_error")
    headers = {k: v for k, v in exc.headers.items() if k in ("Allow",)}
    if exc.status == 404:
        detail = f"no endpoint at {shown(request.rel_url.path)}"
    elif exc.status == 405:
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow', '')}"
    else:  # 413 says "Maximum request body size N exceeded."
        detail = exc.text or exc.reason
    return web.json_response(error_body(detail, reason), status=exc.status, headers=headers)


# -- the bearer token ----------------------------------------------------------------------------

_CHALLENGE: Final = 'Bearer realm="retrainer"'


def check_bearer(token: SecretStr | None, authorization: str) -> None:
    """Refuse (401 with a `WWW-Authenticate` challenge) unless `authorization` carries `token`.

    The configured token is never blank (settings read a blank one as unset), and the comparison
    takes the same time wherever the given token first differs.
    """
    if token is None:
        raise ApiError(
            401,
            "mutations_disabled",
            "mutations are disabled until RETRAINER_API_TOKEN is set",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    scheme, _, given = authorization.strip().partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise ApiError(
            401,
            "missing_token",
            "send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    # Header text arrives surrogate-escaped when it is not UTF-8: compare its bytes as sent.
    sent = given.encode("utf-8", "surrogatepass")
    if not hmac.compare_digest(sent, token.get_secret_value().encode("utf-8")):
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not the one this worker was given",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )
