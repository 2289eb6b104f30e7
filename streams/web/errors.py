"""The one error shape of the HTTP API, and the middleware that answers with it.

Every refusal leaves as `{"error": <for people>, "reason": <for machines>, "field": <where, when
it is one field>}`: the views' own, aiohttp's routing errors (404, 405, 413) and a dependency
that is down (503) alike.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import aiokafka.errors
from aiohttp import web
from aiohttp.typedefs import Middleware
from confluent_kafka import KafkaException
from pydantic import BaseModel, ConfigDict, Field

from edge.retry import TRANSIENT_ERRORS

log = logging.getLogger(__name__)


class ErrorAnswer(BaseModel):
    """Every error the API answers with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error: str = Field(description="what went wrong, for people")
    reason: str = Field(description="what went wrong, for machines (snake_case)")
    field: str | None = Field(
        default=None, description="the field, query parameter or path parameter at fault"
    )


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


OUTAGES: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, aiokafka.errors.KafkaError)
"""Failures that mean a dependency is down right now, not that the request is wrong."""


def unavailable(exc: BaseException) -> str:
    what = "Kafka" if isinstance(exc, KafkaException | aiokafka.errors.KafkaError) else "PostgreSQL"
    return f"{what} is unreachable right now ({type(exc).__name__}); try again shortly"


def outage_response(request: web.Request, exc: BaseException) -> web.Response:
    """503 with Retry-After: PostgreSQL or Kafka is unreachable, a retry later will do."""
    log.warning("%s %s: dependency unavailable: %r", request.method, request.path, exc)
    return web.json_response(
        error_body(unavailable(exc), "dependency_unavailable"),
        status=503,
        headers={"Retry-After": "5"},
    )


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
            return outage_response(request, exc)
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
