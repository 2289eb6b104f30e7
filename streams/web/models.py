"""Models: the registry's versions, what this worker scores with, and shadow scoring."""

from __future__ import annotations

import json
from typing import Any

from faust import web

from schemas.artifacts import ArtifactIntegrityError
from streams.models import ModelRefused
from streams.store import analysis as analysis_store
from streams.web.answers import LoadedVersions, ModelsAnswer, RegistryVersion, ShadowAnswer
from streams.web.bodies import ShadowBody
from streams.web.errors import ApiError
from streams.web.views import ApiView

blueprint = web.Blueprint("models")

LISTED = 100
"""Most versions `GET /models` lists, newest first."""


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
