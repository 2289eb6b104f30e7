"""Operations: health, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.web.views import ApiView

blueprint = web.Blueprint("ops")


@blueprint.route("/health", name="health")
class Health(ApiView):
    """GET: whether the worker reaches PostgreSQL and Kafka."""

    async def get(self, request: web.Request) -> web.Response:
        # The last background probe (streams.health): answers at once, however busy.
        reachability = self.ctx.reachability
        return self.json(reachability.snapshot(), status=200 if reachability.healthy else 503)


@blueprint.route("/metrics", name="metrics")
class Metrics(ApiView):
    """GET: Prometheus exposition of this worker's metrics."""

    async def get(self, request: web.Request) -> web.Response:
        # aiohttp takes the charset apart from the media type.
        media_type = CONTENT_TYPE_LATEST.split("; charset=")[0]
        return self.bytes(generate_latest(), content_type=media_type)


@blueprint.route("/openapi.json", name="openapi")
class OpenApi(ApiView):
    """GET: this API's OpenAPI 3.1 document."""

    _document: dict[str, object] | None = None

    async def get(self, request: web.Request) -> web.Response:
        if OpenApi._document is None:
            # Imported here so that `python -m streams.web.openapi` finds it not yet imported.
            from streams.web.openapi import document

            OpenApi._document = document()
        return self.json(OpenApi._document)
