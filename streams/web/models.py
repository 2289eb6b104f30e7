"""Models: the registry's versions and reports, what this worker scores with, shadow scoring."""

from __future__ import annotations

import json
from typing import Any

from faust import web

from schemas.artifacts import ArtifactIntegrityError
from streams.models import ModelRefused
from streams.store import analysis as analysis_store
from streams.store import models as model_store
from streams.web.answers import LoadedVersions, ModelsAnswer, RegistryVersion, ShadowAnswer
from streams.web.bodies import ShadowBody
from streams.web.errors import ApiError, shown
from streams.web.views import ApiView

blueprint = web.Blueprint("models")

LISTED = 100
"""Most versions `GET /models` lists, newest first."""
REPORT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
"""A report is inline CSS and SVG only: the browser is told to run and fetch nothing else."""


def _version(row: Any) -> RegistryVersion:
    fields = dict(row)
    if isinstance(fields["metrics"], str):
        fields["metrics"] = json.loads(fields["metrics"])
    return RegistryVersion(**fields)


@blueprint.route("/models", name="list")
class Models(ApiView):
    """GET: the registry's versions and what this worker scores with."""

    async def get(self, request: web.Request) -> web.Response:
        rows = await analysis_store.recent_versions(await self.ctx.pool(), LISTED)
        answer = ModelsAnswer(
            loaded={
                family: LoadedVersions(**loaded)
                for family, loaded in self.ctx.holder.versions().items()
            },
            follower_ready=self.ctx.follower.ready.is_set(),
            versions=[_version(row) for row in rows],
        )
        return self.answer(answer)


@blueprint.route("/models/shadow", name="shadow")
class Shadow(ApiView):
    """POST {family, version}: score `version` in shadow beside the champion (null stops)."""

    async def post(self, request: web.Request) -> web.Response:
        body = await self.body(request, ShadowBody)
        family, version = body.family, body.version
        if version is None:
            self.ctx.holder.set_shadow(None, family)
            return self.answer(ShadowAnswer(family=family, shadow=None))
        try:
            model = await self.ctx.loader.load(version)
        except (ModelRefused, ArtifactIntegrityError) as exc:
            raise ApiError(422, "model_refused", str(exc), "version") from exc
        if model.family is not family:
            raise ApiError(
                422, "invalid_value", f"{version} is a {model.family.value} model", "family"
            )
        self.ctx.holder.set_shadow(model, family)
        return self.answer(ShadowAnswer(family=family, shadow=version))


@blueprint.route("/models/{version}/report", name="report")
class Report(ApiView):
    """GET: the version's report, one self-contained HTML page (written when it was trained)."""

    async def get(self, request: web.Request, version: str) -> web.Response:
        found = await model_store.version_report(await self.ctx.pool(), version)
        if not found.known:
            raise ApiError(
                404,
                "unknown_version",
                f"no model version {shown(version)} in the registry",
                "version",
            )
        if found.html is None:
            raise ApiError(
                404,
                "no_report",
                f"version {shown(version)} has no report (trained before reports were kept, or "
                "its report could not be drawn)",
                "version",
            )
        headers = {"Content-Security-Policy": REPORT_POLICY, "X-Content-Type-Options": "nosniff"}
        return self.html(found.html, headers=headers)
