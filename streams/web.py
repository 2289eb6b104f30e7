"""The worker's HTTP API: retraining status and trigger, expense upload, health and metrics."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import faust
import pandas as pd
from faust.web import Request, Response, View
from faust.web.drivers.aiohttp import Web as AiohttpWeb
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.base import ModelFamily
from schemas.errors import DecodeError
from schemas.expense_csv import CsvFault, UploadCsvError, UploadedSheet, decode_text, read_upload
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.features import EXPENSE_COLUMNS
from streams.policy import Action, Decision, decide
from streams.services.policy import PolicyEngine, PolicyState, manual_request_id
from streams.settings import StreamsSettings
from streams.signals import SignalKind
from streams.store.counts import read_counters
from streams.web_requests import (
    MAX_SHEET_IDS,
    AnalyzeBody,
    ApiError,
    BulkBody,
    ShadowBody,
    TrainBody,
    TriggerBody,
    check_bearer,
    declared_type,
    is_json,
    json_errors,
    parse_family,
    read_body,
    read_json,
    shown,
)

Signal = Callable[..., Awaitable[None]]

_RECENT = """
SELECT retrain_id, retrain_date, customers_trained, samples_trained, auc_score, precision_score,
       recall_score, f1_score, model_version, trigger_reason, status, family
FROM model_retraining_log WHERE family = $1 ORDER BY retrain_date DESC LIMIT $2
"""


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def family_status(
    pool: asyncpg.Pool, engine: PolicyEngine, family: ModelFamily, recent: int = 5
) -> dict[str, Any]:
    """The family's counters and the policy's verdict now, with its latest retrainings."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT state FROM policy_state WHERE family = $1", family.value)
        raw_state = json.loads(row["state"]) if row is not None else None
        current = PolicyState.from_json(family, raw_state)
        state = current.state
        counters = await read_counters(
            conn, family, state.cutoff, state.model_version, engine.config
        )
        history = await conn.fetch(_RECENT, family.value, recent)
    decision: Decision = decide(family, counters, state, engine.config, datetime.now(UTC))
    threshold = (
        engine.config.new_customers_threshold
        if family is ModelFamily.DELINQUENCY
        else engine.config.new_sheets_threshold
    )
    flight = state.in_flight
    return {
        "family": family.value,
        "new_customers_count": counters.new_customers,
        "new_sheets_count": counters.new_sheets,
        "retraining_needed": decision.retraining_needed,
        "reason": decision.reason_text,
        "threshold": threshold,
        "decision": decision.action.value,
        "model_version": state.model_version,
        "data_cutoff": state.cutoff,
        "last_trained_at": state.last_trained_at,
        "in_flight": None
        if flight is None
        else {
            "request_id": flight.request_id,
            "reason": flight.reason_text,
            "since": flight.sent_at,
        },
        "anomaly_rate": counters.anomaly_rate,
        "counters": counters.as_dict(),
        "recent_retraining": [dict(r) for r in history],
    }


CSV_MEDIA_TYPES = ("text/csv", "application/csv")


async def next_manual_request(
    pool: asyncpg.Pool, family: ModelFamily
) -> tuple[uuid.UUID | None, uuid.UUID]:
    """The request in flight (if any), and the id the next manual trigger is to carry.

    Every trigger until the family's next request is answered gets the same id: the policy folds
    the triggers of one debounce window into one request, and this is that request's id.
    """
    async with pool.acquire() as conn:
        mirror = await conn.fetchrow(
            "SELECT in_flight_request_id, cutoff, last_trained_at,"
            " coalesce((state->>'finished')::int, 0) AS finished"
            " FROM policy_state WHERE family = $1",
            family.value,
        )
    if mirror is None:
        return None, manual_request_id(family, None, None, 0)
    return mirror["in_flight_request_id"], manual_request_id(
        family, mirror["cutoff"], mirror["last_trained_at"], mirror["finished"]
    )


CSV_FAULT_STATUS = {
    CsvFault.ENCODING: 400,
    CsvFault.COLUMNS: 400,
    CsvFault.UNREADABLE: 422,
    CsvFault.EMPTY: 422,
}
"""The HTTP status of an upload that yields no sheet at all (its reason is the fault's name)."""


