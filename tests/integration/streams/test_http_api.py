"""The worker's HTTP API on a running worker: auth, bad bodies, trigger, upload, health."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest

from edge.migrations import migrate
from schemas.retrain_requested import RetrainReason, RetrainRequested
from tests.browser import distinct_colours, fetched, visit_page
from tests.conftest import Stack
from tests.factories import API_TOKEN, CODEC, customer, publish, statement, wait_until
from tests.integration.model_versions import add_version
from tests.integration.streams.conftest import Workers, read_all
from tests.unit.trainer.report_inputs import inputs
from trainer import registry
from trainer.report import render_report

TOKEN = API_TOKEN
MUTATIONS = (
    "/retraining/trigger",
    "/expenses/upload",
    "/sheets/s-1/analyze",
    "/analysis/bulk",
    "/analysis/train",
    "/models/shadow",
)


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    token: str | None = TOKEN,
) -> tuple[int, Any]:
    status, _, answer = call_with_headers(port, method, path, body, content_type, token)
    return status, answer


def call_with_headers(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str = "application/json",
    token: str | None = TOKEN,
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    request.add_header("Content-Type", content_type)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http only
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.fixture
def worker(workers: Workers) -> tuple[Workers, int]:
    workers.create_topics()
    return workers, workers.start()


@pytest.fixture(scope="module")
def shared_worker(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Workers, int]]:
    """One worker for the tests that share it: auth, bad bodies and health change nothing it
    keeps; the upload is the only one that stores sheets."""
    with module_worker(stack, tmp_path_factory, "api") as running:
        yield running


@contextmanager
def module_worker(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[tuple[Workers, int]]:
    """A worker with topics and a database of its own, for the tests of one module."""
    database = asyncio.run(_fresh_database(stack, name))
    group = Workers(stack, database, tmp_path_factory.mktemp(f"{name}-worker"))
    group.create_topics()
    try:
        yield group, group.start()
    finally:
        group.close()


async def _fresh_database(stack: Stack, purpose: str) -> str:
    name = f"retrainer_{purpose}_{stack.session_id}"
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = stack.dsn.rpartition("/")[0] + "/" + name
    await migrate(url)
    return url


@pytest.mark.parametrize("path", MUTATIONS)
@pytest.mark.parametrize(
    ("token", "reason"),
    [(None, "missing_token"), ("", "missing_token"), ("wrong", "invalid_token")],
)
def test_mutations_need_the_bearer_token(
    shared_worker: tuple[Workers, int], path: str, token: str | None, reason: str
) -> None:
    _, port = shared_worker
    status, headers, body = call_with_headers(port, "POST", path, b"{}", token=token)
    assert (status, body["reason"]) == (401, reason), body
    assert headers["WWW-Authenticate"].startswith('Bearer realm="retrainer"')


def test_a_blank_token_disables_mutations(workers: Workers) -> None:
    """RETRAINER_API_TOKEN="" once let an empty `Authorization: Bearer ` through."""
    workers.extra_env["RETRAINER_API_TOKEN"] = ""
    workers.create_topics()
    port = workers.start()
    for path in MUTATIONS:
        for token in ("", " ", None):
            status, headers, body = call_with_headers(port, "POST", path, b"{}", token=token)
            assert (status, body["reason"]) == (401, "mutations_disabled"), (path, body)
            assert "RETRAINER_API_TOKEN" in body["error"]
            assert headers["WWW-Authenticate"].startswith("Bearer")
    assert workers.get("/retraining/status")["in_flight"] is None


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status", "reason"),
    [
        ("/retraining/trigger", b"{oops", "application/json", 400, "invalid_json"),
        ("/retraining/trigger", b'{"family": "cats"}', "application/json", 422, "unknown_family"),
        ("/retraining/trigger", b'{"force": "yes"}', "application/json", 422, "wrong_type"),
        ("/retraining/trigger", b"[1]", "application/json", 422, "not_an_object"),
        ("/expenses/upload", b"{oops", "application/json", 400, "invalid_json"),
        ("/expenses/upload", b"[]", "application/json", 422, "not_an_object"),
        (
            "/expenses/upload",
            json.dumps({"sheet_id": "s", "employee_id": "e", "lines": []}).encode(),
            "application/json",
            422,
            "empty_sheet",
        ),
        (
            "/expenses/upload",
            b"sheet_id,employee\ns1,e1\n",
            "text/csv",
            400,
            "csv_columns",
        ),
        (
            "/expenses/upload",
            b"sheet_id,employee,expense_id,amount,currency,category,merchant,date,description,"
            b"receipt\ns1,e1,x1,-3,EUR,meals,Cafe,2026-01-02,,\n",
            "text/csv",
            422,
            "negative_amount",
        ),
    ],
)
def test_bad_bodies_get_400_or_422_with_a_reason(
    shared_worker: tuple[Workers, int],
    path: str,
    body: bytes,
    content_type: str,
    status: int,
    reason: str,
) -> None:
    _, port = shared_worker
    got_status, got = call(port, "POST", path, body, content_type)
    assert (got_status, got["reason"]) == (status, reason), got


def test_trigger_answers_202_and_the_worker_requests_it(worker: tuple[Workers, int]) -> None:
    workers, port = worker
    customers = [customer(i, workers.prefix) for i in range(55)]
    publish(workers.stack.bootstrap, workers.topic("customer-created"), customers[:20])
    publish(
        workers.stack.bootstrap,
        workers.topic("customer-activity"),
        [statement(c.customer_id, m) for c in customers[:20] for m in range(6)],
    )
    wait_until(
        lambda: workers.get("/retraining/status")["counters"]["total_statements"] == 120,
        60,
        "the statements stored",
    )
    # Too little data for an unforced manual request: the policy blocks it with the reason.
    status, body = call(port, "POST", "/retraining/trigger", b'{"family": "delinquency"}')
    assert status == 202
    assert body["status"] == "accepted"
    status, forced = call(
        port, "POST", "/retraining/trigger", b'{"family": "delinquency", "force": true}'
    )
    assert status == 202

    def requested() -> list[RetrainRequested]:
        raw = read_all(workers.stack.bootstrap, workers.topic("retrain-requested"))
        return [CODEC.decode_as(RetrainRequested, value) for _, value in raw]

    found = wait_until(requested, 60, "the forced request")
    assert isinstance(found, list)
    assert [str(r.request_id) for r in found] == [forced["request_id"]]
    assert found[0].reason is RetrainReason.MANUAL
    assert found[0].force is True
    # While it is in flight another trigger gets the same request back instead of a second one.
    wait_until(lambda: workers.get("/retraining/status")["in_flight"] is not None, 30, "the flight")
    status, again = call(port, "POST", "/retraining/trigger", b'{"family": "delinquency"}')
    assert status == 202
    assert again == {
        "request_id": forced["request_id"],
        "family": "delinquency",
        "status": "already_in_flight",
        "message": "a retraining of this family is already under way",
    }


def test_upload_json_and_csv_publish_and_store_the_sheets(
    shared_worker: tuple[Workers, int],
) -> None:
    # The module's worker: its other tests store nothing (their uploads are refused), so the
    # expense-fraud counters below are this test's alone.
    workers, port = shared_worker
    sheet_json = {
        "sheet_id": "upload-1",
        "employee_id": "e-1",
        "lines": [
            {
                "expense_id": f"upload-1-{i}",
                "amount": "12.50",
                "currency": "EUR",
                "category": "meals",
                "merchant": "Cafe",
                "expense_date": "2026-01-02",
                "description": "",
                "receipt_ref": None,
            }
            for i in range(3)
        ],
    }
    status, body = call(port, "POST", "/expenses/upload", json.dumps(sheet_json).encode())
    assert status == 200, body
    assert body["message"] == "Uploaded 1 sheet(s) with 3 expense(s)"
    assert body["training_status"] == "No training needed"
    assert body["sheet_info"] == [
        {"sheet_id": "upload-1", "employee_id": "e-1", "expenses": 3, "totals": {"EUR": "37.50"}}
    ]
    assert len(body["data"]) == 3

    rows = [
        "sheet_id,employee,expense_id,amount,currency,category,merchant,date,description,receipt"
    ]
    for n in range(10):
        rows += [
            f"csv-{n},e-{n},csv-{n}-{i},{10 + i}.00,USD,travel,Air,2026-01-03,,r{n}{i}"
            for i in range(6)
        ]
    status, body = call(
        port, "POST", "/expenses/upload", "\n".join(rows).encode(), content_type="text/csv"
    )
    assert status == 200, body
    assert body["message"] == "Uploaded 10 sheet(s) with 60 expense(s)"
    assert body["training_status"] == "Retrain requested: New sheets: 11"
    status_body = workers.get("/retraining/status?family=expense-fraud", port)
    assert status_body["new_sheets_count"] == 11


def test_health_and_metrics(shared_worker: tuple[Workers, int]) -> None:
    workers, port = shared_worker
    workers.assert_healthy(port)
    metrics = workers.get("/metrics", port)
    for name in (
        "retrainer_events_consumed_total",
        "retrainer_policy_counted_events",
        "retrainer_requests_in_flight",
        "retrainer_policy_decisions_total",
    ):
        assert name in metrics


def _get_page(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - http only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def _store_report(database_url: str, version: str, page: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await registry.save_report(conn, version, page)
    finally:
        await conn.close()


def test_a_versions_report_is_served_as_a_page_a_browser_shows(
    shared_worker: tuple[Workers, int],
) -> None:
    workers, port = shared_worker
    with_report = asyncio.run(add_version(workers.database_url))
    without = asyncio.run(add_version(workers.database_url))
    page = render_report(inputs(version=with_report, drift={"amount": 0.25, "hour": 0.05}))
    asyncio.run(_store_report(workers.database_url, with_report, page))

    status, headers, body = _get_page(port, f"/models/{with_report}/report")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert body.decode() == page
    # Served with its Content-Security-Policy, the page still shows without a single error.
    visit = visit_page(f"http://127.0.0.1:{port}/models/{with_report}/report")
    assert visit.problems == [], visit.problems
    assert fetched(visit) == [f"http://127.0.0.1:{port}/models/{with_report}/report"]
    assert distinct_colours(visit.screenshot) >= 500

    for version, reason in (("no-such-version", "unknown_version"), (without, "no_report")):
        status, headers, body = _get_page(port, f"/models/{version}/report")
        assert status == 404, version
        assert headers["Content-Type"].startswith("application/json")
        answer = json.loads(body)
        assert answer["reason"] == reason
        assert answer["field"] == "version"
        assert version in answer["error"]
