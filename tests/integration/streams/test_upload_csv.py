"""One upload CSV, two ways in: `POST /expenses/upload` and `retrainer publish --from-file`.

Both read the file with schemas.expense_csv, so the rows they store are the same rows, with the
same event ids; the HTTP API refuses what the parser refuses, naming the line.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from schemas.expense_csv import UPLOAD_CSV_COLUMNS, read_upload
from tests.conftest import Stack
from tests.factories import ROOT, wait_until
from tests.integration.streams.conftest import Workers
from tests.integration.streams.test_http_api import call, module_worker

pytestmark = pytest.mark.integration

# A byte-order mark, CRLF line ends, a quoted line break, formula cells, rows of one sheet
# apart from each other, and a trailing blank spreadsheet row.
UPLOAD = (
    "\ufeff"
    + "\r\n".join(
        [
            ",".join(UPLOAD_CSV_COLUMNS),
            'csv-a,emp-1,csv-a-1,12.50,EUR,meals,Cafe,2025-01-03,"=HYPERLINK(""http://x"")",r1',
            'csv-b,emp-2,csv-b-1,80.00,USD,travel,Air,2025-01-04,"two\r\nlines",',
            "csv-a,emp-1,csv-a-2,7.25,EUR,meals,@Bar,2025-01-05,-taxi,",
            "csv-b,emp-2,csv-b-2,3.00,USD,travel,Air,2025-01-06,\tindented,r2",
            "csv-c,emp-3,csv-c-1,1.00,GBP,office,Shop,2025-01-02,'=1+1,",
            ",,,,,,,,,",
        ]
    )
    + "\r\n"
).encode()
SHEET_IDS = ["csv-a", "csv-b", "csv-c"]

SHEETS_SQL = (
    "SELECT sheet_id, employee_id, submitted_at, line_count, event_id, occurred_at"
    " FROM sheets WHERE sheet_id = ANY($1::text[]) ORDER BY sheet_id"
)
EXPENSES_SQL = (
    "SELECT expense_id, sheet_id, employee_id, amount, currency, category, merchant,"
    " expense_date, description, receipt_ref, submitted_at"
    " FROM expenses WHERE sheet_id = ANY($1::text[]) ORDER BY expense_id"
)


@pytest.fixture(scope="module")
def api(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workers, int]]:
    with module_worker(stack, tmp_path_factory, "csvupload") as running:
        yield running


def _stored(dsn: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            sheets = [dict(r) for r in await conn.fetch(SHEETS_SQL, SHEET_IDS)]
            expenses = [dict(r) for r in await conn.fetch(EXPENSES_SQL, SHEET_IDS)]
            return sheets, expenses
        finally:
            await conn.close()

    return asyncio.run(run())


def _retrainer(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(summary, dict)
    return summary


def test_http_upload_and_publish_from_file_store_the_same_rows(
    api: tuple[Workers, int], stack: Stack, fresh_database_url: str, tmp_path: Path
) -> None:
    workers, port = api
    status, body = call(port, "POST", "/expenses/upload", UPLOAD, content_type="text/csv")
    assert status == 200, body
    assert body["message"] == "Uploaded 3 sheet(s) with 5 expense(s)"
    # The answer is JSON, not a spreadsheet: the cells come back as they were sent.
    descriptions = {line["expense_id"]: line["description"] for line in body["data"]}
    assert descriptions["csv-a-1"] == '=HYPERLINK("http://x")'
    assert descriptions["csv-c-1"] == "=1+1"  # the writer's quote is taken off
    over_http = wait_until(
        lambda: (rows := _stored(workers.database_url))[0] and len(rows[0]) == 3 and rows,
        60,
        "the uploaded sheets to be stored",
    )

    # The same bytes from a file, through the CLI, into topics and a database of their own.
    path = tmp_path / "upload.csv"
    path.write_bytes(UPLOAD)
    other = Workers(stack, fresh_database_url, tmp_path / "logs")
    (tmp_path / "logs").mkdir()
    other.create_topics()
    try:
        env = other.env(0)
        sent = _retrainer(
            [
                "publish",
                "--from-file",
                f"expense-sheet={path}",
                "--bootstrap",
                stack.bootstrap,
                "--topic-prefix",
                f"{other.prefix}-",
            ],
            env,
        )
        assert sent["total_rejected"] == 0, sent
        assert sent["total_sent"] == 3, sent
        stored = _retrainer(
            ["replay", "--from-beginning", "--commit-group", f"{other.prefix}-worker"], env
        )
        assert stored["newly_stored"] == 3, stored
        from_file = _stored(other.database_url)
    finally:
        other.close()

    assert from_file == over_http
    sheets, expenses = from_file
    expected_ids = {
        s.sheet_id: s.payload["event_id"]  # type: ignore[index]
        for s in read_upload(UPLOAD.decode("utf-8-sig"), now=datetime.now(UTC))
    }
    assert {s["sheet_id"]: str(s["event_id"]) for s in sheets} == expected_ids
    by_id = {e["expense_id"]: e for e in expenses}
    assert by_id["csv-a-1"]["description"] == '=HYPERLINK("http://x")'
    assert by_id["csv-a-2"]["merchant"] == "@Bar"
    assert by_id["csv-a-2"]["description"] == "-taxi"
    assert by_id["csv-b-1"]["description"] == "two\r\nlines"
    assert by_id["csv-b-2"]["description"] == "\tindented"
    assert {s["sheet_id"]: s["submitted_at"].isoformat() for s in sheets} == {
        "csv-a": "2025-01-06T00:00:00+00:00",
        "csv-b": "2025-01-07T00:00:00+00:00",
        "csv-c": "2025-01-03T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("rows", "status", "reason", "field", "detail"),
    [
        (
            [
                "mixed,emp-1,mixed-1,1.00,EUR,meals,Cafe,2025-01-03,,",
                "other,emp-9,other-1,1.00,EUR,meals,Cafe,2025-01-03,,",
                "mixed,emp-2,mixed-2,1.00,EUR,meals,Cafe,2025-01-03,,",
            ],
            422,
            "invalid_value",
            "employee",
            "CSV line 2: sheet 'mixed' has rows of more than one employee: 'emp-1' (line 2), "
            "'emp-2' (line 4)",
        ),
        (
            [
                "ok,emp-1,ok-1,1.00,EUR,meals,Cafe,2025-01-03,,",
                "ok,emp-1,ok-2,1.00,EURO,meals,Cafe,2025-01-03,,",
            ],
            422,
            "invalid_currency",
            "lines.1.currency",
            "CSV line 3: ",
        ),
        (["short,emp-1,short-1"], 422, "missing_field", None, "CSV line 2: line 2 has 3 cells"),
        (['q,emp-1,q-1,1.00,EUR,meals,Cafe,2025-01-03,"open,'], 422, "invalid_csv", None, "line 2"),
    ],
)
def test_the_api_refuses_what_the_parser_refuses_naming_the_line(
    api: tuple[Workers, int],
    rows: list[str],
    status: int,
    reason: str,
    field: str | None,
    detail: str,
) -> None:
    _, port = api
    text = "\n".join([",".join(UPLOAD_CSV_COLUMNS), *rows]) + "\n"
    answer_status, body = call(
        port, "POST", "/expenses/upload", text.encode(), content_type="text/csv"
    )
    assert (answer_status, body["reason"], body.get("field")) == (status, reason, field), body
    assert detail in body["error"], body


def test_an_unknown_column_is_refused_not_dropped(api: tuple[Workers, int]) -> None:
    _, port = api
    text = ",".join([*UPLOAD_CSV_COLUMNS, "notes"]) + "\n" + "u,e,u-1,1,EUR,c,m,2025-01-03,,,n\n"
    status, body = call(port, "POST", "/expenses/upload", text.encode(), content_type="text/csv")
    assert (status, body["reason"]) == (400, "csv_columns"), body
    assert "unknown columns 'notes'" in body["error"]