def _csv_refused(exc: UploadCsvError) -> ApiError:
    return ApiError(CSV_FAULT_STATUS[exc.fault], exc.fault.value, exc.detail, exc.field)


async def _uploaded_file(request: Request) -> bytes:
    """The bytes of the first file of a multipart upload."""
    http: Any = request  # the aiohttp request underneath parses forms
    try:
        form = await http.post()
    except ValueError as exc:  # no boundary, or a body that does not follow it
        raise ApiError(400, "invalid_multipart", f"the multipart body is malformed: {exc}") from exc
    upload = next((v for v in form.values() if hasattr(v, "file")), None)
    if upload is None:
        raise ApiError(400, "missing_file", "send the CSV as a file field")
    data: bytes = upload.file.read()
    return data


def _sheet_payloads(body: Any) -> list[dict[str, Any]]:
    """A sheet object, a list of them, or `{"sheets": [...]}`, as a list of sheet objects."""
    if isinstance(body, dict) and "sheets" in body:
        unknown = sorted(set(body) - {"sheets"})
        if unknown:
            raise ApiError(
                422, "unknown_field", f"unknown field {unknown[0]!r} beside 'sheets'", unknown[0]
            )
        body = body["sheets"]
        if not isinstance(body, list):
            raise ApiError(422, "wrong_type", "sheets must be a list of sheet objects", "sheets")
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise ApiError(422, "not_an_object", "send a sheet object or a list of them")
    if len(items) > MAX_SHEET_IDS:
        raise ApiError(
            422, "too_many_items", f"send at most {MAX_SHEET_IDS} sheets at once", "sheets"
        )
    return items


def _sheets_from_csv(data: bytes) -> list[UploadedSheet]:
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


def _complete(payload: dict[str, Any]) -> dict[str, Any]:
    """Fill in what an uploader need not send: a new event id, now, and the version by shape."""
    now = datetime.now(UTC).isoformat()
    filled = {"event_id": str(uuid.uuid4()), "occurred_at": now, **payload}
    if "schema_version" not in filled:
        filled["schema_version"] = 1 if "items" in filled else 2
    if filled["schema_version"] != 1:
        filled.setdefault("submitted_at", now)
    return filled


