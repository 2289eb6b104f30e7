"""The OpenAPI 3.1 document of the HTTP API, generated from the route table and its models.

`python -m streams.web.openapi > schemas/openapi.json` exports it (a test checks the committed
file is what this module generates).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from streams.web.errors import ErrorAnswer
from streams.web.routes import ERROR_STATUSES, ROUTES, Answers, Route, Text

REF_TEMPLATE: Final = "#/components/schemas/{model}"
API_VERSION: Final = "1"
SECURITY_SCHEME: Final = "bearer"

_CSV_UPLOAD: Final = {
    "text/csv": {"schema": {"type": "string", "description": "the expense app's CSV export"}},
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
            "required": ["file"],
        }
    },
}


ModelKey = tuple[type[BaseModel], JsonSchemaMode]


def _models() -> list[ModelKey]:
    """Every model of the table, bodies as validated and answers as serialized."""
    found: dict[ModelKey, None] = {(ErrorAnswer, "serialization"): None}
    for route in ROUTES:
        for taken in (route.body, route.query):
            if taken is not None:
                found[(taken, "validation")] = None
        for answers in route.answers.values():
            if isinstance(answers, Text):
                continue
            for model in answers if isinstance(answers, tuple) else (answers,):
                found[(model, "serialization")] = None
    return list(found)


Refs = dict[ModelKey, dict[str, Any]]


def _content(answers: Answers, refs: Refs) -> dict[str, Any]:
    if isinstance(answers, Text):
        return {answers.media_type: {"schema": {"type": "string"}}}
    if isinstance(answers, tuple):
        schema: dict[str, Any] = {"oneOf": [refs[(m, "serialization")] for m in answers]}
    else:
        schema = refs[(answers, "serialization")]
    return {"application/json": {"schema": schema}}


def _description(answers: Answers) -> str:
    if isinstance(answers, Text):
        return answers.description
    models = answers if isinstance(answers, tuple) else (answers,)
    return " Or: ".join((m.__doc__ or m.__name__).strip().splitlines()[0] for m in models)


def _responses(route: Route, refs: Refs) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {"description": _description(answers), "content": _content(answers, refs)}
        for status, answers in route.answers.items()
    }
    error = {"application/json": {"schema": refs[(ErrorAnswer, "serialization")]}}
    for status in sorted(route.refusals):
        responses[str(status)] = {"description": ERROR_STATUSES[status], "content": error}
    return dict(sorted(responses.items()))


def _parameters(route: Route, refs: Refs, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in route.path_parameters
    ]
    if route.query is not None:
        query = schemas[refs[(route.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        required = set(query.get("required", ()))
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": schema}
            for name, schema in query["properties"].items()
        ]
    return parameters


def _request_body(route: Route, refs: Refs) -> dict[str, Any] | None:
    if route.body is None:
        return None
    schema = refs[(route.body, "validation")]
    if route.uploads:
        sheet = {"type": "object", "description": "one expense sheet"}
        json_schema: dict[str, Any] = {"anyOf": [schema, sheet, {"type": "array", "items": sheet}]}
        return {
            "required": True,
            "content": {"application/json": {"schema": json_schema}, **_CSV_UPLOAD},
        }
    return {
        "required": False,
        "description": "an empty body reads as {}",
        "content": {"application/json": {"schema": schema}},
    }


def _operation(route: Route, refs: Refs, schemas: dict[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.area],
    }
    parameters = _parameters(route, refs, schemas)
    if parameters:
        operation["parameters"] = parameters
    body = _request_body(route, refs)
    if body is not None:
        operation["requestBody"] = body
    if route.method == "post":
        operation["security"] = [{SECURITY_SCHEME: []}]
    operation["responses"] = _responses(route, refs)
    return operation


def document() -> dict[str, Any]:
    """The API's OpenAPI 3.1 document."""
    generated, top = models_json_schema(_models(), ref_template=REF_TEMPLATE)
    refs: Refs = {
        (model, mode): ref
        for (model, mode), ref in generated.items()
        if isinstance(model, type) and issubclass(model, BaseModel)
    }
    schemas = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route, refs, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "retrainer worker",
            "version": API_VERSION,
            "description": "Retraining status and triggers, expense upload and analysis, "
            "models, health and metrics of a retrainer worker. Every error is one JSON shape: "
            "ErrorAnswer.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "RETRAINER_API_TOKEN; mutating operations need it",
                }
            },
        },
    }


def rendered() -> str:
    """The document as committed in `schemas/openapi.json`."""
    return json.dumps(document(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(rendered())


if __name__ == "__main__":
    main()
