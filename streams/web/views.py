"""The base of every view: the bearer token checked once, answers and refusals in one shape."""

from __future__ import annotations

from typing import Any, ClassVar, Final

from faust import web
from pydantic import BaseModel

from streams.web.auth import check_bearer
from streams.web.bodies import Body, read_body
from streams.web.context import WebContext, context_of
from streams.web.errors import OUTAGES, ApiError, outage_response

MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that need the bearer token."""


class ApiView(web.View):
    """A view of the worker's API.

    A mutating request without the right bearer token is refused before the handler runs; an
    `ApiError` or an unreachable dependency is answered in the one error shape.
    """

    mutating: ClassVar[frozenset[str]] = MUTATING

    @property
    def ctx(self) -> WebContext:
        return context_of(self.app)

    async def dispatch(self, request: Any) -> Any:
        try:
            if request.method in self.mutating:
                token = self.ctx.settings.api_token
                check_bearer(token, request.headers.get("Authorization", ""))
            return await super().dispatch(request)
        except ApiError as exc:
            return exc.response()
        except OUTAGES as exc:
            return outage_response(request, exc)

    async def body(self, request: web.Request, model: type[Body]) -> Body:
        """The request's JSON body as `model`, bounded as every body is."""
        return await read_body(request, model, self.ctx.settings.max_string_length)

    def answer(self, model: BaseModel, status: int = 200) -> web.Response:
        """`model` as the JSON answer."""
        return self.json(model.model_dump(mode="json", exclude_none=False), status=status)