def register_views(
    app: faust.App,
    settings: StreamsSettings,
    deps: Any,
    signal: Signal,
    engine: PolicyEngine,
) -> None:
    """Add the worker's HTTP endpoints to `app`."""
    topics = settings.topics()
    sheets_topic = app.topic(
        topics.expense_sheet,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )

    limit = settings.max_string_length
    # Every refusal, aiohttp's own (404, 405, 413) included, leaves in the one JSON shape.
    driver = app.web
    if not isinstance(driver, AiohttpWeb):
        raise TypeError(f"the HTTP API needs Faust's aiohttp web driver, not {type(driver)}")
    driver.web_app.middlewares.append(json_errors(limit))

    def require_token(request: Request) -> None:
        check_bearer(settings.api_token, request.headers.get("Authorization", ""))

    @app.page("/retraining/status")
    class RetrainingStatus(View):
        """GET: the pre-delinquency engine's status shape, for one family or both."""

        async def get(self, request: Request) -> Response:
            family = parse_family(request.query.get("family", ModelFamily.DELINQUENCY.value))
            pool = await deps.pool()
            body = await family_status(pool, engine, family)
            others = [f for f in ModelFamily if f is not family]
            body["families"] = {
                f.value: await family_status(pool, engine, f, recent=3) for f in others
            }
            return self.json(_jsonable(body))

    @app.page("/retraining/trigger")
    class RetrainingTrigger(View):
        """POST: ask for a retraining now; answers at once with the request id (202)."""

        async def post(self, request: Request) -> Response:
            require_token(request)
            body = await read_body(request, TriggerBody, limit)
            family, force = body.family, body.force
            pool = await deps.pool()
            flight, request_id = await next_manual_request(pool, family)
            if flight is not None:
                return self.json(
                    {
                        "request_id": str(flight),
                        "family": family.value,
                        "status": "already_in_flight",
                        "message": "a retraining of this family is already under way",
                    },
                    status=202,
                )
            await signal(
                family,
                SignalKind.MANUAL,
                request_id=request_id,
                requested_by=body.requested_by,
                force=force,
            )
            return self.json(
                {
                    "request_id": str(request_id),
                    "family": family.value,
                    "force": force,
                    "status": "accepted",
                    "status_url": f"/retraining/status?family={family.value}",
                },
                status=202,
            )

    @app.page("/expenses/upload")
    class ExpensesUpload(View):
        """POST: one or more expense sheets as JSON, or the old app's CSV; publishes them."""

        async def post(self, request: Request) -> Response:
            require_token(request)
            sheets: list[ExpenseSheetSubmitted] = []
            for message, uploaded in await self._messages(request):
                try:
                    sheets.append(deps.codec.decode_as(ExpenseSheetSubmitted, message))
                except DecodeError as exc:
                    # A CSV refusal names the file's line, as the uploader sees it.
                    where = "" if uploaded is None else f"CSV line {uploaded.line_of(exc.field)}: "
                    raise ApiError(422, exc.reason.value, where + exc.detail, exc.field) from exc
            for sheet in sheets:
                await send_sheet(sheet)
            training_status = await self._training_status([s.sheet_id for s in sheets])
            lines = sum(len(s.lines) for s in sheets)
            return self.json(
                _jsonable(
                    {
                        "message": f"Uploaded {len(sheets)} sheet(s) with {lines} expense(s)",
                        "training_status": training_status,
                        "sheet_info": [
                            {
                                "sheet_id": s.sheet_id,
                                "employee_id": s.employee_id,
                                "expenses": len(s.lines),
                                "totals": _totals(s),
                            }
                            for s in sheets
                        ],
                        "data": [
                            {"sheet_id": s.sheet_id, **line.model_dump(mode="json")}
                            for s in sheets
                            for line in s.lines
                        ],
                    }
                )
            )

        async def _messages(self, request: Request) -> list[tuple[bytes, UploadedSheet | None]]:
            """Each sheet's message for the codec, with its CSV rows when it came as CSV."""
            media = declared_type(request)
            csv_data: bytes | None = None
            if media == "multipart/form-data":
                csv_data = await _uploaded_file(request)
            elif media in CSV_MEDIA_TYPES:
                csv_data = await request.read()
            if csv_data is not None:
                return [(sheet.message(), sheet) for sheet in _sheets_from_csv(csv_data)]
            if media is not None and not is_json(media):
                raise ApiError(
                    415,
                    "unsupported_media_type",
                    "send sheets as application/json, text/csv or multipart/form-data, "
                    f"not {shown(media)}",
                    headers={"Accept-Post": "application/json, text/csv, multipart/form-data"},
                )
            payloads = _sheet_payloads(await read_json(request, limit))
            return [(json.dumps(_complete(p)).encode(), None) for p in payloads]

        async def _training_status(self, sheet_ids: list[str]) -> str:
            pool = await deps.pool()
            deadline = time.monotonic() + settings.upload_wait_s
            while True:
                # A connection per look, not held while waiting: uploads waiting for storage
                # must not starve the pool that status, models and the sink need.
                async with pool.acquire() as conn:
                    stored = await conn.fetchval(
                        "SELECT count(*) FROM sheets WHERE sheet_id = ANY($1::text[])", sheet_ids
                    )
                if stored >= len(set(sheet_ids)) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            status = await family_status(pool, engine, ModelFamily.EXPENSE_FRAUD, recent=1)
            last = status["recent_retraining"][:1]
            if status["decision"] in (Action.REQUEST.value, Action.WAIT.value, Action.REEMIT.value):
                reason = status["in_flight"]["reason"] if status["in_flight"] else status["reason"]
                return f"Retrain requested: {reason}"
            if status["decision"] == Action.HELD.value:
                return f"Retrain due: {status['reason']}"
            if last and last[0]["status"] == "failed" and status["in_flight"] is None:
                return f"Training failed: {last[0]['trigger_reason']}"
            return "No training needed"

    async def send_sheet(sheet: ExpenseSheetSubmitted) -> None:
        pending = await sheets_topic.send(
            key=deps.codec.key_of(sheet), value=deps.codec.encode(sheet), force=True
        )
        await pending

    @app.page("/health")
    class Health(View):
        """GET: whether the worker reaches PostgreSQL and Kafka."""

        async def get(self, request: Request) -> Response:
            # The last background probe (streams.health): answers at once, however busy.
            reachability = deps.reachability
            return self.json(reachability.snapshot(), status=200 if reachability.healthy else 503)

    register_analysis_views(app, settings, deps, signal, engine, require_token)

    @app.page("/metrics")
    class Metrics(View):
        """GET: Prometheus exposition of this worker's metrics."""

        async def get(self, request: Request) -> Response:
            # aiohttp takes the charset apart from the media type.
            media_type = CONTENT_TYPE_LATEST.split("; charset=")[0]
            return self.bytes(generate_latest(), content_type=media_type)


