"""Versioning: v1 sheets become v2, upcasts run step by step, unknown versions are refused."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import pytest
from hypothesis import given, settings

from schemas import DecodeError, Event, ExpenseLine, ExpenseSheetSubmitted, RejectReason, Upcaster
from schemas.base import VERSION_IS_INT, Identifier
from schemas.expense_sheet import upcast_v1_to_v2
from tests.unit.schemas.strategies import as_v1_payload, make_codec, single_currency_sheets

CODEC = make_codec()
EVENT_ID = "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21"

V1_SHEET: Mapping[str, Any] = MappingProxyType(
    {
        "event_id": EVENT_ID,
        "occurred_at": "2025-05-30T09:15:00+02:00",
        "schema_version": 1,
        "sheet_id": "sheet-17",
        "employee": "emp-4",
        "currency": "EUR",
        "items": [
            {
                "expense_id": "exp-1",
                "amount": "84.20",
                "category": "meals",
                "merchant": "Trattoria",
                "expense_date": "2025-05-29",
                "description": "client dinner",
                "receipt_ref": "r/1",
            },
            {
                "expense_id": "exp-2",
                "amount": 312,
                "category": "travel",
                "merchant": "Rail",
                "expense_date": "2025-05-28",
                "description": "",
                "receipt_ref": None,
            },
        ],
    }
)


def v1(**changes: Any) -> bytes:
    return json.dumps({**V1_SHEET, **changes}).encode()


def test_a_v1_sheet_decodes_as_the_equivalent_v2_sheet() -> None:
    occurred = datetime(2025, 5, 30, 7, 15, tzinfo=UTC)
    expected = ExpenseSheetSubmitted(
        event_id=UUID(EVENT_ID),
        occurred_at=occurred,
        sheet_id="sheet-17",
        employee_id="emp-4",
        submitted_at=occurred,
        lines=(
            ExpenseLine(
                expense_id="exp-1",
                amount=Decimal("84.20"),
                currency="EUR",
                category="meals",
                merchant="Trattoria",
                expense_date=date(2025, 5, 29),
                description="client dinner",
                receipt_ref="r/1",
            ),
            ExpenseLine(
                expense_id="exp-2",
                amount=Decimal(312),
                currency="EUR",
                category="travel",
                merchant="Rail",
                expense_date=date(2025, 5, 28),
                description="",
            ),
        ),
    )
    decoded = CODEC.decode_as(ExpenseSheetSubmitted, v1())
    assert decoded == expected
    assert decoded.schema_version == 2
    # Re-encoding writes the current version: v1 never leaves the codec.
    assert json.loads(CODEC.encode(decoded))["schema_version"] == 2


@settings(max_examples=60, deadline=None)
@given(sheet_and_currency=single_currency_sheets())
def test_every_v2_sheet_survives_the_trip_through_v1(
    sheet_and_currency: tuple[ExpenseSheetSubmitted, str],
) -> None:
    sheet, currency = sheet_and_currency
    payload = json.dumps(as_v1_payload(sheet, currency)).encode()
    assert CODEC.decode("expense-sheet", payload) == sheet


def test_the_upcaster_does_not_touch_its_input() -> None:
    payload = json.loads(v1())
    before = json.dumps(payload, sort_keys=True)
    upcast_v1_to_v2(payload)
    assert json.dumps(payload, sort_keys=True) == before


@pytest.mark.parametrize(
    ("changes", "reason", "field"),
    [
        ({"currency": "eur"}, RejectReason.INVALID_CURRENCY, "lines.0.currency"),
        ({"currency": 978}, RejectReason.WRONG_TYPE, "lines.0.currency"),
        ({"items": []}, RejectReason.EMPTY_SHEET, "lines"),
        ({"items": "none"}, RejectReason.WRONG_TYPE, "lines"),
        ({"employee": ""}, RejectReason.INVALID_VALUE, "employee_id"),
        ({"occurred_at": "2030-01-01T00:00:00Z"}, RejectReason.DATE_IN_FUTURE, "occurred_at"),
        ({"approver": "boss"}, RejectReason.UNKNOWN_FIELD, "approver"),
        ({"submitted_at": "2025-05-30T09:15:00Z"}, None, None),
    ],
)
def test_v1_problems_are_reported_on_the_v2_fields(
    changes: dict[str, Any], reason: RejectReason | None, field: str | None
) -> None:
    if reason is None:
        # v1 had no submitted_at; an explicit one is kept rather than replaced.
        assert CODEC.decode_as(ExpenseSheetSubmitted, v1(**changes)).submitted_at == datetime(
            2025, 5, 30, 9, 15, tzinfo=UTC
        )
        return
    with pytest.raises(DecodeError) as caught:
        CODEC.decode("expense-sheet", v1(**changes))
    assert (caught.value.reason, caught.value.field) == (reason, field)
    assert "after upcast from version 1" in caught.value.detail


def test_v1_without_currency_or_employee_names_the_v2_fields() -> None:
    payload = {key: value for key, value in V1_SHEET.items() if key != "currency"}
    with pytest.raises(DecodeError) as caught:
        CODEC.decode("expense-sheet", json.dumps(payload).encode())
    assert (caught.value.reason, caught.value.field) == (
        RejectReason.MISSING_FIELD,
        "lines.0.currency",
    )
    payload = {key: value for key, value in V1_SHEET.items() if key != "employee"}
    with pytest.raises(DecodeError) as caught:
        CODEC.decode("expense-sheet", json.dumps(payload).encode())
    assert (caught.value.reason, caught.value.field) == (RejectReason.MISSING_FIELD, "employee_id")


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (0, RejectReason.UNKNOWN_SCHEMA_VERSION),
        (3, RejectReason.UNKNOWN_SCHEMA_VERSION),
        (-1, RejectReason.UNKNOWN_SCHEMA_VERSION),
        (2**64, RejectReason.UNKNOWN_SCHEMA_VERSION),
        ("2", RejectReason.WRONG_TYPE),
        (True, RejectReason.WRONG_TYPE),
        (2.0, RejectReason.WRONG_TYPE),
        (None, RejectReason.WRONG_TYPE),
    ],
)
def test_unknown_and_mistyped_versions_are_refused(version: Any, reason: RejectReason) -> None:
    with pytest.raises(DecodeError) as caught:
        CODEC.decode("expense-sheet", v1(schema_version=version))
    assert (caught.value.reason, caught.value.field) == (reason, "schema_version")


def test_a_message_without_a_version_is_refused() -> None:
    payload = {key: value for key, value in V1_SHEET.items() if key != "schema_version"}
    with pytest.raises(DecodeError) as caught:
        CODEC.decode("expense-sheet", json.dumps(payload).encode())
    assert (caught.value.reason, caught.value.field) == (
        RejectReason.MISSING_FIELD,
        "schema_version",
    )


# --- the shared mechanism, on an event with three versions ------------------------------------

STEPS: list[int] = []


def _v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    STEPS.append(1)
    result = dict(payload)
    if "nom" in result:
        result["name"] = result.pop("nom")
    return result


def _v2_to_v3(payload: dict[str, Any]) -> dict[str, Any]:
    STEPS.append(2)
    assert payload["schema_version"] == 2  # the codec stamps each step's version
    result = dict(payload)
    if isinstance(result.get("name"), str):
        result["name"] = result["name"].upper()
    return result


class Renamed(Event):
    """A test event at v3: v1 called `name` `nom`, v2 did not upper-case it."""

    TOPIC: ClassVar[str] = "test-renamed"
    KEY_FIELD: ClassVar[str] = "name"
    SCHEMA_VERSION: ClassVar[int] = 3
    UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({1: _v1_to_v2, 2: _v2_to_v3})

    schema_version: Annotated[Literal[3], VERSION_IS_INT] = 3
    name: Identifier


def _message(version: int, **fields: Any) -> bytes:
    return json.dumps(
        {"event_id": EVENT_ID, "occurred_at": "2025-01-01T00:00:00Z", "schema_version": version}
        | fields
    ).encode()


@pytest.mark.parametrize(
    ("version", "fields", "steps"),
    [(1, {"nom": "ada"}, [1, 2]), (2, {"name": "ada"}, [2]), (3, {"name": "ADA"}, [])],
)
def test_upcasts_run_one_step_at_a_time_up_to_the_current_version(
    version: int, fields: dict[str, str], steps: list[int]
) -> None:
    STEPS.clear()
    decoded = CODEC.decode_as(Renamed, _message(version, **fields))
    assert (decoded.name, decoded.schema_version, STEPS) == ("ADA", 3, steps)
    assert Renamed.known_versions() == {1, 2, 3}


def test_an_upcaster_that_raises_still_gives_a_decode_error() -> None:
    def broken(payload: dict[str, Any]) -> dict[str, Any]:
        return {"name": payload["missing"]}

    class Fragile(Event):
        """A test event whose only upcaster is broken."""

        TOPIC: ClassVar[str] = "test-fragile"
        KEY_FIELD: ClassVar[str] = "name"
        SCHEMA_VERSION: ClassVar[int] = 2
        UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({1: broken})

        schema_version: Annotated[Literal[2], VERSION_IS_INT] = 2
        name: Identifier

    with pytest.raises(DecodeError) as caught:
        CODEC.decode_as(Fragile, _message(1, name="x"))
    assert caught.value.reason is RejectReason.INVALID_VALUE


def test_events_at_v1_have_no_upcasters_and_refuse_other_versions() -> None:
    from schemas import EVENT_TYPES, DeadLettered

    for event_type in EVENT_TYPES:
        if event_type not in (ExpenseSheetSubmitted, DeadLettered):
            assert event_type.known_versions() == {1}
            assert dict(event_type.UPCASTERS) == {}
    assert ExpenseSheetSubmitted.known_versions() == {1, 2}
    assert DeadLettered.known_versions() == {1, 2}


def test_inconsistent_version_declarations_fail_at_class_creation() -> None:
    with pytest.raises(TypeError, match="Literal"):

        class WrongLiteral(Event):
            """Declares v2 but validates v1."""

            TOPIC: ClassVar[str] = "test-wrong"
            KEY_FIELD: ClassVar[str] = "name"
            SCHEMA_VERSION: ClassVar[int] = 2
            schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
            name: Identifier

    with pytest.raises(TypeError, match="upcast path"):

        class Gap(Event):
            """Accepts v1 but cannot get from v2 to v3."""

            TOPIC: ClassVar[str] = "test-gap"
            KEY_FIELD: ClassVar[str] = "name"
            SCHEMA_VERSION: ClassVar[int] = 3
            UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({1: _v1_to_v2})
            schema_version: Annotated[Literal[3], VERSION_IS_INT] = 3
            name: Identifier

    with pytest.raises(TypeError, match="KEY_FIELD"):

        class NoKey(Event):
            """Keys its messages by a field it does not have."""

            TOPIC: ClassVar[str] = "test-no-key"
            KEY_FIELD: ClassVar[str] = "nowhere"
            schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
