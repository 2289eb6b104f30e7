"""The OpenAPI document: generated from the route table, committed, and true to the blueprints."""

from __future__ import annotations

import json
from pathlib import Path

import faust
import pytest

from streams.web import BLUEPRINTS
from streams.web.openapi import document, rendered
from streams.web.routes import ROUTES, Route

ROOT = Path(__file__).resolve().parents[3]
COMMITTED = ROOT / "schemas" / "openapi.json"


def test_the_committed_document_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == rendered(), (
        "schemas/openapi.json is stale: regenerate it with "
        "`retrainer openapi > schemas/openapi.json` (or `python -m streams.web.openapi`)"
    )


def test_the_blueprints_register_exactly_the_routes_of_the_table() -> None:
    app = faust.App("openapi-test", web_enabled=False)
    for blueprint in BLUEPRINTS:
        blueprint.register(app)
    registered = {
        (method.lower(), path)
        for path, view in app.web.views.items()
        for method in view.get_methods()
        if method != "HEAD"
    }
    assert registered == {(route.method, route.path) for route in ROUTES}


def test_every_refusal_is_the_one_error_shape_and_every_post_needs_the_token() -> None:
    doc = document()
    error = {"$ref": "#/components/schemas/ErrorAnswer"}
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                schema = response["content"].get("application/json", {}).get("schema")
                if int(status) >= 400 and not (path == "/health" and status == "503"):
                    assert schema == error, (method, path, status)
            if method == "post":
                assert operation["security"] == [{"bearer": []}]
                assert "401" in responses
            else:
                assert "security" not in operation
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_reference_resolves() -> None:
    doc = document()
    text = json.dumps(doc)
    names = set(doc["components"]["schemas"])
    for ref in {part.split('"')[0] for part in text.split('"#/components/schemas/')[1:]}:
        assert ref in names


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_request_models_refuse_unknown_fields(route: Route) -> None:
    for model in (route.body, route.query):
        if model is not None:
            assert model.model_config.get("extra") == "forbid"
