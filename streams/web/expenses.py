"""Expenses: upload sheets as JSON or as the expense app's CSV, published to `expense-sheet`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from aiohttp.http_exceptions import HttpProcessingError
from faust import web

from schemas.base import ModelFamily
from schemas.errors import DecodeError
from schemas.expense_csv import CsvFault, UploadCsvError, UploadedSheet, decode_text, read_upload
from schemas.expense_sheet import ExpenseSheetSubmitted
from streams.readmodel import family_status, upload_training_status
from streams.store import sheets as sheet_store
from streams.web.answers import SheetInfo, UploadAnswer
from streams.web.bodies import (
    MAX_SHEET_IDS,
    SheetsBody,
    declared_type,
    is_json,
    read_json,
    validate_body,
)
from streams.web.context import WebContext
from streams.web.errors import ApiError, shown
from streams.web.views import ApiView

blueprint = web.Blueprint("expenses")

CSV_MEDIA_TYPES: Final = ("text/csv", "application/csv")

CSV_FAULT_STATUS: Final = {
    CsvFault.ENCODING: 400,
    CsvFault.COLUMNS: 400,
    CsvFault.UNREADABLE: 422,
    CsvFault.EMPTY: 422,
}
"""The HTTP status of an upload that yields no sheet at all (its reason is the fault's name)."""

POLL_S: Final = 0.2
"""How often an upload looks whether its sheets are stored yet."""


def _csv_refused(exc: UploadCsvError) -> ApiError:
    return ApiError(CSV_FAULT_STATUS[exc.fault], exc.fault.value, exc.detail, exc.field)


async def _uploaded_file(request: web.Request) -> bytes:
    """The bytes of the first file of a multipart upload."""
    http: Any = request  # the aiohttp request underneath parses forms
    try:
        form = await http.post()
    # No boundary, a body that does not follow it, or a part's headers that are not HTTP.
    except (ValueError, HttpProcessingError) as exc:
        raise ApiError(400, "invalid_multipart", f"the multipart body is malformed: {exc}") from exc
    upload = next((v for v in form.values() if hasattr(v, "file")), None)
    if upload is None:
        raise ApiError(400, "missing_file", "send the CSV as a file field")
    data: bytes = upload.file.read()
    return data


def sheet_payloads(body: Any) -> list[Any]:
    """A sheet object, a list of them, or `{"sheets": [...]}`, as a list of sheet objects."""
    if isinstance(body, dict) and "sheets" in body:
        body = validate_body(SheetsBody, body).sheets
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise ApiError(422, "not_an_object", "send a sheet object or a list of them")
    if len(items) > MAX_SHEET_IDS:
        raise ApiError(
            422, "too_many_items", f"send at most {MAX_SHEET_IDS} sheets at once", "sheets"
        )
    return items


def sheets_from_csv(data: bytes) -> list[UploadedSheet]:
    """The upload's sheets, by the one upload parser (schemas.expense_csv); all must be usable."""
    try:
        sheets = read_upload(decode_text(data), now=datetime.now(UTC))
    except UploadCsvError as exc:
        raise _csv_refused(exc) from exc
    if len(sheets) > MAX_SHEET_IDS:
        raise ApiError(
            422, "too_many_items", f"send at most {MAX_SHEET_IDS} sheets at once", "sheet_id"
        )
    for sheet in sheets:
        if sheet.problem is not None:
            problem = sheet.problem
            raise ApiError(
                422, problem.reason.value, f"CSV line {sheet.line}: {problem.detail}", problem.field
            )
    return sheets


def completed(payload: dict[str, Any]) -> dict[str, Any]:
    """Fill in what an uploader need not send: a new event id, now, and the version by shape."""
    now = datetime.now(UTC).isoformat()
    filled = {"event_id": str(uuid.uuid4()), "occurred_at": now, **payload}
    if "schema_version" not in filled:
        filled["schema_version"] = 1 if "items" in filled else 2
    if filled["schema_version"] != 1:
        filled.setdefault("submitted_at", now)
    return filled


def totals(sheet: ExpenseSheetSubmitted) -> dict[str, str]:
    """The sheet's total per currency, as decimal strings."""
    by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for line in sheet.lines:
        by_currency[line.currency] += line.amount
    return {currency: str(total) for currency, total in by_currency.items()}


async def training_status(ctx: WebContext, sheet_ids: list[str]) -> str:
    """What training does about the upload, once its sheets are stored (bounded wait)."""
    pool = await ctx.pool()
    deadline = time.monotonic() + ctx.settings.upload_wait_s
    # One statement per look, no connection held while waiting: uploads waiting for storage
    # must not starve the pool that status, models and the sink need.
    while await sheet_store.count_stored(pool, sheet_ids) < len(set(sheet_ids)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL_S)
    status = await family_status(pool, ctx.policy, ModelFamily.EXPENSE_FRAUD, 1, ctx.quality)
    return upload_training_status(status)


@blueprint.route("/expenses/upload", name="upload")
class ExpensesUpload(ApiView):
    """POST: one or more expense sheets as JSON, or the old app's CSV; publishes them."""

    async def post(self, request: web.Request) -> web.Response:
        ctx = self.ctx
        sheets: list[ExpenseSheetSubmitted] = []
        for message, uploaded in await self._messages(request):
            try:
                sheets.append(ctx.codec.decode_as(ExpenseSheetSubmitted, message))
            except DecodeError as exc:
                # A CSV refusal names the file's line, as the uploader sees it.
                where = "" if uploaded is None else f"CSV line {uploaded.line_of(exc.field)}: "
                raise ApiError(422, exc.reason.value, where + exc.detail, exc.field) from exc
        await ctx.publish(
            ctx.settings.topics.expense_sheet,
            [(ctx.codec.key_of(s), ctx.codec.encode(s)) for s in sheets],
        )
        status = await training_status(ctx, [s.sheet_id for s in sheets])
        lines = sum(len(s.lines) for s in sheets)
        answer = UploadAnswer(
            message=f"Uploaded {len(sheets)} sheet(s) with {lines} expense(s)",
            training_status=status,
            sheet_info=[
                SheetInfo(
                    sheet_id=s.sheet_id,
                    employee_id=s.employee_id,
                    expenses=len(s.lines),
                    totals=totals(s),
                )
                for s in sheets
            ],
            data=[
                {"sheet_id": s.sheet_id, **line.model_dump(mode="json")}
                for s in sheets
                for line in s.lines
            ],
        )
        return self.answer(answer)

    async def _messages(self, request: web.Request) -> list[tuple[bytes, UploadedSheet | None]]:
        """Each sheet's message for the codec, with its CSV rows when it came as CSV."""
        media = declared_type(request)
        csv_data: bytes | None = None
        if media == "multipart/form-data":
            csv_data = await _uploaded_file(request)
        elif media in CSV_MEDIA_TYPES:
            csv_data = await request.read()
        if csv_data is not None:
            return [(sheet.message(), sheet) for sheet in sheets_from_csv(csv_data)]
        if media is not None and not is_json(media):
            raise ApiError(
                415,
                "unsupported_media_type",
                "send sheets as application/json, text/csv or multipart/form-data, "
                f"not {shown(media)}",
                headers={"Accept-Post": "application/json, text/csv, multipart/form-data"},
            )
        payloads = sheet_payloads(await read_json(request, self.ctx.settings.max_string_length))
        return [(json.dumps(completed(p)).encode(), None) for p in payloads]
