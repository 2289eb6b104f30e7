"""The HTTP API's input rules without a worker: token, bounded JSON, request models, middleware."""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from retrainer.cli import app as cli
from schemas.base import ModelFamily
from streams.settings import MIN_API_TOKEN_LENGTH, StreamsSettings
from streams.web.auth import check_bearer
from streams.web.bodies import (
    MAX_JSON_DEPTH,
    BulkBody,
    ShadowBody,
    TriggerBody,
    parse_family,
    parse_json,
    validate_body,
)
from streams.web.errors import ApiError, json_errors

TOKEN = SecretStr("0123456789abcdef-token")
LIMIT = 2000


def refused(call: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


# -- the token -----------------------------------------------------------------------------------


@pytest.mark.parametrize("blank", ["", " ", "\t\n "])
def test_a_blank_token_counts_as_unset(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("RETRAINER_API_TOKEN", blank)
    assert StreamsSettings().api_token is None
    error = refused(lambda: check_bearer(StreamsSettings().api_token, "Bearer "))
    assert (error.status, error.reason) == (401, "mutations_disabled")
    assert error.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("short", "has 5 characters; it needs at least 16"),
        ("x" * (MIN_API_TOKEN_LENGTH - 1), "needs at least 16"),
        ("0123456789 abcdef", "printable ASCII without spaces"),
        ("0123456789abcdéf", "printable ASCII without spaces"),
    ],
)
def test_a_weak_token_stops_the_start_and_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, token: str, says: str
) -> None:
    monkeypatch.setenv("RETRAINER_API_TOKEN", token)
    with pytest.raises(ValidationError) as caught:
        StreamsSettings()
    message = str(caught.value)
    assert "RETRAINER_API_TOKEN" in message
    assert says in message
    assert token not in message


def test_the_worker_command_names_a_short_token_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_API_TOKEN", "change-me")
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 2
    assert "RETRAINER_API_TOKEN has 9 characters; it needs at least 16" in result.output
    assert "change-me" not in result.output
    assert "Traceback" not in result.output


def test_a_token_is_read_without_surrounding_whitespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_API_TOKEN", f"  {TOKEN.get_secret_value()}\n")
    token = StreamsSettings().api_token
    assert token is not None
    assert token.get_secret_value() == TOKEN.get_secret_value()


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "missing_token"),
        ("Bearer", "missing_token"),
        ("Bearer ", "missing_token"),
        ("Bearer    ", "missing_token"),
        ("Basic " + TOKEN.get_secret_value(), "missing_token"),
        ("Bearer wrong", "invalid_token"),
        ("Bearer " + TOKEN.get_secret_value()[:-1], "invalid_token"),
        ("Bearer " + TOKEN.get_secret_value() + "x", "invalid_token"),
        # aiohttp hands a header that is not UTF-8 over surrogate-escaped
        ("Bearer \udcff\udcfe", "invalid_token"),
    ],
)
def test_a_missing_or_wrong_token_is_refused_with_a_challenge(header: str, reason: str) -> None:
    error = refused(lambda: check_bearer(TOKEN, header))
    assert (error.status, error.reason) == (401, reason)
    assert error.headers["WWW-Authenticate"].startswith('Bearer realm="retrainer"')
    if reason == "invalid_token":
        assert 'error="invalid_token"' in error.headers["WWW-Authenticate"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_token_passes(scheme: str) -> None:
    check_bearer(TOKEN, f"{scheme} {TOKEN.get_secret_value()}")


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("streams.web.auth.hmac.compare_digest", spy)
    check_bearer(TOKEN, f"Bearer {TOKEN.get_secret_value()}")
    refused(lambda: check_bearer(TOKEN, "Bearer guess"))
    secret = TOKEN.get_secret_value().encode()
    assert compared == [(secret, secret), (b"guess", secret)]


# -- bounded JSON --------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("raw", "status", "reason", "field"),
    [
        (nested(100_000), 422, "too_deep", None),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, 422, "too_deep", None),
        (b'{"a": ' + nested(MAX_JSON_DEPTH) + b"}", 422, "too_deep", "a." + ".".join(["0"] * 9)),
        (b'{"days": ' + b"9" * 4_000 + b"}", 422, "out_of_range", None),
        (b'{"days": -' + b"9" * 19 + b"}", 422, "out_of_range", None),
        (b'{"x": 1e999}', 422, "out_of_range", None),
        (b'{"x": -1e999}', 422, "out_of_range", None),
        (b'{"x": NaN}', 400, "invalid_json", None),
        (b'{"x": -Infinity}', 400, "invalid_json", None),
        (b"{oops", 400, "invalid_json", None),
        (b"\xff\xfe\x00{", 400, "invalid_json", None),
        (b'{"x": "\xc3"}', 400, "invalid_json", None),
        (b'{"a": {"b": ["ok", "n\\u0000l"]}}', 422, "invalid_text", "a.b.1"),
        (b'{"a": "\\ud800"}', 422, "invalid_text", "a"),
        (b'{"a": "\xed\xa0\x80"}', 422, "invalid_text", "a"),  # a surrogate, UTF-8 encoded
        (b'{"a": {"\\udfff": 1}}', 422, "invalid_text", "a"),
        (b'{"\\u0000": 1}', 422, "invalid_text", None),
        (json.dumps({"a": "x" * (LIMIT + 1)}).encode(), 422, "string_too_long", "a"),
    ],
)
def test_hostile_json_is_refused_with_a_reason(
    raw: bytes, status: int, reason: str, field: str | None
) -> None:
    error = refused(lambda: parse_json(raw, LIMIT))
    assert (error.status, error.reason, error.field) == (status, reason, field), error.detail
    body = error.body()
    assert set(body) <= {"error", "reason", "field"}
    json.dumps(body, ensure_ascii=False).encode()  # sendable: no lone surrogate echoed back


