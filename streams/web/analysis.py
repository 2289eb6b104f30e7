"""Analysis: the expense app's analyze, bulk analysis and train, retraining first when due."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Final

from faust import web

from schemas.base import ModelFamily
from streams.policy import Action, minimum_data_gaps
from streams.readmodel import (
    AnalysisSummary,
    analyse,
    analysis_answer,
    family_status,
    next_manual_request,
)
from streams.signals import SignalKind
from streams.store import analysis as analysis_store
from streams.store import sheets as sheet_store
from streams.web.answers import TrainDone, TrainPending
from streams.web.bodies import MAX_SHEET_IDS, AnalyzeBody, BulkBody, TrainBody
from streams.web.context import WebContext
from streams.web.errors import ApiError, shown
from streams.web.views import ApiView

blueprint = web.Blueprint("analysis")

FAMILY: Final = ModelFamily.EXPENSE_FRAUD
POLL_S: Final = 0.2
"""How often a request waiting on training looks again."""
NO_TRAINING: Final = "No training needed"


async def wait_for_request(ctx: WebContext, request_id: uuid.UUID) -> tuple[str, str | None]:
    """Wait (bounded) until the request's model scores here, or it ended without one.

    Returns (`promoted`, version), (status, reason) or (`pending`, None) at the deadline.
    """
    pool = await ctx.pool()
    deadline = time.monotonic() + ctx.settings.analysis_wait_s
    while time.monotonic() < deadline:
        current = ctx.holder.current(FAMILY)
        if current is not None and current.request_id == str(request_id):
            return "promoted", current.version
        row = await analysis_store.request_outcome(pool, request_id)
        if row is not None and row["status"] != "promoted":
            return row["status"], row["outcome_reason"] or row["trigger_reason"]
        await asyncio.sleep(POLL_S)
    return "pending", None


async def retrain_if_due(ctx: WebContext, requested_by: str, bulk: bool) -> str:
    """Ask for a retraining when one is due and wait for it (bounded); the training status."""
    pool = await ctx.pool()
    status = await family_status(pool, ctx.policy, FAMILY, 0, ctx.quality)
    # Asked by a person: a trigger held by the minimum interval is due all the same.
    if status.decision in (Action.REQUEST, Action.HELD):
        # Every trigger until the family's next request is answered gets the same id: the
        # policy folds triggers of one debounce window into one request, and this is its id.
        _, request_id = await next_manual_request(pool, FAMILY)
        await ctx.signal(
            FAMILY, SignalKind.MANUAL, request_id=request_id, requested_by=requested_by
        )
    elif status.in_flight is not None:
        request_id = status.in_flight.request_id
        current = ctx.holder.current(FAMILY)
        if current is not None and current.request_id == str(request_id):
            # Answered already: its model scores here; the policy has yet to hear of it.
            return NO_TRAINING
    else:
        return NO_TRAINING
    outcome, detail = await wait_for_request(ctx, request_id)
    if outcome == "promoted":
        before = "bulk analysis" if bulk else "analysis"
        return f"Models auto-trained before {before}"
    if outcome == "pending":
        return (
            f"Retraining requested ({request_id}) but not finished within "
            f"{ctx.settings.analysis_wait_s:.0f} s; analysed with the current model"
        )
    return f"Training {outcome}: {detail}; analysed with the current model"


async def analysed(ctx: WebContext, sheet_ids: list[str]) -> AnalysisSummary:
    """The sheets' lines scored by the model this worker scores expense-fraud with."""
    return await analyse(
        await ctx.pool(),
        ctx.holder.current(FAMILY),
        sheet_ids,
        ctx.settings.approval_limit,
        ctx.settings.expense_history_days,
    )


@blueprint.route("/sheets/{sheet_id}/analyze", name="analyze")
class AnalyzeSheet(ApiView):
    """POST: retrain first if due (bounded wait), then score the sheet's lines."""

    async def post(self, request: web.Request, sheet_id: str) -> web.Response:
        await self.body(request, AnalyzeBody)
        if not await sheet_store.is_stored(await self.ctx.pool(), sheet_id):
            raise ApiError(
                404, "unknown_sheet", f"no sheet {shown(sheet_id)} is stored", "sheet_id"
            )
        status = await retrain_if_due(self.ctx, "analyze", bulk=False)
        summary = await analysed(self.ctx, [sheet_id])
        return self.answer(analysis_answer(f"Sheet {sheet_id} analysed", status, summary))


@blueprint.route("/analysis/bulk", name="bulk")
class AnalyzeBulk(ApiView):
    """POST: like analyze, for many sheets (`sheet_ids`, default: the last `days` days)."""

    async def post(self, request: web.Request) -> web.Response:
        body = await self.body(request, BulkBody)
        status = await retrain_if_due(self.ctx, "bulk-analysis", bulk=True)
        sheet_ids = body.sheet_ids
        if sheet_ids is None:
            pool = await self.ctx.pool()
            sheet_ids = await sheet_store.recent_sheet_ids(pool, body.days, MAX_SHEET_IDS)
        summary = await analysed(self.ctx, sheet_ids)
        return self.answer(analysis_answer(f"{summary.sheets} sheets analysed", status, summary))


async def _train_request(ctx: WebContext, force: bool) -> uuid.UUID:
    """The request in flight, or a new manual one (422 without the minimum data, unless
    forced)."""
    pool = await ctx.pool()
    status = await family_status(pool, ctx.policy, FAMILY, 0, ctx.quality)
    if status.in_flight is not None:
        return status.in_flight.request_id
    gaps = minimum_data_gaps(FAMILY, status.counted(), ctx.policy)
    if gaps and not force:
        raise ApiError(422, "insufficient_data", "Insufficient data: need " + "; ".join(gaps))
    _, request_id = await next_manual_request(pool, FAMILY)
    await ctx.signal(
        FAMILY, SignalKind.MANUAL, request_id=request_id, requested_by="analysis-train", force=force
    )
    return request_id


@blueprint.route("/analysis/train", name="train")
class Train(ApiView):
    """POST: train the expense-fraud models now; 200 when done within the wait, else 202."""

    async def post(self, request: web.Request) -> web.Response:
        force = (await self.body(request, TrainBody)).force
        request_id = await _train_request(self.ctx, force)
        outcome, detail = await wait_for_request(self.ctx, request_id)
        if outcome == "pending":
            pending = TrainPending(
                message="Training requested; it has not finished yet",
                request_id=request_id,
                status_url=f"/retraining/status?family={FAMILY.value}",
            )
            return self.answer(pending, status=202)
        pool = await self.ctx.pool()
        cutoff = await analysis_store.request_cutoff(pool, request_id)
        promoted = outcome == "promoted"
        done = TrainDone(
            message=f"Models trained: {detail}" if promoted else f"Training {outcome}: {detail}",
            request_id=request_id,
            status=outcome,
            model_version=detail if promoted else None,
            sheets_used=await sheet_store.stored_up_to(pool, cutoff),
            models_trained=await analysis_store.artifact_roles(pool, detail or ""),
        )
        return self.answer(done)