def _totals(sheet: ExpenseSheetSubmitted) -> dict[str, str]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in sheet.lines:
        totals[line.currency] += line.amount
    return {currency: str(total) for currency, total in totals.items()}


_SHEET_LINES = """
SELECT expense_id, sheet_id, employee_id, amount::float8 AS amount, category, merchant,
       expense_date, receipt_ref, submitted_at
FROM expenses WHERE sheet_id = ANY($1::text[]) ORDER BY submitted_at, expense_id
"""

_RECENT_SHEETS = """
SELECT sheet_id FROM sheets WHERE submitted_at > now() - make_interval(days => $1)
ORDER BY submitted_at DESC LIMIT $2
"""

_OUTCOME = """
SELECT status, model_version, outcome_reason, trigger_reason FROM model_retraining_log
WHERE request_id = $1
"""


def register_analysis_views(
    app: faust.App,
    settings: StreamsSettings,
    deps: Any,
    signal: Signal,
    engine: PolicyEngine,
    require_token: Callable[[Request], None],
) -> None:
    """The expense app's analysis endpoints, `/models`, and shadow scoring."""
    from schemas.bundles import RANDOM_FOREST
    from streams.policy import minimum_data_gaps
    from streams.scoring import score

    family = ModelFamily.EXPENSE_FRAUD

    async def wait_for_request(request_id: uuid.UUID) -> tuple[str, str | None]:
        """Wait (bounded) until the request's model scores here, or it ended without one."""
        pool = await deps.pool()
        deadline = time.monotonic() + settings.analysis_wait_s
        holder = deps.scoring.holder
        while time.monotonic() < deadline:
            current = holder.current(family)
            if current is not None and current.request_id == str(request_id):
                return "promoted", current.version
            async with pool.acquire() as conn:
                row = await conn.fetchrow(_OUTCOME, request_id)
            if row is not None and row["status"] != "promoted":
                return row["status"], row["outcome_reason"] or row["trigger_reason"]
            await asyncio.sleep(0.2)
        return "pending", None

    async def retrain_if_due(requested_by: str, bulk: bool) -> str:
        pool = await deps.pool()
        status = await family_status(pool, engine, family, recent=0)
        flight = status["in_flight"]
        # Asked by a person: a trigger held by the minimum interval is due all the same.
        if status["decision"] in (Action.REQUEST.value, Action.HELD.value):
            # Every trigger until the family's next request is answered gets the same id: the
            # policy folds triggers of one debounce window into one request, and this is its id.
            _, request_id = await next_manual_request(pool, family)
            await signal(
                family, SignalKind.MANUAL, request_id=request_id, requested_by=requested_by
            )
        elif flight is not None:
            request_id = flight["request_id"]
            current = deps.scoring.holder.current(family)
            if current is not None and current.request_id == str(request_id):
                # Answered already: its model scores here; the policy has yet to hear of it.
                return "No training needed"
        else:
            return "No training needed"
        outcome, detail = await wait_for_request(request_id)
        if outcome == "promoted":
            return (
                "Models auto-trained before bulk analysis"
                if bulk
                else ("Models auto-trained before analysis")
            )
        if outcome == "pending":
            return (
                f"Retraining requested ({request_id}) but not finished within "
                f"{settings.analysis_wait_s:.0f} s; analysed with the current model"
            )
        return f"Training {outcome}: {detail}; analysed with the current model"

    async def analyse(sheet_ids: list[str]) -> dict[str, Any]:
        pool = await deps.pool()
        scorer = deps.scoring.scorer
        async with pool.acquire() as conn:
            rows = await conn.fetch(_SHEET_LINES, sheet_ids)
            if scorer.context.lines.empty:
                await scorer.context.refresh(conn)
        lines = pd.DataFrame([tuple(r) for r in rows], columns=list(EXPENSE_COLUMNS))
        model = deps.scoring.holder.current(family)
        results: list[dict[str, Any]] = []
        if not lines.empty:
            scores = None
            if model is not None:
                scores = score(model, scorer.context.features(lines, settings.approval_limit))
            has_classifier = model is not None and RANDOM_FOREST in model.bundle.models
            for i, line in enumerate(lines.itertuples(index=False)):
                entry: dict[str, Any] = {
                    "expense_id": line.expense_id,
                    "sheet_id": line.sheet_id,
                    "amount": line.amount,
                    "category": line.category,
                    "merchant": line.merchant,
                    "anomaly_score": None,
                    "fraud_probability": None,
                    "is_flagged": False,
                }
                if scores is not None:
                    anomaly = (
                        scores.anomaly_score if scores.anomaly_score is not None else (scores.score)
                    )
                    entry["anomaly_score"] = float(anomaly[i])
                    entry["fraud_probability"] = float(scores.score[i]) if has_classifier else None
                    entry["is_flagged"] = bool(scores.flagged[i])
                results.append(entry)
        return {
            "model_version": model.version if model is not None else None,
            "sheets": len(set(lines["sheet_id"])) if not lines.empty else 0,
            "expenses": len(results),
            "flagged": sum(1 for r in results if r["is_flagged"]),
            "results": results,
        }

    def answer(what: str, training_status: str, summary: dict[str, Any]) -> Any:
        """The expense app's analysis answer: message, training_status, analysis_summary."""
        return _jsonable(
            {
                "message": f"{what}: {summary['flagged']} of {summary['expenses']} expenses "
                "flagged",
                "training_status": training_status,
                "analysis_summary": summary,
            }
        )

    @app.page("/sheets/{sheet_id}/analyze")
    class AnalyzeSheet(View):
        """POST: retrain first if due (bounded wait), then score the sheet's lines."""

        async def post(self, request: Request, sheet_id: str) -> Response:
            require_token(request)
            await read_body(request, AnalyzeBody, settings.max_string_length)
            pool = await deps.pool()
            async with pool.acquire() as conn:
                known = await conn.fetchval("SELECT 1 FROM sheets WHERE sheet_id = $1", sheet_id)
            if not known:
                raise ApiError(
                    404, "unknown_sheet", f"no sheet {shown(sheet_id)} is stored", "sheet_id"
                )
            training_status = await retrain_if_due("analyze", bulk=False)
            summary = await analyse([sheet_id])
            return self.json(answer(f"Sheet {sheet_id} analysed", training_status, summary))

    @app.page("/analysis/bulk")
    class AnalyzeBulk(View):
        """POST: like analyze, for many sheets (`sheet_ids`, default: the last `days` days)."""

        async def post(self, request: Request) -> Response:
            require_token(request)
            body = await read_body(request, BulkBody, settings.max_string_length)
            training_status = await retrain_if_due("bulk-analysis", bulk=True)
            sheet_ids = body.sheet_ids
            if sheet_ids is None:
                pool = await deps.pool()
                async with pool.acquire() as conn:
                    rows = await conn.fetch(_RECENT_SHEETS, body.days, MAX_SHEET_IDS)
                sheet_ids = [r["sheet_id"] for r in rows]
            summary = await analyse(sheet_ids)
            return self.json(
                answer(f"{summary['sheets']} sheets analysed", training_status, summary)
            )

    @app.page("/analysis/train")
    class Train(View):
        """POST: train the expense-fraud models now; 200 when done within the wait, else 202."""

        async def post(self, request: Request) -> Response:
            require_token(request)
            force = (await read_body(request, TrainBody, settings.max_string_length)).force
            pool = await deps.pool()
            status = await family_status(pool, engine, family, recent=0)
            if status["in_flight"] is not None:
                request_id = status["in_flight"]["request_id"]
            else:
                from streams.policy import Counters

                counters = Counters(observed_at=datetime.now(UTC), **status["counters"])
                gaps = minimum_data_gaps(family, counters, engine.config)
                if gaps and not force:
                    raise ApiError(
                        422, "insufficient_data", "Insufficient data: need " + "; ".join(gaps)
                    )
                _, request_id = await next_manual_request(pool, family)
                await signal(
                    family,
                    SignalKind.MANUAL,
                    request_id=request_id,
                    requested_by="analysis-train",
                    force=force,
                )
            outcome, detail = await wait_for_request(request_id)
            if outcome == "pending":
                return self.json(
                    {
                        "message": "Training requested; it has not finished yet",
                        "request_id": str(request_id),
                        "status_url": "/retraining/status?family=expense-fraud",
                    },
                    status=202,
                )
            async with pool.acquire() as conn:
                cutoff = await conn.fetchval(
                    "SELECT data_cutoff FROM retrain_requests WHERE request_id = $1", request_id
                )
                sheets_used = await conn.fetchval(
                    "SELECT count(*) FROM sheets WHERE ingested_at <= coalesce($1, now())", cutoff
                )
                roles = [
                    r["role"]
                    for r in await conn.fetch(
                        "SELECT role FROM model_artifacts WHERE version = $1 ORDER BY role",
                        detail or "",
                    )
                ]
            message = (
                f"Models trained: {detail}"
                if outcome == "promoted"
                else f"Training {outcome}: {detail}"
            )
            return self.json(
                {
                    "message": message,
                    "request_id": str(request_id),
                    "status": outcome,
                    "model_version": detail if outcome == "promoted" else None,
                    "sheets_used": sheets_used,
                    "models_trained": roles,
                }
            )

    @app.page("/models")
    class Models(View):
        """GET: the registry's versions and what this worker scores with."""

        async def get(self, request: Request) -> Response:
            pool = await deps.pool()
            async with pool.acquire() as conn:
                rows = await conn.fetch(
                    "SELECT version, family, status, status_reason, metrics, samples, data_cutoff,"
                    " created_at, promoted_at FROM model_versions ORDER BY created_at DESC"
                    " LIMIT 100"
                )
            versions = [
                {
                    **dict(r),
                    "metrics": json.loads(r["metrics"])
                    if isinstance(r["metrics"], str)
                    else r["metrics"],
                }
                for r in rows
            ]
            return self.json(
                _jsonable(
                    {
                        "loaded": deps.scoring.holder.versions(),
                        "follower_ready": deps.scoring.follower.ready.is_set(),
                        "versions": versions,
                    }
                )
            )

    @app.page("/models/shadow")
    class Shadow(View):
        """POST {family, version}: score `version` in shadow beside the champion (null stops)."""

        async def post(self, request: Request) -> Response:
            require_token(request)
            body = await read_body(request, ShadowBody, settings.max_string_length)
            shadow_family, version = body.family, body.version
            if version is None:
                deps.scoring.holder.set_shadow(None, shadow_family)
                return self.json({"family": shadow_family.value, "shadow": None})
            from schemas.artifacts import ArtifactIntegrityError
            from streams.models import ModelRefused

            try:
                model = await deps.scoring.loader.load(version)
            except (ModelRefused, ArtifactIntegrityError) as exc:
                raise ApiError(422, "model_refused", str(exc), "version") from exc
            if model.family is not shadow_family:
                raise ApiError(
                    422, "invalid_value", f"{version} is a {model.family.value} model", "family"
                )
            deps.scoring.holder.set_shadow(model, shadow_family)
            return self.json({"family": shadow_family.value, "shadow": version})
