"""Exports on disk: JSON lines per topic, expense sheets as the old expense app's upload CSV.

Writing turns messages into files; reading turns files back into raw records for the codec to
judge, so a backfill validates exactly as a live consumer would.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from retrainer.simulator.errors import SimulatorError
from retrainer.simulator.events import SHEET_TOPIC, UPSTREAM_TOPICS, event_id_for
from retrainer.simulator.formats import FileFormat
from schemas import DecodeError, ExpenseSheetSubmitted, RejectReason
from schemas.expense_sheet import UPLOAD_CSV_COLUMNS

CSV_COLUMNS = UPLOAD_CSV_COLUMNS


@dataclass(frozen=True)
class FileRecord:
    """One record read from an export, not yet validated."""

    topic: str
    """Default name of the topic the record belongs to."""
    source: str
    """Where it came from, as `path:line`."""
    value: bytes
    """The message bytes for the codec (for CSV: the sheet built from its rows, as JSON)."""
    problem: DecodeError | None = None
    """Set when the file itself is unusable here, so there is nothing for the codec to judge."""


def export_path(out_dir: Path, topic: str, file_format: FileFormat) -> Path:
    suffix = "csv" if file_format is FileFormat.CSV and topic == SHEET_TOPIC else "jsonl"
    return out_dir / f"{topic}.{suffix}"


def csv_rows(sheet: ExpenseSheetSubmitted) -> Iterator[tuple[str, ...]]:
    """The sheet's lines as upload rows (amounts in fixed point, no receipt = empty cell)."""
    for line in sheet.lines:
        yield (
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


class ExportWriter:
    """Writes messages to one file per topic under `out_dir`; use as a context manager."""

    def __init__(self, out_dir: Path, file_format: FileFormat) -> None:
        self.out_dir = out_dir
        self.file_format = file_format
        self._files: dict[str, IO[bytes]] = {}
        self._csv: tuple[IO[str], Any] | None = None
        self.written: dict[str, int] = {}
        self.skipped = 0

    def __enter__(self) -> ExportWriter:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, topic: str, value: bytes, event: object | None) -> bool:
        """Append one message; False (and counted as skipped) if the format cannot hold it.

        A CSV row can only hold a valid sheet, and a JSON line only UTF-8 text without line
        breaks, so some deliberately malformed messages have no place in a file.
        """
        path = export_path(self.out_dir, topic, self.file_format)
        if path.suffix == ".csv":
            if not isinstance(event, ExpenseSheetSubmitted):
                self.skipped += 1
                return False
            self._csv_writer().writerows(csv_rows(event))
        else:
            if b"\n" in value or b"\r" in value or not _is_utf8(value):
                self.skipped += 1
                return False
            stream = self._files.get(topic)
            if stream is None:
                stream = self._files[topic] = path.open("wb")
            stream.write(value + b"\n")
        self.written[path.name] = self.written.get(path.name, 0) + 1
        return True

    def _csv_writer(self) -> Any:
        if self._csv is None:
            path = export_path(self.out_dir, SHEET_TOPIC, FileFormat.CSV)
            stream = path.open("w", newline="", encoding="utf-8")
            writer = csv.writer(stream)
            writer.writerow(CSV_COLUMNS)
            self._csv = (stream, writer)
        return self._csv[1]

    def close(self) -> None:
        for stream in self._files.values():
            stream.close()
        self._files.clear()
        if self._csv is not None:
            self._csv[0].close()
            self._csv = None


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_source(spec: str | Path) -> tuple[str, Path]:
    """`TOPIC=PATH`, or a path whose name starts with a topic name (`expense-sheet.jsonl`).

    A `.csv` file is always expense sheets in the upload format.
    """
    text = str(spec)
    if "=" in text and not Path(text).exists():
        topic, _, named = text.partition("=")
        if topic not in UPSTREAM_TOPICS:
            raise SimulatorError(f"unknown topic {topic!r}; expected one of {UPSTREAM_TOPICS}")
        return topic, Path(named)
    path = Path(text)
    if path.suffix.lower() == ".csv":
        return SHEET_TOPIC, path
    for topic in sorted(UPSTREAM_TOPICS, key=len, reverse=True):
        if path.name.startswith(topic):
            return topic, path
    raise SimulatorError(
        f"cannot tell the topic of {path}: name it after a topic (expense-sheet.jsonl, …) "
        "or pass TOPIC=PATH"
    )


