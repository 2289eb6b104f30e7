"""Exports on disk: JSON lines per topic, expense sheets as the old expense app's upload CSV.

A JSON line written here starts with the message key and a tab (`key<TAB>{json}`), the form
`kcat -P -K '\t'` publishes with its key; reading accepts lines with or without that column.

Writing turns messages into files; reading turns files back into raw records for the codec to
judge, so a backfill validates exactly as a live consumer would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from retrainer.simulator.errors import SimulatorError
from retrainer.simulator.events import SHEET_TOPIC, UPSTREAM_TOPICS
from retrainer.simulator.formats import FileFormat
from schemas import DecodeError, ExpenseSheetSubmitted
from schemas.expense_csv import (
    UPLOAD_CSV_COLUMNS,
    UploadCsvError,
    UploadCsvWriter,
    decode_text,
    read_upload,
)

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


class ExportWriter:
    """Writes messages to one file per topic under `out_dir`; use as a context manager."""

    def __init__(self, out_dir: Path, file_format: FileFormat) -> None:
        self.out_dir = out_dir
        self.file_format = file_format
        self._files: dict[str, IO[bytes]] = {}
        self._csv: tuple[IO[str], UploadCsvWriter] | None = None
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

    def write(
        self, topic: str, value: bytes, event: object | None, key: bytes | None = None
    ) -> bool:
        """Append one message; False (and counted as skipped) if the format cannot hold it.

        A CSV row can only hold a valid sheet, and a JSON line only UTF-8 text without line
        breaks (its key no tab either), so some deliberately malformed messages have no place
        in a file.
        """
        path = export_path(self.out_dir, topic, self.file_format)
        if path.suffix == ".csv":
            if not isinstance(event, ExpenseSheetSubmitted):
                self.skipped += 1
                return False
            self._csv_writer().write(event)
        else:
            column = b"" if key is None else key + b"\t"
            if any(c in column[:-1] for c in b"\t\n\r") or not _is_utf8(column):
                self.skipped += 1
                return False
            if b"\n" in value or b"\r" in value or not _is_utf8(value):
                self.skipped += 1
                return False
            stream = self._files.get(topic)
            if stream is None:
                stream = self._files[topic] = path.open("wb")
            stream.write(column + value + b"\n")
        self.written[path.name] = self.written.get(path.name, 0) + 1
        return True

    def _csv_writer(self) -> UploadCsvWriter:
        if self._csv is None:
            path = export_path(self.out_dir, SHEET_TOPIC, FileFormat.CSV)
            stream = path.open("w", newline="", encoding="utf-8")
            self._csv = (stream, UploadCsvWriter(stream))
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
        return sum(1 for _ in _read_csv(path))
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
            value = _without_key(line.rstrip(b"\r\n"))
            if value.strip():
                yield FileRecord(topic, f"{path}:{number}", value)


def _without_key(line: bytes) -> bytes:
    """The value of a `key<TAB>value` line (kcat's -K form); a bare JSON line as it is.

    The key is dropped: publishing derives it from the event, so it cannot disagree with it.
    """
    if line.lstrip().startswith(b"{") or b"\t" not in line:
        return line
    return line.split(b"\t", 1)[1]


def _read_csv(path: Path) -> Iterator[FileRecord]:
    """The sheets of an upload CSV, by the one upload parser (schemas.expense_csv)."""
    try:
        sheets = read_upload(decode_text(path.read_bytes()), now=datetime.now(UTC))
    except UploadCsvError as exc:
        yield FileRecord(SHEET_TOPIC, f"{path}:{exc.line or 1}", b"", exc)
        return
    for sheet in sheets:
        if sheet.problem is not None:
            yield FileRecord(SHEET_TOPIC, f"{path}:{sheet.line}", b"", sheet.problem)
        else:
            yield FileRecord(SHEET_TOPIC, f"{path}:{sheet.line}", sheet.message())