def test_json_within_the_bounds_is_read() -> None:
    within = b'{"a": ' + nested(MAX_JSON_DEPTH - 1) + b"}"
    assert parse_json(within, LIMIT)["a"] == json.loads(nested(MAX_JSON_DEPTH - 1))
    value = parse_json(
        json.dumps({"n": 10**18 - 1, "f": 1.5e300, "s": "é" * LIMIT}).encode(), LIMIT
    )
    assert value == {"n": 10**18 - 1, "f": 1.5e300, "s": "é" * LIMIT}


# -- request models ------------------------------------------------------------------------------


def test_defaults_and_a_full_trigger() -> None:
    assert validate_body(TriggerBody, {}) == TriggerBody(
        family=ModelFamily.DELINQUENCY, force=False, requested_by="api"
    )
    body = validate_body(
        TriggerBody, {"family": "expense-fraud", "force": True, "requested_by": "ops"}
    )
    assert (body.family, body.force, body.requested_by) == (ModelFamily.EXPENSE_FRAUD, True, "ops")
    assert validate_body(BulkBody, {"days": 3650}).days == 3650
    assert validate_body(ShadowBody, {"family": "delinquency"}).version is None


@pytest.mark.parametrize(
    ("model", "value", "reason", "field"),
    [
        (TriggerBody, [], "not_an_object", None),
        (TriggerBody, None, "not_an_object", None),
        (TriggerBody, "text", "not_an_object", None),
        (TriggerBody, {"famly": "delinquency"}, "unknown_field", "famly"),
        (TriggerBody, {"family": "cats"}, "unknown_family", "family"),
        (TriggerBody, {"family": 3}, "unknown_family", "family"),
        (TriggerBody, {"family": None}, "unknown_family", "family"),
        (TriggerBody, {"force": "yes"}, "wrong_type", "force"),
        (TriggerBody, {"force": 1}, "wrong_type", "force"),
        (TriggerBody, {"requested_by": 12}, "wrong_type", "requested_by"),
        (TriggerBody, {"requested_by": ""}, "invalid_value", "requested_by"),
        (TriggerBody, {"requested_by": "x" * 201}, "string_too_long", "requested_by"),
        (BulkBody, {"days": 0}, "out_of_range", "days"),
        (BulkBody, {"days": -5}, "out_of_range", "days"),
        (BulkBody, {"days": 100_000_000}, "out_of_range", "days"),
        (BulkBody, {"days": 2.5}, "wrong_type", "days"),
        (BulkBody, {"days": True}, "wrong_type", "days"),
        (BulkBody, {"days": "3"}, "wrong_type", "days"),
        (BulkBody, {"sheet_ids": "s1"}, "wrong_type", "sheet_ids"),
        (BulkBody, {"sheet_ids": [1]}, "wrong_type", "sheet_ids.0"),
        (BulkBody, {"sheet_ids": [""]}, "invalid_value", "sheet_ids.0"),
        (BulkBody, {"sheet_ids": ["s"] * 1001}, "too_many_items", "sheet_ids"),
        (ShadowBody, {}, "missing_field", "family"),
        (ShadowBody, {"family": "expense-fraud", "version": 5}, "wrong_type", "version"),
    ],
)
def test_bodies_are_closed_and_strictly_typed(
    model: type[Any], value: Any, reason: str, field: str | None
) -> None:
    error = refused(lambda: validate_body(model, value))
    assert (error.status, error.reason, error.field) == (422, reason, field), error.detail


def test_an_unknown_family_reads_the_same_in_a_body_and_a_query() -> None:
    in_body = refused(lambda: validate_body(TriggerBody, {"family": "cats"}))
    in_query = refused(lambda: parse_family("cats"))
    assert in_body.body() == in_query.body()
    assert in_body.body() == {
        "error": "unknown model family 'cats'; known: expense-fraud, delinquency",
        "reason": "unknown_family",
        "field": "family",
    }


# -- the middleware ------------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def refuse(request: web.Request) -> web.Response:
        raise ApiError(422, "invalid_value", "no", "x")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(dict(request.match_info))

    app = web.Application(middlewares=[json_errors(LIMIT)])
    app.router.add_get("/boom", boom)
    app.router.add_post("/refuse", refuse)
    app.router.add_get("/items/{item}", echo)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield str(test_server.make_url(""))
    finally:
        await test_server.close()


@pytest.mark.parametrize(
    ("method", "path", "status", "reason"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("DELETE", "/refuse", 405, "method_not_allowed"),
        ("POST", "/refuse", 422, "invalid_value"),
        ("GET", "/boom", 500, "internal_error"),
        ("GET", "/items/a%00b", 422, "invalid_text"),
        ("GET", "/items/ok?q=a%00b", 422, "invalid_text"),
        ("GET", "/items/" + "x" * (LIMIT + 1), 422, "string_too_long"),
    ],
)
async def test_every_error_leaves_in_one_json_shape(
    server: str, method: str, path: str, status: int, reason: str
) -> None:
    async with ClientSession() as session, session.request(method, server + path) as response:
        assert response.status == status
        assert response.content_type == "application/json"
        body = await response.json()
    assert body["reason"] == reason
    assert isinstance(body["error"], str)
    assert body["error"]
    assert set(body) <= {"error", "reason", "field"}
    if status == 405:
        assert response.headers["Allow"] == "POST"


async def test_good_requests_pass_the_middleware(server: str) -> None:
    async with ClientSession() as session, session.get(server + "/items/a%20b") as response:
        assert response.status == 200
        assert await response.json() == {"item": "a b"}
