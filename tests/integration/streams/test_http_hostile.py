"""Hostile requests against a real worker: each is a 4xx in the one JSON error shape, and the
worker stays healthy and still turns a trigger into a retrain request afterwards."""

from __future__ import annotations

import dataclasses
import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from schemas.retrain_requested import RetrainRequested
from tests.conftest import Stack
from tests.factories import API_TOKEN, CODEC, wait_until
from tests.integration.streams.conftest import Workers, read_all
from tests.integration.streams.test_http_api import module_worker

AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
JSON = {"Content-Type": "application/json", **AUTH}
CSV = {"Content-Type": "text/csv", **AUTH}
CSV_HEADER = (
    b"sheet_id,employee,expense_id,amount,currency,category,merchant,date,description,receipt\n"
)
POSTS = (
    "/retraining/trigger",
    "/expenses/upload",
    "/sheets/s-1/analyze",
    "/analysis/bulk",
    "/analysis/train",
    "/models/shadow",
)


@dataclass(frozen=True)
class Hostile:
    """One request and the refusal it must get."""

    name: str
    path: str
    body: bytes | None
    status: int
    reason: str
    field: str | None = None
    method: str = "POST"
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: dict(JSON))


def line(**fields: object) -> dict[str, object]:
    return {
        "expense_id": "x-1",
        "amount": "12.50",
        "currency": "EUR",
        "category": "meals",
        "merchant": "Cafe",
        "expense_date": "2026-01-02",
        "description": "",
        "receipt_ref": None,
        **fields,
    }


def sheet_body(**fields: object) -> bytes:
    return json.dumps(
        {"sheet_id": "s-h", "employee_id": "e-1", "lines": [line()], **fields}
    ).encode()


def multipart(content: bytes) -> bytes:
    return (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n--B--\r\n"
    )


def every_post() -> Iterator[Hostile]:
    """The bodies no POST endpoint can use."""
    deep_arrays = b"[" * 100_000 + b"]" * 100_000
    deep_objects = b'{"a":' * 5_000 + b"1" + b"}" * 5_000
    for path in POSTS:
        yield from (
            Hostile("nested arrays", path, deep_arrays, 422, "too_deep"),
            Hostile("nested objects", path, deep_objects, 422, "too_deep"),
            Hostile("not JSON", path, b"{oops", 400, "invalid_json"),
            Hostile("not UTF-8", path, b'{"a": "\xff"}', 400, "invalid_json"),
            Hostile("NaN", path, b'{"a": NaN}', 400, "invalid_json"),
            Hostile("huge float", path, b'{"a": 1e999}', 422, "out_of_range"),
            Hostile("4,000 digits", path, b'{"a": ' + b"9" * 4_000 + b"}", 422, "out_of_range"),
            Hostile("NUL", path, b'{"a": "x\\u0000y"}', 422, "invalid_text", "a"),
            Hostile("lone surrogate", path, b'{"a": "\\udc80"}', 422, "invalid_text", "a"),
            Hostile("surrogate key", path, b'{"\\ud800": 1}', 422, "invalid_text"),
            Hostile("3 MiB", path, b"[" + b" " * (3 << 20) + b"]", 413, "payload_too_large"),
            Hostile(
                "XML",
                path,
                b"<a/>",
                415,
                "unsupported_media_type",
                headers={"Content-Type": "application/xml", **AUTH},
            ),
            Hostile(
                "form",
                path,
                b"family=delinquency",
                415,
                "unsupported_media_type",
                headers={"Content-Type": "application/x-www-form-urlencoded", **AUTH},
            ),
        )
        if path != "/expenses/upload":  # a sheet list and a sheet are both upload bodies
            yield Hostile("array", path, b"[1, 2]", 422, "not_an_object")
            yield Hostile("null", path, b"null", 422, "not_an_object")
            yield Hostile(
                "unknown field", path, b'{"colour": "red"}', 422, "unknown_field", "colour"
            )
        yield Hostile(
            "non-UTF-8 token",
            path,
            b"{}",
            401,
            "invalid_token",
            headers={"Content-Type": "application/json", "Authorization": "Bearer \xff\xfe"},
        )


