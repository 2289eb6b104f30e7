"""The old expense app's upload CSV: the one parser every reader uses, and the one writer.

`POST /expenses/upload` and `retrainer publish --from-file` both read uploads with
`read_upload`, so the same file makes the same messages whichever way it comes in:

- one sheet per `sheet_id`, its rows in file order (they need not be adjacent);
- a sheet whose rows name more than one employee is refused, naming the lines that disagree;
- the upload has no submission time: a sheet counts as submitted at the start (UTC) of the day
  after its latest expense, or at `now` if that is earlier (a sheet of today's expenses);
  `occurred_at` is the same instant;
- the event id is a name-based UUID (v5) of the sheet id and the sheet's content (employee and
  every cell of its rows), so uploading the same file again is a replay that changes nothing,
  while a corrected sheet is a new event;
- the header must name exactly the upload columns (any order, surrounding spaces ignored);
  a byte-order mark, CRLF line ends and line breaks inside quoted cells are fine; rows whose
  cells are all empty (a spreadsheet's trailing rows) are skipped; a row with more or fewer
  cells than the header is refused.

Cells are text and are kept as they are: a description such as `=SUM(A1)` is the user's data.
A spreadsheet would evaluate such a cell, though, so everything that writes this format goes
through `UploadCsvWriter`, which prefixes a single quote to a cell that starts with `=`, `+`,
`-`, `@`, a tab or a carriage return (plain numbers such as `-3.50` excepted). The parser takes
that quote off again, so a file written here reads back as the same sheets.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import IO, Any

from schemas.errors import DecodeError, RejectReason
from schemas.expense_sheet import UPLOAD_CSV_COLUMNS, ExpenseSheetSubmitted

__all__ = [
    "FORMULA_TRIGGERS",
    "UPLOAD_CSV_COLUMNS",
    "UPLOAD_NAMESPACE",
    "CsvFault",
    "UploadCsvError",
    "UploadCsvWriter",
    "UploadedSheet",
    "decode_text",
    "neutralised",
    "read_upload",
    "restored",
    "upload_rows",
]

UPLOAD_NAMESPACE = uuid.UUID("5b1f6c3e-8a0d-4e7b-9c21-6f4d2a9e0b73")
"""Namespace of the name-based event ids of uploaded sheets."""

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula."""

_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def neutralised(cell: str) -> str:
    """`cell` as a spreadsheet will show it as text: a quote before a formula's first character."""
    if cell.startswith(FORMULA_TRIGGERS) and _PLAIN_NUMBER.fullmatch(cell) is None:
        return "'" + cell
    return cell


def restored(cell: str) -> str:
    """The cell `neutralised` was given: the quote it added is taken off, nothing else.

    The one value that does not survive a round trip is text that itself starts with a quote
    and a formula character (`'=x` reads back as `=x`).
    """
    if cell.startswith("'") and neutralised(cell[1:]) != cell[1:]:
        return cell[1:]
    return cell


class CsvFault(StrEnum):
    """What is wrong with an upload as a whole (the HTTP API's `reason` for it)."""

    ENCODING = "invalid_encoding"
    UNREADABLE = "invalid_csv"
    COLUMNS = "csv_columns"
    EMPTY = "empty_sheet"


class UploadCsvError(DecodeError):
    """An upload that yields no sheet at all; `fault` says what kind of problem, `line` where."""

    def __init__(
        self,
        fault: CsvFault,
        reason: RejectReason,
        detail: str,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(reason, detail, field)
        self.args = (fault, reason, detail, field, line)
        self.fault = fault
        self.line = line


@dataclass(frozen=True)
class UploadedSheet:
    """One sheet of an upload: the message for the codec, or why there is none."""

    sheet_id: str
    rows: tuple[int, ...]
    """The line of the file each of the sheet's rows starts on, in file order."""
    payload: Mapping[str, Any] | None
    """The v2 expense-sheet message as JSON values; None when `problem` is set."""
    problem: DecodeError | None = None

    @property
    def line(self) -> int:
        """The line the sheet's first row starts on."""
        return self.rows[0]

    def message(self) -> bytes:
        """`payload` as the bytes a producer would send."""
        if self.payload is None:
            raise ValueError(f"sheet {self.sheet_id!r} has no message: {self.problem}")
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False).encode()

    def line_of(self, field: str | None) -> int:
        """The line of the row a codec error's field points into (`lines.3.amount` → row 3)."""
        parts = (field or "").split(".")
        if len(parts) >= 2 and parts[0] == "lines" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(self.rows):
                return self.rows[index]
        return self.line


def decode_text(data: bytes) -> str:
    """The upload's text (UTF-8, with or without a byte-order mark)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise UploadCsvError(
            CsvFault.ENCODING,
            RejectReason.INVALID_VALUE,
            f"the CSV is not UTF-8 (line {line}: {exc.reason})",
            line=line,
        ) from exc


@dataclass
class _Rows:
    lines: list[int]
    cells: list[dict[str, str]]
    problem: DecodeError | None = None


def read_upload(text: str, *, now: datetime) -> list[UploadedSheet]:
    """The sheets of an upload, in the order their first rows appear.

    Raises UploadCsvError when the file yields no sheet at all (not CSV, wrong columns, no
    rows); a problem with one sheet is that sheet's `problem`, and the others go on.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    records = _records(reader)
    header_line, header = next(records, (1, []))
    columns = _columns(header, header_line)
    groups: dict[str, _Rows] = {}
    for line, record in records:
        cells = dict(zip(columns, (restored(cell) for cell in record), strict=False))
        sheet_id = cells.get("sheet_id", "")
        group = groups.setdefault(sheet_id, _Rows([], []))
        group.lines.append(line)
        group.cells.append(cells)
        if group.problem is not None:
            continue
        if len(record) != len(columns):
            group.problem = DecodeError(
                RejectReason.MISSING_FIELD
                if len(record) < len(columns)
                else RejectReason.INVALID_VALUE,
                f"line {line} has {len(record)} cells; the header (line {header_line}) has "
                f"{len(columns)}",
            )
        elif not sheet_id:
            group.problem = DecodeError(
                RejectReason.MISSING_FIELD, f"line {line} has no sheet_id", "sheet_id"
            )
    if not groups:
        raise UploadCsvError(
            CsvFault.EMPTY, RejectReason.EMPTY_SHEET, "the CSV holds no expense lines"
        )
    return [_sheet(sheet_id, rows, now) for sheet_id, rows in groups.items()]


