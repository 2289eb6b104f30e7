"""The one upload CSV parser (schemas.expense_csv): what a file reads as, what it refuses."""

from __future__ import annotations

import ast
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schemas import ExpenseSheetSubmitted, RejectReason
from schemas.expense_csv import (
    UPLOAD_CSV_COLUMNS,
    UPLOAD_NAMESPACE,
    CsvFault,
    UploadCsvError,
    UploadCsvWriter,
    UploadedSheet,
    decode_text,
    neutralised,
    read_upload,
    restored,
)
from tests.unit.schemas.strategies import expense_sheets, make_codec

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
HEADER = ",".join(UPLOAD_CSV_COLUMNS)
ROOT = Path(__file__).resolve().parents[3]


def row(
    sheet: str = "S1",
    employee: str = "E1",
    expense: str = "X1",
    amount: str = "12.50",
    day: str = "2025-01-03",
    description: str = "Lunch",
    receipt: str = "",
) -> str:
    return f"{sheet},{employee},{expense},{amount},EUR,meals,Cafe,{day},{description},{receipt}"


def upload(*rows: str, header: str = HEADER, end: str = "\n") -> str:
    return end.join([header, *rows]) + end


def read(text: str, now: datetime = NOW) -> list[UploadedSheet]:
    return read_upload(text, now=now)


def decoded(sheet: UploadedSheet) -> ExpenseSheetSubmitted:
    return make_codec().decode_as(ExpenseSheetSubmitted, sheet.message())


def only(text: str, now: datetime = NOW) -> UploadedSheet:
    (sheet,) = read(text, now)
    return sheet


# --- what a file reads as ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://x";"click")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        "\tindented",
        "\rcarriage",
        "-3.50",
        "plain",
    ],
)
def test_formula_cells_are_stored_as_they_are(cell: str) -> None:
    quoted = '"' + cell.replace('"', '""') + '"'
    sheet = decoded(only(upload(row(description=quoted))))
    assert sheet.lines[0].description == cell


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("LF", upload(row(), row(expense="X2"))),
        ("CRLF", upload(row(), row(expense="X2"), end="\r\n")),
        ("BOM", "\ufeff" + upload(row(), row(expense="X2"))),
        ("BOM and CRLF", "\ufeff" + upload(row(), row(expense="X2"), end="\r\n")),
        ("padded header", upload(row(), row(expense="X2"), header=HEADER.replace(",", " , "))),
        ("blank rows", upload("", row(), ",,,,,,,,,", "  ", row(expense="X2"), "")),
        (
            "columns in another order",
            "\n".join(
                [
                    ",".join(reversed(UPLOAD_CSV_COLUMNS)),
                    ",".join(reversed(row().split(","))),
                    ",".join(reversed(row(expense="X2").split(","))),
                ]
            ),
        ),
    ],
)
def test_the_same_sheet_whatever_the_file_dialect(name: str, text: str) -> None:
    plain = only(upload(row(), row(expense="X2")))
    sheet = only(text)
    assert sheet.payload == plain.payload, name


def test_quoted_line_breaks_stay_in_the_cell_and_lines_are_counted_in_the_file() -> None:
    text = upload(row(description='"first\r\nsecond"'), row(expense="X2", description='"a\nb"'))
    text += row(expense="X3") + "\n"
    sheet = only(text)
    assert [line["description"] for line in sheet.payload["lines"]] == [  # type: ignore[index]
        "first\r\nsecond",
        "a\nb",
        "Lunch",
    ]
    assert sheet.rows == (2, 4, 6)
    assert sheet.line_of("lines.2.amount") == 6
    assert sheet.line_of("employee_id") == 2


def test_our_own_quote_is_taken_off_and_nothing_else() -> None:
    sheet = only(
        upload(row(description="'=1+1"), row(expense="X2", description="'s-Hertogenbosch"))
    )
    assert [line["description"] for line in sheet.payload["lines"]] == [  # type: ignore[index]
        "=1+1",
        "'s-Hertogenbosch",
    ]


def test_sheets_in_first_seen_order_with_rows_that_need_not_be_adjacent() -> None:
    sheets = read(upload(row("B"), row("A", expense="X2"), row("B", expense="X3")))
    assert [(s.sheet_id, s.rows) for s in sheets] == [("B", (2, 4)), ("A", (3,))]


def test_empty_cells_read_as_the_contract_wants() -> None:
    line = decoded(only(upload(row(description="", receipt="")))).lines[0]
    assert line.description == ""
    assert line.receipt_ref is None
    assert decoded(only(upload(row(receipt="R1")))).lines[0].receipt_ref == "R1"


# --- event ids and submission time -----------------------------------------------------------


