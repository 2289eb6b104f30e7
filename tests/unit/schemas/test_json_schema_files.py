"""The exported JSON Schemas: committed files match the code, and encoded events validate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, TOPICS, Event
from schemas.jsonschema import DIALECT, JSON_DIR, expected_files, main, stale_files, topic_schema
from tests.unit.schemas.strategies import EVENTS, make_codec

CODEC = make_codec()
VALIDATORS = {
    event_type: jsonschema.Draft202012Validator(
        topic_schema(TOPICS[event_type.TOPIC]), format_checker=jsonschema.FormatChecker()
    )
    for event_type in EVENT_TYPES
}


def test_the_committed_files_match_the_code() -> None:
    assert stale_files() == [], "run `python -m schemas.jsonschema` and commit schemas/json/"
    assert sorted(path.name for path in JSON_DIR.glob("*.json")) == sorted(
        f"{topic}.json" for topic in TOPICS
    )


def test_files_are_sorted_two_space_json_with_a_trailing_newline() -> None:
    for name, text in expected_files().items():
        assert text.endswith("}\n"), name
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
def test_each_schema_is_a_valid_draft_2020_12_schema(event_type: type[Event]) -> None:
    schema = json.loads((JSON_DIR / f"{event_type.TOPIC}.json").read_text(encoding="utf-8"))
    assert schema["$schema"] == DIALECT
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-kafka-topic"] == event_type.TOPIC
    assert schema["x-kafka-key"] == event_type.KEY_FIELD
    assert schema["additionalProperties"] is False
    assert schema["properties"]["schema_version"]["const"] == event_type.SCHEMA_VERSION
    # Every field is in the schema; the ones without a Python default, and the two envelope
    # fields that default only in Python, are required on the wire.
    assert set(schema["properties"]) == set(event_type.model_fields)
    expected_required = {
        name
        for name, field in event_type.model_fields.items()
        if field.is_required() or name in ("event_id", "schema_version")
    }
    assert set(schema["required"]) == expected_required


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_encoded_event_validates_against_its_schema(
    event_type: type[Event], data: st.DataObject
) -> None:
    document = json.loads(CODEC.encode(data.draw(EVENTS[event_type])))
    VALIDATORS[event_type].validate(document)


def _sheet() -> dict[str, Any]:
    return {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2025-05-30T09:15:00Z",
        "schema_version": 2,
        "sheet_id": "s-1",
        "employee_id": "e-1",
        "submitted_at": "2025-05-30T09:15:00Z",
        "lines": [
            {
                "expense_id": "x-1",
                "amount": 12.5,
                "currency": "EUR",
                "category": "meals",
                "merchant": "Cafe",
                "expense_date": "2025-05-29",
                "description": "",
            }
        ],
    }


def test_a_hand_written_producer_message_passes_both_schema_and_codec() -> None:
    """What a kcat/Java/Go producer writes from the schema alone (numbers, omitted nulls)."""
    document = _sheet()
    VALIDATORS[EVENT_TYPES[0]].validate(document)
    CODEC.decode("expense-sheet", json.dumps(document).encode())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("schema_version",), 1),
        (("event_id",), "not-a-uuid"),
        (("lines",), []),
        (("lines", 0, "currency"), "usd"),
        (("lines", 0, "amount"), -1),
        (("lines", 0, "amount"), 1_000_000.01),
        (("lines", 0, "amount"), "1e3"),
        (("lines", 0, "expense_date"), "29/05/2025"),
        (("lines", 0, "surprise"), True),
        (("sheet_id",), ""),
        (("sheet_id",), "x" * 2001),
        # The storage limits, where JSON Schema can say them.
        (("sheet_id",), "x" * 257),
        (("sheet_id",), "s\x00"),
        (("lines", 0, "description"), "nul\x00inside"),
        (("lines", 0, "amount"), "1000000000000000000"),
        (("lines", 0, "amount"), "1.1234567891"),
        (("lines", 0, "expense_date"), "1899-12-31"),
        (("lines", 0, "expense_date"), "0001-01-01"),
        (("submitted_at",), "1899-12-30T23:00:00-02:00"),
        (("occurred_at",), "0001-01-01T00:00:00Z"),
    ],
)
def test_the_schema_rejects_what_the_codec_rejects(path: tuple[Any, ...], value: Any) -> None:
    document = _sheet()
    target: Any = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    assert not VALIDATORS[EVENT_TYPES[0]].is_valid(document)


def test_check_mode_reports_stale_missing_and_orphan_files(tmp_path: Path) -> None:
    assert main(["--dir", str(tmp_path), "--check"]) == 1
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--dir", str(tmp_path), "--check"]) == 0

    (tmp_path / "expense-sheet.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "retired-topic.json").write_text("{}\n", encoding="utf-8")
    assert stale_files(tmp_path) == ["expense-sheet.json", "retired-topic.json"]
    assert main(["--dir", str(tmp_path), "--check"]) == 1

    assert main(["--dir", str(tmp_path)]) == 0
    assert stale_files(tmp_path) == []
    assert not (tmp_path / "retired-topic.json").exists()