def per_endpoint() -> Iterator[Hostile]:
    trigger, bulk = "/retraining/trigger", "/analysis/bulk"
    yield from (
        Hostile(
            "NUL in requested_by",
            trigger,
            b'{"force": true, "requested_by": "a\\u0000b"}',
            422,
            "invalid_text",
            "requested_by",
        ),
        Hostile(
            "surrogate in requested_by",
            trigger,
            b'{"requested_by": "\\udc80"}',
            422,
            "invalid_text",
            "requested_by",
        ),
        Hostile(
            "long requested_by",
            trigger,
            json.dumps({"requested_by": "r" * 201}).encode(),
            422,
            "string_too_long",
            "requested_by",
        ),
        Hostile(
            "empty requested_by",
            trigger,
            b'{"requested_by": ""}',
            422,
            "invalid_value",
            "requested_by",
        ),
        Hostile(
            "number requested_by",
            trigger,
            b'{"requested_by": 7}',
            422,
            "wrong_type",
            "requested_by",
        ),
        Hostile("unknown family", trigger, b'{"family": "cats"}', 422, "unknown_family", "family"),
        Hostile(
            "family list", trigger, b'{"family": ["delinquency"]}', 422, "unknown_family", "family"
        ),
        Hostile("force text", trigger, b'{"force": "yes"}', 422, "wrong_type", "force"),
        Hostile("days 4,000 digits", bulk, b'{"days": ' + b"4" * 4_000 + b"}", 422, "out_of_range"),
        Hostile("days 1e8", bulk, b'{"days": 100000000}', 422, "out_of_range", "days"),
        Hostile("days zero", bulk, b'{"days": 0}', 422, "out_of_range", "days"),
        Hostile("days negative", bulk, b'{"days": -3}', 422, "out_of_range", "days"),
        Hostile("days fraction", bulk, b'{"days": 2.5}', 422, "wrong_type", "days"),
        Hostile("days text", bulk, b'{"days": "3"}', 422, "wrong_type", "days"),
        Hostile("sheet_ids text", bulk, b'{"sheet_ids": "s-1"}', 422, "wrong_type", "sheet_ids"),
        Hostile(
            "sheet_ids NUL",
            bulk,
            b'{"sheet_ids": ["a\\u0000"]}',
            422,
            "invalid_text",
            "sheet_ids.0",
        ),
        Hostile(
            "sheet_ids surrogate",
            bulk,
            b'{"sheet_ids": ["\\ud800"]}',
            422,
            "invalid_text",
            "sheet_ids.0",
        ),
        Hostile(
            "too many sheet_ids",
            bulk,
            json.dumps({"sheet_ids": ["s"] * 5_000}).encode(),
            422,
            "too_many_items",
            "sheet_ids",
        ),
        Hostile(
            "train force number", "/analysis/train", b'{"force": 1}', 422, "wrong_type", "force"
        ),
        Hostile("shadow without family", "/models/shadow", b"{}", 422, "missing_field", "family"),
        Hostile(
            "shadow unknown family",
            "/models/shadow",
            b'{"family": "x", "version": null}',
            422,
            "unknown_family",
            "family",
        ),
        Hostile(
            "shadow NUL version",
            "/models/shadow",
            b'{"family": "expense-fraud", "version": "v\\u0000"}',
            422,
            "invalid_text",
            "version",
        ),
        Hostile(
            "shadow unknown version",
            "/models/shadow",
            b'{"family": "expense-fraud", "version": "../../etc/passwd"}',
            422,
            "model_refused",
            "version",
        ),
        Hostile("analyze NUL id", "/sheets/a%00b/analyze", b"", 422, "invalid_text", "sheet_id"),
        Hostile(
            "analyze long id",
            "/sheets/" + "x" * 3_000 + "/analyze",
            b"",
            422,
            "string_too_long",
            "sheet_id",
        ),
        Hostile(
            "analyze unknown id", "/sheets/%ED%A0%80/analyze", b"", 404, "unknown_sheet", "sheet_id"
        ),
        # uploads
        Hostile(
            "upload NUL",
            "/expenses/upload",
            sheet_body(sheet_id="s\u0000"),
            422,
            "invalid_text",
            "sheet_id",
        ),
        Hostile(
            "upload surrogate",
            "/expenses/upload",
            sheet_body().replace(b'"Cafe"', b'"\\ud83d"'),
            422,
            "invalid_text",
            "lines.0.merchant",
        ),
        Hostile(
            "upload beside sheets",
            "/expenses/upload",
            b'{"sheets": [], "x": 1}',
            422,
            "unknown_field",
            "x",
        ),
        Hostile(
            "upload sheets text",
            "/expenses/upload",
            b'{"sheets": "s"}',
            422,
            "wrong_type",
            "sheets",
        ),
        Hostile(
            "upload unknown field",
            "/expenses/upload",
            sheet_body(colour="red"),
            422,
            "unknown_field",
            "colour",
        ),
        Hostile("upload empty", "/expenses/upload", b"", 422, "missing_field", "sheet_id"),
        Hostile(
            "CSV not UTF-8",
            "/expenses/upload",
            CSV_HEADER + b"s,\xff\xfe\n",
            400,
            "invalid_encoding",
            headers=CSV,
        ),
        Hostile(
            "CSV huge cell",
            "/expenses/upload",
            CSV_HEADER + b's,e,x,1,EUR,c,m,2026-01-02,"' + b"d" * 200_000 + b'",\n',
            422,
            "invalid_csv",
            headers=CSV,
        ),
        Hostile(
            "CSV NUL",
            "/expenses/upload",
            CSV_HEADER + b"s,e,x,1,EUR,c,m,2026-01-02,\x00,\n",
            422,
            "invalid_value",
            "lines.0.description",
            headers=CSV,
        ),
        Hostile(
            "CSV columns", "/expenses/upload", b"sheet_id\ns\n", 400, "csv_columns", headers=CSV
        ),
        Hostile(
            "multipart not UTF-8",
            "/expenses/upload",
            multipart(CSV_HEADER + b"\xff\xfe"),
            400,
            "invalid_encoding",
            headers={"Content-Type": "multipart/form-data; boundary=B", **AUTH},
        ),
        Hostile(
            "multipart garbage",
            "/expenses/upload",
            b"garbage",
            400,
            "invalid_multipart",
            headers={"Content-Type": "multipart/form-data; boundary=B", **AUTH},
        ),
        Hostile(
            "multipart part header not HTTP",
            "/expenses/upload",
            b'--B\r\nContent-Disposition: form-data; name="\xf3\x95\x07"\r\n\r\nx\r\n--B--\r\n',
            400,
            "invalid_multipart",
            headers={"Content-Type": "multipart/form-data; boundary=B", **AUTH},
        ),
        Hostile(
            "multipart no boundary",
            "/expenses/upload",
            b"garbage",
            400,
            "invalid_multipart",
            headers={"Content-Type": "multipart/form-data", **AUTH},
        ),
        # reads, routes and methods
        Hostile(
            "status NUL",
            "/retraining/status?family=a%00b",
            None,
            422,
            "invalid_text",
            "family",
            method="GET",
            headers={},
        ),
        Hostile(
            "status unknown family",
            "/retraining/status?family=cats",
            None,
            422,
            "unknown_family",
            "family",
            method="GET",
            headers={},
        ),
        Hostile(
            "status empty family",
            "/retraining/status?family=",
            None,
            422,
            "unknown_family",
            "family",
            method="GET",
            headers={},
        ),
        Hostile(
            "models NUL query",
            "/models?x=%00",
            None,
            422,
            "invalid_text",
            "x",
            method="GET",
            headers={},
        ),
        Hostile("no route", "/nope", None, 404, "not_found", method="GET", headers={}),
        Hostile(
            "no version report", "/models/v1", None, 404, "not_found", method="GET", headers={}
        ),
        Hostile(
            "GET a POST",
            "/retraining/trigger",
            None,
            405,
            "method_not_allowed",
            method="GET",
            headers={},
        ),
        Hostile(
            "PUT a POST", "/retraining/trigger", b"{}", 405, "method_not_allowed", method="PUT"
        ),
        Hostile("POST metrics", "/metrics", b"", 405, "method_not_allowed"),
        Hostile(
            "DELETE health", "/health", None, 405, "method_not_allowed", method="DELETE", headers={}
        ),
    )