def test_event_ids_are_derived_from_the_sheet_id_and_content() -> None:
    text = upload(row(), row(expense="X2"))
    first, again = only(text), only(text, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert first.payload == again.payload
    event_id = uuid.UUID(first.payload["event_id"])  # type: ignore[index]
    assert event_id.version == 5
    for changed in (
        upload(row(employee="E2"), row(employee="E2", expense="X2")),
        upload(row(), row(expense="X2", amount="12.5")),
        upload(row(), row(expense="X2"), row(expense="X3")),
        upload(row(expense="X2"), row()),
    ):
        assert only(changed).payload["event_id"] != str(event_id)  # type: ignore[index]
    other_sheet = only(upload(row("S2"), row("S2", expense="X2")))
    assert other_sheet.payload["event_id"] != str(event_id)  # type: ignore[index]
    assert UPLOAD_NAMESPACE.version == 4


@pytest.mark.parametrize(
    ("days", "now", "submitted"),
    [
        (("2025-01-03", "2025-01-05"), NOW, "2025-01-06T00:00:00+00:00"),
        (("2025-05-31",), NOW, "2025-06-01T00:00:00+00:00"),
        # Today's expenses: not submitted tomorrow, but now.
        (("2025-06-01",), NOW, NOW.isoformat()),
        (("not a date",), NOW, NOW.isoformat()),
    ],
)
def test_submitted_the_day_after_the_latest_expense_never_later_than_now(
    days: tuple[str, ...], now: datetime, submitted: str
) -> None:
    text = upload(*(row(expense=f"X{i}", day=day) for i, day in enumerate(days)))
    payload = only(text).payload
    assert payload is not None
    assert payload["submitted_at"] == payload["occurred_at"] == submitted


# --- refusals ---------------------------------------------------------------------------------


def test_a_sheet_of_two_employees_is_refused_naming_the_lines() -> None:
    sheets = read(upload(row(), row("S2"), row(expense="X2", employee="E2")))
    mixed, fine = sheets
    assert mixed.payload is None
    assert mixed.problem is not None
    assert mixed.problem.reason is RejectReason.INVALID_VALUE
    assert mixed.problem.field == "employee"
    assert "'E1' (line 2), 'E2' (line 4)" in mixed.problem.detail
    assert fine.problem is None


@pytest.mark.parametrize(
    ("rows", "reason", "field", "detail"),
    [
        ((row(sheet=""),), RejectReason.MISSING_FIELD, "sheet_id", "line 2 has no sheet_id"),
        ((row() + ",extra",), RejectReason.INVALID_VALUE, None, "line 2 has 11 cells"),
        (("S1,E1,X1,12.50",), RejectReason.MISSING_FIELD, None, "line 2 has 4 cells"),
        ((row(), "S1,E1"), RejectReason.MISSING_FIELD, None, "line 3 has 2 cells"),
    ],
)
def test_a_row_the_sheet_cannot_use_refuses_the_sheet(
    rows: tuple[str, ...], reason: RejectReason, field: str | None, detail: str
) -> None:
    sheet = only(upload(*rows))
    assert sheet.problem is not None
    assert (sheet.problem.reason, sheet.problem.field) == (reason, field)
    assert detail in sheet.problem.detail


@pytest.mark.parametrize(
    ("text", "fault", "reason", "line", "detail"),
    [
        (
            "sheet_id,employee\nS1,E1\n",
            CsvFault.COLUMNS,
            RejectReason.MISSING_FIELD,
            1,
            "lacks the columns expense_id, amount",
        ),
        ("", CsvFault.COLUMNS, RejectReason.MISSING_FIELD, 1, "lacks the columns sheet_id"),
        (
            upload(row() + ",x", header=HEADER + ",notes"),
            CsvFault.COLUMNS,
            RejectReason.UNKNOWN_FIELD,
            1,
            "unknown columns 'notes'",
        ),
        (
            upload(row() + ",x", header=HEADER + ",amount"),
            CsvFault.COLUMNS,
            RejectReason.INVALID_VALUE,
            1,
            "columns named twice: amount",
        ),
        (upload(), CsvFault.EMPTY, RejectReason.EMPTY_SHEET, None, "no expense lines"),
        (upload("", ",,,"), CsvFault.EMPTY, RejectReason.EMPTY_SHEET, None, "no expense lines"),
        (
            upload(row(), row(expense="X2", description='"never closed')),
            CsvFault.UNREADABLE,
            RejectReason.INVALID_VALUE,
            3,
            "unexpected end of data",
        ),
        (
            upload(row(description='"closed"then more')),
            CsvFault.UNREADABLE,
            RejectReason.INVALID_VALUE,
            2,
            "cannot be read at line 2",
        ),
        (
            upload(row(description="d" * 200_000)),
            CsvFault.UNREADABLE,
            RejectReason.INVALID_VALUE,
            2,
            "field larger than field limit",
        ),
    ],
)
def test_a_file_without_a_usable_sheet_is_refused_as_a_whole(
    text: str, fault: CsvFault, reason: RejectReason, line: int | None, detail: str
) -> None:
    with pytest.raises(UploadCsvError) as refused:
        read(text)
    assert (refused.value.fault, refused.value.reason, refused.value.line) == (fault, reason, line)
    assert detail in refused.value.detail


def test_text_that_is_not_utf8_is_refused_with_its_line() -> None:
    assert decode_text(b"\xef\xbb\xbf" + HEADER.encode()) == HEADER
    with pytest.raises(UploadCsvError) as refused:
        decode_text(HEADER.encode() + b"\nS1,\xff\xfe\n")
    assert refused.value.fault is CsvFault.ENCODING
    assert refused.value.line == 2


def test_the_error_copies_faithfully() -> None:
    import copy

    error = UploadCsvError(CsvFault.COLUMNS, RejectReason.MISSING_FIELD, "d", "amount", 1)
    clone = copy.copy(error)
    assert (clone.fault, clone.reason, clone.detail, clone.field, clone.line) == (
        CsvFault.COLUMNS,
        RejectReason.MISSING_FIELD,
        "d",
        "amount",
        1,
    )


# --- writing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-taxi", "'-taxi"),
        ("@home", "'@home"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-3.50", "-3.50"),
        ("+7", "+7"),
        ("12.50", "12.50"),
        ("a=b", "a=b"),
        (" =1+1", " =1+1"),
        ("", ""),
        ("'quoted", "'quoted"),
    ],
)
def test_cells_are_neutralised_for_spreadsheets_and_restored_on_reading(
    cell: str, written: str
) -> None:
    assert neutralised(cell) == written
    assert restored(written) == cell


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_restored_undoes_neutralised(cell: str) -> None:
    assume(not (cell.startswith("'") and neutralised(cell[1:]) != cell[1:]))
    assert restored(neutralised(cell)) == cell


