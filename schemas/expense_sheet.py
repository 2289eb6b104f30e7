"""expense-sheet: an employee's expense sheet as submitted upstream (v2; v1 is upcast)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from schemas.base import (
    VERSION_IS_INT,
    Contract,
    Currency,
    Event,
    ExpenseAmount,
    Identifier,
    NotFutureDate,
    NotFutureDatetime,
    Text,
    Upcaster,
)

MAX_LINES = 500
"""The most line items one sheet may carry."""


class ExpenseLine(Contract):
    """One expense on a sheet."""

    expense_id: Identifier
    """Unique id of the expense; unique within its sheet, and the key of expense-label."""
    amount: ExpenseAmount
    """The amount spent, in `currency`."""
    currency: Currency
    category: Text
    """The expense category as the upstream app names it (travel, meals, ...)."""
    merchant: Text
    expense_date: NotFutureDate
    """The day the money was spent."""
    description: Text
    """Free text from the employee; may be empty."""
    receipt_ref: Text | None = None
    """A reference to the receipt in the upstream document store; null when there is none."""


def _check_lines(lines: tuple[ExpenseLine, ...]) -> tuple[ExpenseLine, ...]:
    if not lines:
        raise PydanticCustomError("empty_sheet", "An expense sheet needs at least one line")
    expense_ids = {line.expense_id for line in lines}
    if len(expense_ids) != len(lines):
        seen: set[str] = set()
        for index, line in enumerate(lines):
            if line.expense_id in seen:
                raise PydanticCustomError(
                    "duplicate_expense_id",
                    "expense_id '{expense_id}' appears more than once on the sheet",
                    {"expense_id": line.expense_id, "at": f"{index}.expense_id"},
                )
            seen.add(line.expense_id)
    return lines


def upcast_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1, the old expense app's upload shape, to v2.

    v1 has `employee` (now `employee_id`), `items` (now `lines`), one sheet-level `currency`
    (now on every line; a v1 item that already names a currency keeps it) and no `submitted_at`
    (v2 takes `occurred_at`). Anything else passes through untouched, for validation to judge.
    """
    result = dict(payload)
    if "employee" in result and "employee_id" not in result:
        result["employee_id"] = result.pop("employee")
    if "submitted_at" not in result and "occurred_at" in result:
        result["submitted_at"] = result["occurred_at"]
    if "items" in result and "lines" not in result:
        items = result.pop("items")
        if isinstance(items, list) and "currency" in result:
            currency = result.pop("currency")
            items = [
                {"currency": currency, **item} if isinstance(item, dict) else item for item in items
            ]
        result["lines"] = items
    return result


class ExpenseSheetSubmitted(Event):
    """An employee submitted an expense sheet with one or more line items."""

    TOPIC: ClassVar[str] = "expense-sheet"
    KEY_FIELD: ClassVar[str] = "sheet_id"
    SCHEMA_VERSION: ClassVar[int] = 2
    UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({1: upcast_v1_to_v2})

    schema_version: Annotated[Literal[2], VERSION_IS_INT] = 2
    """Version of this event's shape (v1 payloads are upcast by the codec)."""
    sheet_id: Identifier
    employee_id: Identifier
    submitted_at: NotFutureDatetime
    """When the employee submitted the sheet."""
    lines: Annotated[
        tuple[ExpenseLine, ...],
        # strict=False lets Python callers pass a list; JSON input is an array either way.
        Field(strict=False, max_length=MAX_LINES, json_schema_extra={"minItems": 1}),
        AfterValidator(_check_lines),
    ]
    """1 to 500 line items; expense_id must be unique within the sheet."""


UPLOAD_CSV_COLUMNS: tuple[str, ...] = (
    "sheet_id",
    "employee",
    "expense_id",
    "amount",
    "currency",
    "category",
    "merchant",
    "date",
    "description",
    "receipt",
)
"""The old expense app's upload CSV: one row per expense line, grouped into sheets by sheet_id."""