def _records(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record that is not blank, with the line it starts on."""
    end = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UploadCsvError(
                CsvFault.UNREADABLE,
                RejectReason.INVALID_VALUE,
                f"the CSV cannot be read at line {end + 1}: {exc}",
                line=end + 1,
            ) from exc
        start, end = end + 1, reader.line_num
        if any(cell.strip() for cell in record):
            yield start, record


def _columns(header: list[str], line: int) -> list[str]:
    names = [name.strip() for name in header]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    missing = [name for name in UPLOAD_CSV_COLUMNS if name not in names]
    unknown = [name for name in names if name not in UPLOAD_CSV_COLUMNS]
    expected = ", ".join(UPLOAD_CSV_COLUMNS)
    if missing:
        raise UploadCsvError(
            CsvFault.COLUMNS,
            RejectReason.MISSING_FIELD,
            f"the CSV lacks the columns {', '.join(missing)} (the upload has: {expected})",
            line=line,
        )
    if unknown or duplicated:
        what = f"unknown columns {', '.join(map(repr, unknown))}" if unknown else ""
        twice = f"columns named twice: {', '.join(duplicated)}" if duplicated else ""
        raise UploadCsvError(
            CsvFault.COLUMNS,
            RejectReason.UNKNOWN_FIELD if unknown else RejectReason.INVALID_VALUE,
            f"the CSV has {'; '.join(p for p in (what, twice) if p)} (the upload has exactly: "
            f"{expected})",
            line=line,
        )
    return names


def _sheet(sheet_id: str, rows: _Rows, now: datetime) -> UploadedSheet:
    lines = tuple(rows.lines)
    if rows.problem is not None:
        return UploadedSheet(sheet_id, lines, None, rows.problem)
    employees: dict[str, int] = {}
    for line, cells in zip(rows.lines, rows.cells, strict=True):
        employees.setdefault(cells["employee"], line)
    if len(employees) > 1:
        named = ", ".join(f"{name!r} (line {line})" for name, line in employees.items())
        problem = DecodeError(
            RejectReason.INVALID_VALUE,
            f"sheet {sheet_id!r} has rows of more than one employee: {named}; a sheet belongs "
            "to one employee",
            "employee",
        )
        return UploadedSheet(sheet_id, lines, None, problem)
    (employee,) = employees
    items = [
        {
            "expense_id": cells["expense_id"],
            "amount": cells["amount"],
            "currency": cells["currency"],
            "category": cells["category"],
            "merchant": cells["merchant"],
            "expense_date": cells["date"],
            "description": cells["description"],
            "receipt_ref": cells["receipt"] or None,
        }
        for cells in rows.cells
    ]
    submitted = _submitted_at([cells["date"] for cells in rows.cells], now).isoformat()
    content = json.dumps(
        {"employee_id": employee, "lines": items}, sort_keys=True, ensure_ascii=False
    ).encode()
    digest = hashlib.sha256(content).hexdigest()
    payload = {
        "event_id": str(uuid.uuid5(UPLOAD_NAMESPACE, f"{sheet_id}/{digest}")),
        "occurred_at": submitted,
        "schema_version": ExpenseSheetSubmitted.SCHEMA_VERSION,
        "sheet_id": sheet_id,
        "employee_id": employee,
        "submitted_at": submitted,
        "lines": items,
    }
    return UploadedSheet(sheet_id, lines, payload)


def _submitted_at(days: list[str], now: datetime) -> datetime:
    """The start of the day after the latest expense, or `now` when that is earlier."""
    known = [day for day in map(_day, days) if day is not None]
    if not known:
        return now.astimezone(UTC)
    after = datetime.combine(max(known) + timedelta(days=1), time(0), tzinfo=UTC)
    return min(after, now.astimezone(UTC))


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


class UploadCsvWriter:
    """Writes sheets as upload rows, every cell neutralised; the header on construction."""

    def __init__(self, stream: IO[str]) -> None:
        self._writer = csv.writer(stream)
        self._writer.writerow(UPLOAD_CSV_COLUMNS)

    def write(self, sheet: ExpenseSheetSubmitted) -> None:
        self._writer.writerows(upload_rows(sheet))


def upload_rows(sheet: ExpenseSheetSubmitted) -> Iterator[list[str]]:
    """The sheet's lines as upload rows (amounts in fixed point, no receipt = empty cell),
    every cell neutralised for a spreadsheet."""
    for line in sheet.lines:
        row = (
            sheet.sheet_id,
            sheet.employee_id,
            line.expense_id,
            format(line.amount, "f"),
            line.currency,
            line.category,
            line.merchant,
            line.expense_date.isoformat(),
            line.description,
            line.receipt_ref or "",
        )
        yield [neutralised(cell) for cell in row]
