"""Retraining: the pre-delinquency engine's status and the manual trigger."""

from __future__ import annotations

from faust import web

from schemas.base import ModelFamily
from streams.readmodel import family_status, next_manual_request
from streams.signals import SignalKind
from streams.web.answers import StatusAnswer, TriggerAccepted, TriggerInFlight
from streams.web.bodies import TriggerBody, parse_family
from streams.web.views import ApiView

blueprint = web.Blueprint("retraining")


@blueprint.route("/retraining/status", name="status")
class RetrainingStatus(ApiView):
    """GET: the pre-delinquency engine's status shape, for one family or both."""

    async def get(self, request: web.Request) -> web.Response:
        family = parse_family(request.query.get("family", ModelFamily.DELINQUENCY.value))
        pool = await self.ctx.pool()
        status = await family_status(pool, self.ctx.policy, family, quality=self.ctx.quality)
        others = {
            f.value: await family_status(pool, self.ctx.policy, f, 3, self.ctx.quality)
            for f in ModelFamily
            if f is not family
        }
        return self.answer(StatusAnswer(**dict(status), families=others))


@blueprint.route("/retraining/trigger", name="trigger")
class RetrainingTrigger(ApiView):
    """POST: ask for a retraining now; answers at once with the request id (202)."""

    async def post(self, request: web.Request) -> web.Response:
        body = await self.body(request, TriggerBody)
        family = body.family
        flight, request_id = await next_manual_request(await self.ctx.pool(), family)
        if flight is not None:
            busy = TriggerInFlight(
                request_id=flight,
                family=family,
                status="already_in_flight",
                message="a retraining of this family is already under way",
            )
            return self.answer(busy, status=202)
        await self.ctx.signal(
            family,
            SignalKind.MANUAL,
            request_id=request_id,
            requested_by=body.requested_by,
            force=body.force,
        )
        accepted = TriggerAccepted(
            request_id=request_id,
            family=family,
            force=body.force,
            status="accepted",
            status_url=f"/retraining/status?family={family.value}",
        )
        return self.answer(accepted, status=202)