CASES = [*every_post(), *per_endpoint()]


def send(port: int, case: Hostile) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest(case.method, case.path, skip_accept_encoding=True)
        for name, value in case.headers.items():
            conn.putheader(name, value.encode("latin-1"))
        if case.body is not None:
            conn.putheader("Content-Length", str(len(case.body)))
        conn.endheaders(case.body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def hostile_worker(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Workers, int]]:
    with module_worker(stack, tmp_path_factory, "hostile") as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.method} {c.path[:40]} {c.name}")
def test_each_hostile_request_is_a_4xx_with_a_reason(
    hostile_worker: tuple[Workers, int], case: Hostile
) -> None:
    _, port = hostile_worker
    status, headers, raw = send(port, case)
    assert headers.get("Content-Type", "").startswith("application/json"), raw[:300]
    body = json.loads(raw)
    assert (status, body.get("reason"), body.get("field")) == (
        case.status,
        case.reason,
        case.field,
    ), body
    assert set(body) <= {"error", "reason", "field"}
    assert isinstance(body["error"], str)
    assert body["error"]
    if status == 401:
        assert headers["WWW-Authenticate"].startswith("Bearer")
    if status == 405:
        assert headers["Allow"]


def test_the_worker_is_healthy_afterwards_and_still_takes_a_trigger(
    hostile_worker: tuple[Workers, int],
) -> None:
    """Runs after the table (same module worker): no 500 in its log, no crashed agent."""
    workers, port = hostile_worker
    for case in CASES:  # again, so this test stands on its own when run alone
        assert send(port, case)[0] < 500, case.name
    workers.assert_healthy(port)
    body = json.dumps(
        {"family": "expense-fraud", "force": True, "requested_by": "after-hostile-requests"}
    ).encode()
    status, _, raw = send(port, Hostile("trigger", "/retraining/trigger", body, 0, ""))
    assert status == 202, raw
    request_id = json.loads(raw)["request_id"]

    def requested() -> list[RetrainRequested]:
        found = read_all(workers.stack.bootstrap, workers.topic("retrain-requested"))
        events = [CODEC.decode_as(RetrainRequested, value) for _, value in found]
        return [e for e in events if str(e.request_id) == request_id]

    found = wait_until(requested, 60, "the trigger's retrain request")
    assert isinstance(found, list)
    [event] = found
    assert event.requested_by == "after-hostile-requests"
    log = "".join(path.read_text(errors="replace") for path in workers.logs.glob("worker-*.log"))
    assert "Error handling request" not in log  # aiohttp's 500
    assert "the HTTP API could not answer" not in log  # ours
    assert "Crashed" not in log  # an agent, e.g. the policy on a NUL in requested_by
