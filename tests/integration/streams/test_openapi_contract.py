"""The live worker keeps the contract of its own OpenAPI document (schemathesis against it).

Every operation of `GET /openapi.json` is called with generated requests, valid and invalid,
with and without the bearer token: no answer may be a server error, and every answer must have
a documented status, media type and body.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import errors as hypothesis_errors
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from streams.web.openapi import document
from streams.web.routes import ROUTES
from tests.factories import API_TOKEN
from tests.integration.streams.conftest import Workers

MAX_EXAMPLES = 6
"""Generated requests per operation, generation mode and token: about 200 in all."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass
class Tally:
    """Cases sent and failures found, per operation."""

    cases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _send(
    case: schemathesis.Case, base: str, headers: dict[str, str], where: str, tally: Tally
) -> None:
    tally.cases[where.split(" [")[0]] += 1
    response = case.call(base_url=base, headers=headers, timeout=30)
    try:
        case.validate_response(response, checks=CHECKS)
    except AssertionError as exc:  # schemathesis' Failure is one
        tally.failures.append(f"{where}: {exc}")
    except BaseExceptionGroup as group:  # several checks failed at once
        tally.failures.append(f"{where}: {group!r}")


def _exercise(
    operation: schemathesis.APIOperation, base: str, token: str | None, tally: Tally
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    label = f"{operation.method.upper()} {operation.path}"
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        where = f"{label} [{mode.value}, token={bool(token)}]"
        run = settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy(generation_mode=mode))(_send))
        try:
            run(base=base, headers=headers, where=where, tally=tally)
        except hypothesis_errors.Unsatisfiable:
            continue  # nothing of this operation can be made invalid (no parameters, no body)


@pytest.fixture
def worker(workers: Workers) -> tuple[Workers, int]:
    # Bounded waits: a generated train or analysis request must not wait minutes on a trainer
    # this test does not run.
    workers.extra_env.update({"RETRAINER_ANALYSIS_WAIT_S": "0.5", "RETRAINER_UPLOAD_WAIT_S": "0.5"})
    workers.create_topics()
    return workers, workers.start()


def test_every_operation_keeps_the_documented_contract(worker: tuple[Workers, int]) -> None:
    workers, port = worker
    base = f"http://127.0.0.1:{port}"
    served = workers.get("/openapi.json", port)
    assert served == document()
    # Loaded from the served document (from_url would leave out the operation that serves it).
    schema = schemathesis.openapi.from_dict(served)
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = Tally()
    for operation in operations:
        for token in (API_TOKEN, None):
            _exercise(operation, base, token, tally)
    print(
        f"schemathesis: {len(operations)} operations, {sum(tally.cases.values())} cases, "
        f"{len(tally.failures)} failures"
    )
    print(json.dumps(dict(tally.cases), indent=1))
    print("\n".join(tally.failures))
    assert len(operations) == len(ROUTES)
    assert tally.failures == []
    workers.assert_healthy(port)
