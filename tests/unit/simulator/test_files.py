"""File mode and the from-file parser: what is written reads back as the same events."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from retrainer.simulator.errors import SimulatorError
from retrainer.simulator.files import (
    CSV_COLUMNS,
    ExportWriter,
    parse_source,
    read_records,
)
from retrainer.simulator.formats import FileFormat
from retrainer.simulator.publish import PublishMode, PublishOptions, run_publish
from schemas import Codec, DecodeError, Event, ExpenseSheetSubmitted, RejectReason
from tests.unit.simulator.factories import config, noisy, small


def _decoded(directory: Path) -> dict[str, list[Event]]:
    codec = Codec()
    found: dict[str, list[Event]] = {}
    for path in sorted(directory.iterdir()):
        topic, _ = parse_source(path)
        for record in read_records(topic, path):
            found.setdefault(topic, []).append(codec.decode(record.topic, record.value))
    return found


def _by_topic(events: list[Event]) -> dict[str, list[Event]]:
    grouped: dict[str, list[Event]] = {}
    for event in events:
        grouped.setdefault(event.TOPIC, []).append(event)
    return grouped


def test_jsonl_round_trip_gives_the_same_events(tmp_path: Path) -> None:
    summary = run_publish(PublishOptions(scenario=small().config, out_dir=tmp_path))
    assert summary.mode is PublishMode.FILE
    assert summary.ok
    assert summary.total_sent == len(small())
    assert _decoded(tmp_path) == _by_topic(list(small().events()))


def test_csv_round_trip_keeps_every_sheet_line(tmp_path: Path) -> None:
    run_publish(
        PublishOptions(scenario=small().config, out_dir=tmp_path, file_format=FileFormat.CSV)
    )
    assert (tmp_path / "expense-sheet.csv").exists()
    assert not (tmp_path / "expense-sheet.jsonl").exists()
    with (tmp_path / "expense-sheet.csv").open(newline="") as stream:
        assert tuple(next(csv.reader(stream))) == CSV_COLUMNS
    read_back = _decoded(tmp_path)
    original = _by_topic(list(small().events()))
    for topic in ("customer-created", "customer-activity", "expense-label"):
        assert read_back[topic] == original[topic]
    sheets = read_back["expense-sheet"]
    assert all(isinstance(sheet, ExpenseSheetSubmitted) for sheet in sheets)

    def content(sheet: Event) -> tuple[object, ...]:
        assert isinstance(sheet, ExpenseSheetSubmitted)
        return (sheet.sheet_id, sheet.employee_id, sheet.lines)

    # The upload format has no submission time or event id: the lines are what must survive.
    assert [content(s) for s in sheets] == [content(s) for s in original["expense-sheet"]]
    for sheet in sheets:
        assert isinstance(sheet, ExpenseSheetSubmitted)
        assert sheet.submitted_at.date() > max(line.expense_date for line in sheet.lines)


def test_reading_the_same_csv_twice_gives_the_same_event_ids(tmp_path: Path) -> None:
    run_publish(
        PublishOptions(scenario=small().config, out_dir=tmp_path, file_format=FileFormat.CSV)
    )
    path = tmp_path / "expense-sheet.csv"
    first = [r.value for r in read_records("expense-sheet", path)]
    assert first == [r.value for r in read_records("expense-sheet", path)]


def test_malformed_messages_in_files_are_refused_for_their_reason(tmp_path: Path) -> None:
    summary = run_publish(PublishOptions(scenario=noisy().config, out_dir=tmp_path))
    expected = {b.reason.value for b in noisy().bad_messages}
    # Binary garbage has no place in a text file; everything else is written as it is.
    assert summary.skipped >= 1
    assert set(summary.malformed) == expected
    codec = Codec()
    refused: set[str] = set()
    for path in tmp_path.iterdir():
        topic, _ = parse_source(path)
        for record in read_records(topic, path):
            try:
                codec.decode(topic, record.value)
            except DecodeError as exc:
                refused.add(exc.reason.value)
    assert refused == set(summary.malformed)


def test_from_file_to_file_reports_rejects_and_keeps_the_rest(tmp_path: Path) -> None:
    upload = tmp_path / "upload.csv"
    upload.write_text(
        ",".join(CSV_COLUMNS) + "\n"
        "S1,E1,X1,12.50,EUR,meals,Cafe,2025-01-03,Lunch,R1\n"
        'S1,E1,X2,"12,50",EUR,meals,Cafe,2025-01-03,Lunch,\n'
        "S2,E2,X3,10.00,EURO,meals,Cafe,2025-01-03,Lunch,\n"
        "S3,E3,X4,10.00,EUR,meals,Cafe,2025-01-03,Lunch,\n"
        "S3,E3,X5,8.00,EUR,meals,Cafe,2025-01-04,,\n"
    )
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"not": "a label"}\n\n[1, 2]\n')
    summary = run_publish(
        PublishOptions(
            from_files=(upload, f"expense-label={labels}"), out_dir=tmp_path / "converted"
        )
    )
    assert summary.mode is PublishMode.FROM_FILE_TO_FILE
    assert summary.sent == {"expense-sheet.jsonl": 1}
    assert summary.rejected == {
        "wrong_type": 1,
        "invalid_currency": 1,
        "missing_field": 1,
        "not_an_object": 1,
    }
    assert any("upload.csv:2" in sample for sample in summary.reject_samples)
    (sheet,) = _decoded(tmp_path / "converted")["expense-sheet"]
    assert isinstance(sheet, ExpenseSheetSubmitted)
    assert [line.expense_id for line in sheet.lines] == ["X4", "X5"]
    assert sheet.lines[1].receipt_ref is None


def test_a_csv_without_the_upload_columns_is_refused(tmp_path: Path) -> None:
    upload = tmp_path / "sheets.csv"
    upload.write_text("id,amount\n1,2\n")
    (record,) = read_records("expense-sheet", upload)
    assert record.problem is not None
    assert record.problem.reason is RejectReason.MISSING_FIELD


def test_sources_name_their_topic(tmp_path: Path) -> None:
    assert parse_source("expense-label.jsonl") == ("expense-label", Path("expense-label.jsonl"))
    assert parse_source("old/uploads.csv") == ("expense-sheet", Path("old/uploads.csv"))
    assert parse_source("customer-activity=x.jsonl") == ("customer-activity", Path("x.jsonl"))
    with pytest.raises(SimulatorError, match="cannot tell the topic"):
        parse_source("dump.jsonl")
    with pytest.raises(SimulatorError, match="unknown topic"):
        parse_source("model-updated=x.jsonl")
    with pytest.raises(SimulatorError, match="no such file"):
        list(read_records("expense-label", tmp_path / "missing.jsonl"))


def test_writer_refuses_what_a_line_cannot_hold(tmp_path: Path) -> None:
    with ExportWriter(tmp_path, FileFormat.JSONL) as writer:
        assert writer.write("expense-label", b'{"a":1}', None)
        assert not writer.write("expense-label", b"\xff\xfe", None)
        assert not writer.write("expense-label", b'{"a":\n1}', None)
    assert writer.skipped == 2
    assert (tmp_path / "expense-label.jsonl").read_bytes() == b'{"a":1}\n'


def test_file_mode_ignores_the_topic_prefix_in_file_names(tmp_path: Path) -> None:
    run_publish(
        PublishOptions(
            scenario=config(customers=3, statements=1, sheets=2),
            out_dir=tmp_path,
            topic_prefix="demo-",
        )
    )
    assert {p.name for p in tmp_path.iterdir()} >= {"expense-sheet.jsonl", "customer-created.jsonl"}