def _written(*sheets: ExpenseSheetSubmitted) -> str:
    stream = io.StringIO(newline="")
    writer = UploadCsvWriter(stream)
    for sheet in sheets:
        writer.write(sheet)
    return stream.getvalue()


def test_the_writer_leaves_no_formula_for_a_spreadsheet() -> None:
    sheet = decoded(
        only(upload(row(description='"=HYPERLINK(""http://x"")"', receipt="@r"), row(expense="-1")))
    )
    text = _written(sheet)
    cells = [cell for line in text.splitlines()[1:] for cell in line.split(",")]
    assert '"\'=HYPERLINK(""http://x"")"' in cells
    assert "'@r" in cells
    assert "-1" in cells  # a plain number stays a number
    assert decoded(only(text)).lines == sheet.lines


@settings(max_examples=60, deadline=None)
@given(expense_sheets())
def test_what_the_writer_writes_reads_back_as_the_same_sheet(sheet: ExpenseSheetSubmitted) -> None:
    texts = [sheet.sheet_id, sheet.employee_id]
    for line in sheet.lines:
        texts += [line.expense_id, line.category, line.merchant, line.description]
        assume(line.receipt_ref != "")  # an empty cell is "no receipt"
        texts.append(line.receipt_ref or "")
    # The one ambiguity, documented: text that starts with a quote and a formula character.
    assume(all(restored(t) == t for t in texts))
    # A row of blank cells is skipped; a sheet of ids made of spaces is no upload anyway.
    assume(sheet.sheet_id.strip() and all(line.expense_id.strip() for line in sheet.lines))
    read_back = decoded(only(_written(sheet)))
    assert (read_back.sheet_id, read_back.employee_id, read_back.lines) == (
        sheet.sheet_id,
        sheet.employee_id,
        sheet.lines,
    )


def _calls(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in {"writer", "DictWriter", "to_csv"}:
            base = node.value
            name = base.id if isinstance(base, ast.Name) else ""
            if node.attr == "to_csv" or name == "csv":
                found.add(node.attr)
    return found


def test_every_csv_the_service_writes_goes_through_the_neutralising_writer() -> None:
    """A new csv.writer or to_csv in the service would write formulas a spreadsheet runs."""
    writers = {
        str(path.relative_to(ROOT)): calls
        for package in ("schemas", "streams", "trainer", "retrainer")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (calls := _calls(path))
    }
    assert writers == {"schemas/expense_csv.py": {"writer"}}


def test_the_checker_sees_writers(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import csv\ncsv.writer(s)\ncsv.DictWriter(s, [])\nframe.to_csv(b)\n")
    assert _calls(module) == {"writer", "DictWriter", "to_csv"}


def _payload(sheet: UploadedSheet) -> dict[str, Any]:
    assert sheet.payload is not None
    return json.loads(sheet.message())  # type: ignore[no-any-return]


def test_the_message_is_the_payload() -> None:
    sheet = only(upload(row()))
    assert _payload(sheet) == sheet.payload
    refused = only(upload(row(sheet="")))
    with pytest.raises(ValueError, match="no message"):
        refused.message()
