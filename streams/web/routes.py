"""The one table of the HTTP API's operations: paths, bodies, answers and refusals.

The OpenAPI document is generated from it (`streams.web.openapi`), and a test checks that the
blueprints register exactly these operations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel

from streams.readmodel import AnalysisAnswer
from streams.web.answers import (
    HealthAnswer,
    ModelsAnswer,
    OpenApiDocument,
    ShadowAnswer,
    StatusAnswer,
    TrainDone,
    TrainPending,
    TriggerAccepted,
    TriggerInFlight,
    UploadAnswer,
)
from streams.web.bodies import (
    AnalyzeBody,
    BulkBody,
    RequestBody,
    ShadowBody,
    SheetsBody,
    StatusQuery,
    TrainBody,
    TriggerBody,
)


@dataclass(frozen=True)
class Text:
    """An answer that is not JSON."""

    media_type: str
    description: str


Answers = type[BaseModel] | tuple[type[BaseModel], ...] | Text
"""One model, one of several models, or a text body."""

ERROR_STATUSES: Final = {
    400: "The body is not JSON, or not a readable upload.",
    401: "No bearer token, or not this worker's (WWW-Authenticate tells which).",
    404: "Nothing is stored under that name.",
    413: "The body is larger than the worker takes.",
    415: "The body's media type is not one this operation takes.",
    422: "A field, query or path parameter is refused; `reason` says why, `field` where.",
    503: "PostgreSQL or Kafka is unreachable right now; try again after Retry-After seconds.",
}
"""Every refusal's status, answered in the one error shape (`ErrorAnswer`)."""


@dataclass(frozen=True)
class Route:
    """One operation of the API."""

    method: Literal["get", "post"]
    path: str
    area: str
    operation_id: str
    summary: str
    answers: dict[int, Answers]
    body: type[RequestBody] | None = None
    query: type[RequestBody] | None = None
    not_found: bool = False
    uploads: bool = False
    """The body may also be CSV, or a multipart form with the CSV as a file."""
    uses_dependencies: bool = True
    """Reads PostgreSQL or Kafka while answering, so may answer 503."""
    refusals: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        statuses = {422}
        if self.method == "post":
            statuses.add(401)
        if self.body is not None:
            statuses |= {400, 413, 415}
        if self.not_found:
            statuses.add(404)
        if self.uses_dependencies:
            statuses.add(503)
        object.__setattr__(self, "refusals", frozenset(statuses - set(self.answers)))

    @property
    def path_parameters(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


ROUTES: Final = (
    Route(
        "get",
        "/retraining/status",
        "retraining",
        "retrainingStatus",
        "The family's counters, the policy's verdict and its latest retrainings",
        {200: StatusAnswer},
        query=StatusQuery,
    ),
    Route(
        "post",
        "/retraining/trigger",
        "retraining",
        "retrainingTrigger",
        "Ask for a retraining now; answers at once with the request id",
        {202: (TriggerAccepted, TriggerInFlight)},
        body=TriggerBody,
    ),
    Route(
        "post",
        "/expenses/upload",
        "expenses",
        "expensesUpload",
        "Publish expense sheets (JSON, CSV or a multipart CSV file)",
        {200: UploadAnswer},
        body=SheetsBody,
        uploads=True,
    ),
    Route(
        "post",
        "/sheets/{sheet_id}/analyze",
        "analysis",
        "analyzeSheet",
        "Retrain first if due (bounded wait), then score the sheet's lines",
        {200: AnalysisAnswer},
        body=AnalyzeBody,
        not_found=True,
    ),
    Route(
        "post",
        "/analysis/bulk",
        "analysis",
        "analyzeBulk",
        "Like analyze, for many sheets (default: those of the last `days` days)",
        {200: AnalysisAnswer},
        body=BulkBody,
    ),
    Route(
        "post",
        "/analysis/train",
        "analysis",
        "analysisTrain",
        "Train the expense-fraud models now; 200 when done within the wait, else 202",
        {200: TrainDone, 202: TrainPending},
        body=TrainBody,
    ),
    Route(
        "get",
        "/models",
        "models",
        "listModels",
        "The registry's versions and what this worker scores with",
        {200: ModelsAnswer},
    ),
    Route(
        "get",
        "/models/{version}/report",
        "models",
        "modelReport",
        "The version's report: one self-contained HTML page of plots and figures",
        {200: Text("text/html", "the report (inline CSS and SVG; no script, no external URL)")},
        not_found=True,
    ),
    Route(
        "post",
        "/models/shadow",
        "models",
        "setShadow",
        "Score a version in shadow beside the champion (version null stops)",
        {200: ShadowAnswer},
        body=ShadowBody,
    ),
    Route(
        "get",
        "/health",
        "ops",
        "health",
        "Whether the worker reaches PostgreSQL and Kafka (503 when not)",
        {200: HealthAnswer, 503: HealthAnswer},
        uses_dependencies=False,
    ),
    Route(
        "get",
        "/metrics",
        "ops",
        "metrics",
        "Prometheus exposition of this worker's metrics",
        {200: Text("text/plain", "Prometheus text exposition format 0.0.4")},
        uses_dependencies=False,
    ),
    Route(
        "get",
        "/openapi.json",
        "ops",
        "openapi",
        "This API's OpenAPI 3.1 document",
        {200: OpenApiDocument},
        uses_dependencies=False,
    ),
)
