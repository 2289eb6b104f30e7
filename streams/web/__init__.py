"""The worker's HTTP API: one Faust blueprint per area, over one context object.

`install(app, ctx)` registers the blueprints on a Faust app and answers every refusal in the
one JSON error shape (`streams.web.errors`); `streams.web.openapi` describes the API.
"""

from __future__ import annotations

from typing import Final

import faust
from faust.web.drivers.aiohttp import Web as AiohttpWeb

from streams.web import analysis, expenses, models, ops, retraining
from streams.web.context import WebContext, bind
from streams.web.errors import json_errors

BLUEPRINTS: Final = (
    retraining.blueprint,
    expenses.blueprint,
    analysis.blueprint,
    models.blueprint,
    ops.blueprint,
)


def install(app: faust.App, ctx: WebContext) -> None:
    """Register the API's blueprints on `app`; its views answer from `ctx`."""
    bind(app, ctx)
    for blueprint in BLUEPRINTS:
        blueprint.register(app)
    # Every refusal, aiohttp's own (404, 405, 413) included, leaves in the one JSON shape.
    driver = app.web
    if not isinstance(driver, AiohttpWeb):
        raise TypeError(f"the HTTP API needs Faust's aiohttp web driver, not {type(driver)}")
    driver.web_app.middlewares.append(json_errors(ctx.settings.max_string_length))


__all__ = ["BLUEPRINTS", "WebContext", "install"]