def count_records(topic: str, path: Path) -> int:
    """How many records `read_records` will yield (for a progress bar's total)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8", errors="replace") as stream:
            return len({row.get("sheet_id") for row in csv.DictReader(stream)}) or 1
    with path.open("rb") as stream:
        return sum(1 for line in stream if line.strip())


def read_records(topic: str, path: Path) -> Iterator[FileRecord]:
    """The records of one export file, in file order."""
    if not path.is_file():
        raise SimulatorError(f"no such file: {path}")
    if path.suffix.lower() == ".csv":
        if topic != SHEET_TOPIC:
            raise SimulatorError(f"{path}: CSV files hold expense sheets, not {topic}")
        yield from _read_csv(path)
        return
    with path.open("rb") as stream:
        for number, line in enumerate(stream, start=1):
            value = line.rstrip(b"\r\n")
            if value.strip():
                yield FileRecord(topic, f"{path}:{number}", value)


def _read_csv(path: Path) -> Iterator[FileRecord]:
    with path.open("rb") as raw:
        data = raw.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Not text at all: hand the codec the bytes so the reject carries its reason.
        yield FileRecord(SHEET_TOPIC, f"{path}:1", data)
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [column for column in CSV_COLUMNS if column not in (reader.fieldnames or ())]
    if missing:
        problem = DecodeError(
            RejectReason.MISSING_FIELD, f"the CSV lacks the upload columns {', '.join(missing)}"
        )
        yield FileRecord(SHEET_TOPIC, f"{path}:1", b"", problem)
        return
    sheets: dict[str, list[tuple[int, dict[str, str]]]] = {}
    for row in reader:
        sheets.setdefault(row["sheet_id"], []).append((reader.line_num, row))
    for sheet_id, rows in sheets.items():
        yield FileRecord(SHEET_TOPIC, f"{path}:{rows[0][0]}", _sheet_from_rows(sheet_id, rows))


def _sheet_from_rows(sheet_id: str, rows: list[tuple[int, dict[str, str]]]) -> bytes:
    """The v2 sheet message for the upload rows of one sheet.

    The upload has no submission time: the sheet counts as submitted at the start of the day
    after its latest expense. Its id is derived from the rows, so uploading the same file twice
    is a replay, while a corrected upload is a new event.
    """
    lines = [
        {
            "expense_id": row["expense_id"],
            "amount": row["amount"],
            "currency": row["currency"],
            "category": row["category"],
            "merchant": row["merchant"],
            "expense_date": row["date"],
            "description": row["description"] or "",
            "receipt_ref": row["receipt"] or None,
        }
        for _, row in rows
    ]
    employees = {row["employee"] for _, row in rows}
    days = [_day(row["date"]) for _, row in rows]
    known = [day for day in days if day is not None]
    last = max(known) if known else date(1970, 1, 1)
    submitted = datetime.combine(last + timedelta(days=1), time(0), tzinfo=UTC).isoformat()
    digest = hashlib.sha256(json.dumps(lines, sort_keys=True).encode()).hexdigest()
    payload = {
        "event_id": str(event_id_for(SHEET_TOPIC, f"{sheet_id}/{digest}")),
        "occurred_at": submitted,
        "schema_version": ExpenseSheetSubmitted.SCHEMA_VERSION,
        "sheet_id": sheet_id,
        # Rows that disagree on the employee cannot be one sheet: the codec refuses a list here.
        "employee_id": employees.pop() if len(employees) == 1 else sorted(employees),
        "submitted_at": submitted,
        "lines": lines,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None
