"""The contract spec itself: topics, keys, modules, enums, currencies, and what schemas imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from schemas import (
    EVENT_TYPES,
    ISO_4217_CODES,
    TOPICS,
    ModelFamily,
    OutcomeStatus,
    RejectReason,
    RetrainReason,
)

# topic -> (key field, class name, module), as in docs/contracts-spec.md
SPEC = {
    "expense-sheet": ("sheet_id", "ExpenseSheetSubmitted", "expense_sheet"),
    "customer-created": ("customer_id", "CustomerCreated", "customer_created"),
    "customer-activity": ("customer_id", "CustomerActivityRecorded", "customer_activity"),
    "expense-label": ("expense_id", "ExpenseLabelled", "expense_label"),
    "retrain-requested": ("family", "RetrainRequested", "retrain_requested"),
    "model-updated": ("family", "ModelUpdated", "model_updated"),
    "training-outcome": ("request_id", "TrainingOutcome", "training_outcome"),
    "expense-scored": ("expense_id", "ExpenseScored", "expense_scored"),
    "customer-scored": ("customer_id", "CustomerScored", "customer_scored"),
    "dead-letter": ("key_b64", "DeadLettered", "dead_letter"),
}


def test_the_registry_matches_the_spec() -> None:
    assert {
        name: (topic.key_field, topic.event_type.__name__, topic.event_type.__module__)
        for name, topic in TOPICS.items()
    } == {name: (key, cls, f"schemas.{module}") for name, (key, cls, module) in SPEC.items()}
    assert [t.TOPIC for t in EVENT_TYPES] == list(SPEC)
    assert TOPICS["expense-sheet"].event_type.SCHEMA_VERSION == 2


def test_every_event_carries_the_envelope_first() -> None:
    for event_type in EVENT_TYPES:
        assert list(event_type.model_fields)[:3] == ["event_id", "occurred_at", "schema_version"]


def test_enumerations_match_the_spec() -> None:
    assert [m.value for m in ModelFamily] == ["expense-fraud", "delinquency"]
    assert [m.value for m in RetrainReason] == [
        "new_sheets",
        "new_customers",
        "anomaly_rate_low",
        "anomaly_rate_high",
        "interval",
        "manual",
        "drift",
        "performance",
    ]
    assert [m.value for m in OutcomeStatus] == ["promoted", "rejected", "skipped", "failed"]
    assert [m.value for m in RejectReason] == [
        "payload_too_large",
        "invalid_json",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "invalid_value",
        "unknown_schema_version",
        "non_finite_amount",
        "negative_amount",
        "amount_above_ceiling",
        "invalid_currency",
        "date_in_future",
        "empty_sheet",
        "duplicate_expense_id",
        "string_too_long",
        "unknown_field",
        "amount_out_of_range",
        "amount_too_precise",
        "date_out_of_range",
    ]


def test_the_currency_list_is_the_active_iso_4217_list() -> None:
    assert len(ISO_4217_CODES) == 178
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in ISO_4217_CODES)
    assert {"EUR", "USD", "JPY", "CHF", "XCG", "ZWG", "SLE", "VED", "XAD", "XAU"} <= ISO_4217_CODES
    withdrawn = {"ANG", "BGN", "CUC", "HRK", "SLL", "ZWL", "LTL", "VEF", "MRO", "STD", "BYR"}
    assert not withdrawn & ISO_4217_CODES


FORBIDDEN_AT_RUNTIME = (
    "streams",
    "trainer",
    "retrainer",
    "faust",
    "mode",
    "confluent_kafka",
    "aiokafka",
    "asyncpg",
    "jsonschema",  # a development tool only; schemas.jsonschema writes JSON without it
    "hypothesis",
)


@pytest.mark.timeout(60)
def test_importing_schemas_loads_no_kafka_faust_database_or_service_code() -> None:
    """The static rule lives in tests/unit/test_import_graph.py; this checks transitive imports."""
    program = (
        "import json, sys\n"
        "import schemas, schemas.codec, schemas.jsonschema, schemas.topics\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))
    assert not loaded & set(FORBIDDEN_AT_RUNTIME)
