"""The worker's HTTP API: retraining status and trigger, expense upload, health and metrics."""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.base import ModelFamily
from schemas.errors import DecodeError
from schemas.expense_sheet import UPLOAD_CSV_COLUMNS, ExpenseSheetSubmitted
from schemas.features import EXPENSE_COLUMNS
from streams.counts import read_counters
from streams.handlers import PolicyEngine, PolicyState
from streams.policy import Action, Decision, decide
from streams.settings import StreamsSettings
from streams.signals import SignalKind

Signal = Callable[..., Awaitable[None]]

CSV_COLUMNS = UPLOAD_CSV_COLUMNS

_RECENT = """
SELECT retrain_id, retrain_date, customers_trained, samples_trained, auc_score, precision_score,
       recall_score, f1_score, model_version, trigger_reason, status, family
FROM model_retraining_log WHERE family = $1 ORDER BY retrain_date DESC LIMIT $2
"""


class BadRequest(Exception):
    """A request body the API cannot use; answered with 400 or 422 and the reason."""

    def __init__(self, status: int, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.field = field

    def body(self) -> dict[str, Any]:
        return {"error": self.detail, "reason": self.reason, "field": self.field}


async def read_json(request: Request) -> Any:
    """The request's JSON body (an empty body reads as an empty object); BadRequest if not JSON."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, "invalid_json", f"the body is not JSON: {exc}") from exc


async def read_object(request: Request) -> dict[str, Any]:
    """The request's JSON object; BadRequest when it is not JSON or not an object."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest(422, "not_an_object", "the body must be a JSON object")
    return body


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


def _sheets_from_csv(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise BadRequest(400, "csv_columns", f"CSV lacks the columns: {', '.join(missing)}")
    sheets: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(reader, start=2):
        sheet_id = (row["sheet_id"] or "").strip()
        if not sheet_id:
            raise BadRequest(422, "missing_field", f"CSV line {number} has no sheet_id", "sheet_id")
        sheet = sheets.setdefault(
            sheet_id, {"sheet_id": sheet_id, "employee_id": row["employee"], "lines": []}
        )
        sheet["lines"].append(
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
        )
    if not sheets:
        raise BadRequest(422, "empty_sheet", "the CSV holds no expense lines")
    return list(sheets.values())


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

    def authorised(request: Request) -> bool:
        token = settings.api_token
        if token is None:
            return False
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        )

    def unauthorised(view: View) -> Response:
        hint = (
            "send 'Authorization: Bearer <token>'"
            if settings.api_token is not None
            else "mutations are disabled until RETRAINER_API_TOKEN is set"
        )
        return view.json({"error": "unauthorised", "reason": hint}, status=401)

    @app.page("/retraining/status")
    class RetrainingStatus(View):
        """GET: the pre-delinquency engine's status shape, for one family or both."""

        async def get(self, request: Request) -> Response:
            wanted = request.query.get("family", ModelFamily.DELINQUENCY.value)
            try:
                family = ModelFamily(wanted)
            except ValueError:
                return self.json(
                    {"error": f"unknown family {wanted!r}", "reason": "invalid_value"}, status=422
                )
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
            if not authorised(request):
                return unauthorised(self)
            try:
                body = await read_object(request)
                family = ModelFamily(body.get("family", ModelFamily.DELINQUENCY.value))
                force = body.get("force", False)
                if not isinstance(force, bool):
                    raise BadRequest(422, "wrong_type", "force must be true or false", "force")
                requested_by = str(body.get("requested_by", "api"))[:200]
            except ValueError as exc:
                return self.json({"error": str(exc), "reason": "invalid_value"}, status=422)
            except BadRequest as exc:
                return self.json(exc.body(), status=exc.status)
            pool = await deps.pool()
            async with pool.acquire() as conn:
                flight = await conn.fetchval(
                    "SELECT in_flight_request_id FROM policy_state WHERE family = $1",
                    family.value,
                )
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
            request_id = uuid.uuid4()
            await signal(
                family,
                SignalKind.MANUAL,
                request_id=request_id,
                requested_by=requested_by,
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
            if not authorised(request):
                return unauthorised(self)
            try:
                payloads = await self._payloads(request)
                sheets = [
                    deps.codec.decode_as(ExpenseSheetSubmitted, json.dumps(_complete(p)).encode())
                    for p in payloads
                ]
            except BadRequest as exc:
                return self.json(exc.body(), status=exc.status)
            except DecodeError as exc:
                return self.json(
                    {"error": exc.detail, "reason": exc.reason.value, "field": exc.field},
                    status=422,
                )
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

        async def _payloads(self, request: Request) -> list[dict[str, Any]]:
            content_type = request.headers.get("Content-Type", "")
            if content_type.startswith("multipart/"):
                http: Any = request  # the aiohttp request underneath parses forms
                form = await http.post()
                upload = next(iter(form.values()), None)
                if upload is None or not hasattr(upload, "file"):
                    raise BadRequest(400, "missing_file", "send the CSV as a file field")
                return _sheets_from_csv(upload.file.read().decode("utf-8-sig"))
            if "csv" in content_type:
                raw = await request.read()
                try:
                    return _sheets_from_csv(raw.decode("utf-8-sig"))
                except UnicodeDecodeError as exc:
                    raise BadRequest(400, "invalid_encoding", "the CSV is not UTF-8") from exc
            body = await read_json(request)
            if isinstance(body, dict) and isinstance(body.get("sheets"), list):
                body = body["sheets"]
            items = body if isinstance(body, list) else [body]
            if not items or not all(isinstance(i, dict) for i in items):
                raise BadRequest(422, "not_an_object", "send a sheet object or a list of them")
            return items

        async def _training_status(self, sheet_ids: list[str]) -> str:
            pool = await deps.pool()
            deadline = time.monotonic() + settings.upload_wait_s
            async with pool.acquire() as conn:
                while True:
                    stored = await conn.fetchval(
                        "SELECT count(*) FROM sheets WHERE sheet_id = ANY($1::text[])", sheet_ids
                    )
                    if stored >= len(set(sheet_ids)) or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
            status = await family_status(pool, engine, ModelFamily.EXPENSE_FRAUD, recent=1)
            last = status["recent_retraining"][:1]
            if status["decision"] in (Action.REQUEST.value, Action.WAIT.value, Action.REEMIT.value):
                reason = status["in_flight"]["reason"] if status["in_flight"] else status["reason"]
                return f"Retrain requested: {reason}"
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
            database = True
            try:
                pool = await deps.pool()
                async with pool.acquire(timeout=3) as conn:
                    await conn.fetchval("SELECT 1")
            except (TimeoutError, OSError, asyncpg.PostgresError):
                database = False
            kafka = bool(app.consumer.assignment()) or app.producer is not None
            healthy = database and kafka
            return self.json(
                {"status": "ok" if healthy else "degraded", "database": database, "kafka": kafka},
                status=200 if healthy else 503,
            )

    register_analysis_views(app, settings, deps, signal, engine, authorised, unauthorised)

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
    authorised: Callable[[Request], bool],
    unauthorised: Callable[[View], Response],
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
        if status["decision"] == Action.REQUEST.value:
            request_id = uuid.uuid4()
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
            if not authorised(request):
                return unauthorised(self)
            pool = await deps.pool()
            async with pool.acquire() as conn:
                known = await conn.fetchval("SELECT 1 FROM sheets WHERE sheet_id = $1", sheet_id)
            if not known:
                return self.json(
                    {"error": f"no sheet {sheet_id!r} is stored", "reason": "unknown_sheet"},
                    status=404,
                )
            training_status = await retrain_if_due("analyze", bulk=False)
            summary = await analyse([sheet_id])
            return self.json(answer(f"Sheet {sheet_id} analysed", training_status, summary))

    @app.page("/analysis/bulk")
    class AnalyzeBulk(View):
        """POST: like analyze, for many sheets (`sheet_ids`, default: the last `days` days)."""

        async def post(self, request: Request) -> Response:
            if not authorised(request):
                return unauthorised(self)
            try:
                body = await read_object(request)
            except BadRequest as exc:
                return self.json(exc.body(), status=exc.status)
            sheet_ids = body.get("sheet_ids")
            days = body.get("days", 30)
            if sheet_ids is not None and (
                not isinstance(sheet_ids, list) or not all(isinstance(s, str) for s in sheet_ids)
            ):
                return self.json(
                    {"error": "sheet_ids must be a list of strings", "reason": "wrong_type"},
                    status=422,
                )
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                return self.json(
                    {"error": "days must be a positive integer", "reason": "wrong_type"},
                    status=422,
                )
            training_status = await retrain_if_due("bulk-analysis", bulk=True)
            if sheet_ids is None:
                pool = await deps.pool()
                async with pool.acquire() as conn:
                    sheet_ids = [
                        r["sheet_id"] for r in await conn.fetch(_RECENT_SHEETS, days, 1000)
                    ]
            summary = await analyse(sheet_ids)
            return self.json(
                answer(f"{summary['sheets']} sheets analysed", training_status, summary)
            )

    @app.page("/analysis/train")
    class Train(View):
        """POST: train the expense-fraud models now; 200 when done within the wait, else 202."""

        async def post(self, request: Request) -> Response:
            if not authorised(request):
                return unauthorised(self)
            try:
                body = await read_object(request)
            except BadRequest as exc:
                return self.json(exc.body(), status=exc.status)
            force = body.get("force", False)
            if not isinstance(force, bool):
                return self.json(
                    {"error": "force must be true or false", "reason": "wrong_type"}, status=422
                )
            pool = await deps.pool()
            status = await family_status(pool, engine, family, recent=0)
            if status["in_flight"] is not None:
                request_id = status["in_flight"]["request_id"]
            else:
                from streams.policy import Counters

                counters = Counters(observed_at=datetime.now(UTC), **status["counters"])
                gaps = minimum_data_gaps(family, counters, engine.config)
                if gaps and not force:
                    return self.json(
                        {
                            "error": "Insufficient data: need " + "; ".join(gaps),
                            "reason": "insufficient_data",
                        },
                        status=422,
                    )
                request_id = uuid.uuid4()
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
            if not authorised(request):
                return unauthorised(self)
            try:
                body = await read_object(request)
                shadow_family = ModelFamily(body.get("family", ""))
            except BadRequest as exc:
                return self.json(exc.body(), status=exc.status)
            except ValueError as exc:
                return self.json({"error": str(exc), "reason": "invalid_value"}, status=422)
            version = body.get("version")
            if version is None:
                deps.scoring.holder.set_shadow(None, shadow_family)
                return self.json({"family": shadow_family.value, "shadow": None})
            if not isinstance(version, str):
                return self.json(
                    {"error": "version must be text", "reason": "wrong_type"}, status=422
                )
            from schemas.artifacts import ArtifactIntegrityError
            from streams.models import ModelRefused

            try:
                model = await deps.scoring.loader.load(version)
            except (ModelRefused, ArtifactIntegrityError) as exc:
                return self.json({"error": str(exc), "reason": "model_refused"}, status=422)
            if model.family is not shadow_family:
                return self.json(
                    {
                        "error": f"{version} is a {model.family.value} model",
                        "reason": "invalid_value",
                    },
                    status=422,
                )
            deps.scoring.holder.set_shadow(model, shadow_family)
            return self.json({"family": shadow_family.value, "shadow": version})
