"""Dead letters: any message gives one, it fits Kafka's default size, a cut is identified."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import DecodeError, RejectReason
from schemas.codec import Codec
from schemas.dead_letter import (
    KEPT_ERROR_CHARS,
    KEPT_KEY_BYTES,
    KEPT_VALUE_BYTES,
    MAX_LETTER_BYTES,
    DeadLettered,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CODEC = Codec(clock=lambda: NOW)


def letter(key: bytes | None, value: bytes | None, **changes: object) -> DeadLettered:
    fields: dict[str, object] = {
        "source_topic": "retrain-requested",
        "partition": 2,
        "offset": 41,
        "key": key,
        "value": value,
        "stage": "decode",
        "reason": "string_too_long",
        "error": "string_too_long at reason_text: Text should have at most 2000 characters",
        "at": NOW,
        **changes,
    }
    return DeadLettered.from_message(**fields)  # type: ignore[arg-type]


def size_on_kafka(dead: DeadLettered) -> int:
    return len(CODEC.encode(dead)) + len(CODEC.key_of(dead))


def test_a_message_within_the_budget_is_kept_byte_for_byte() -> None:
    value = b'{"request_id": 1}'
    dead = letter(b"delinquency", value)
    assert not dead.truncated
    assert base64.b64decode(dead.value_b64) == value
    assert CODEC.key_of(dead) == b"delinquency"
    assert (dead.value_size, dead.value_sha256) == (len(value), hashlib.sha256(value).hexdigest())
    assert (dead.key_size, dead.key_sha256) == (11, hashlib.sha256(b"delinquency").hexdigest())
    assert CODEC.decode("dead-letter", CODEC.encode(dead)) == dead


def test_a_message_exactly_at_the_budget_is_not_cut() -> None:
    dead = letter(b"k" * KEPT_KEY_BYTES, b"v" * KEPT_VALUE_BYTES)
    assert not dead.truncated
    assert base64.b64decode(dead.value_b64) == b"v" * KEPT_VALUE_BYTES
    assert size_on_kafka(dead) < MAX_LETTER_BYTES


def test_a_value_over_the_budget_keeps_a_prefix_its_size_and_sha256() -> None:
    value = bytes(range(256)) * 3600  # 921,600 bytes: a ~900 KB request
    dead = letter(b"delinquency", value)
    assert dead.truncated
    assert base64.b64decode(dead.value_b64) == value[:KEPT_VALUE_BYTES]
    assert dead.value_size == len(value)
    assert dead.value_sha256 == hashlib.sha256(value).hexdigest()
    assert CODEC.key_of(dead) == b"delinquency"
    assert size_on_kafka(dead) < MAX_LETTER_BYTES
    assert CODEC.decode("dead-letter", CODEC.encode(dead)) == dead


def test_a_key_over_the_budget_is_cut_as_well() -> None:
    key = b"K" * 900_000
    dead = letter(key, b"{}")
    assert dead.truncated
    assert CODEC.key_of(dead) == key[:KEPT_KEY_BYTES]
    assert (dead.key_size, dead.key_sha256) == (len(key), hashlib.sha256(key).hexdigest())
    assert base64.b64decode(dead.value_b64) == b"{}"
    assert size_on_kafka(dead) < MAX_LETTER_BYTES


def test_the_largest_letter_fits_kafkas_default_message_size() -> None:
    # Key and value far past their budgets, texts past their limits in the characters JSON
    # spells longest (control characters become six-byte escapes).
    dead = letter(
        b"\xff" * 2_000_000,
        b"\x00" * 2_000_000,
        stage="\x01" * 5000,
        reason="\x02" * 5000,
        error="\x03" * 50_000,
        source_topic="t" * 249,
        offset=2**63 - 1,
    )
    assert dead.truncated
    assert len(dead.error) == KEPT_ERROR_CHARS
    assert size_on_kafka(dead) < MAX_LETTER_BYTES


def test_budgets_of_zero_keep_no_bytes_but_still_identify_them() -> None:
    value = b"x" * 100_000
    dead = letter(b"key", value, kept_value_bytes=0, kept_key_bytes=0)
    assert dead.truncated
    assert dead.value_b64 == ""
    assert dead.key_b64 == ""
    assert dead.value_size == len(value)
    assert dead.value_sha256 == hashlib.sha256(value).hexdigest()
    assert size_on_kafka(dead) < 2000


def test_a_message_without_key_or_value() -> None:
    dead = letter(None, None)
    assert dead.key_b64 is None
    assert (dead.key_size, dead.key_sha256) == (None, None)
    assert dead.value_b64 == ""
    assert dead.value_size == 0
    assert not dead.truncated


@settings(max_examples=150, deadline=None)
@given(
    key=st.none() | st.binary(max_size=64),
    value=st.none() | st.binary(max_size=256),
    stage=st.text(),
    reason=st.text(),
    error=st.text(),
    partition=st.integers(min_value=-5, max_value=2**31 - 1),
    offset=st.integers(min_value=-5, max_value=2**63 - 1),
)
@example(
    key=None,
    value=None,
    stage="",
    reason="\x00",
    error="\ud800 lone surrogate",
    partition=-1,
    offset=-1,
)
def test_any_message_and_any_error_text_give_a_letter_that_decodes(
    key: bytes | None,
    value: bytes | None,
    stage: str,
    reason: str,
    error: str,
    partition: int,
    offset: int,
) -> None:
    dead = letter(
        key, value, stage=stage, reason=reason, error=error, partition=partition, offset=offset
    )
    assert CODEC.decode("dead-letter", CODEC.encode(dead)) == dead
    assert base64.b64decode(dead.value_b64) == (value or b"")


def _v1_letter() -> dict[str, object]:
    return {
        "event_id": "6f1c2a43-8f1e-4a53-9c55-0d7d5b9a4e21",
        "occurred_at": "2026-05-30T09:15:00Z",
        "schema_version": 1,
        "source_topic": "expense-sheet",
        "partition": 0,
        "offset": 3,
        "key_b64": "c2hlZXQtMQ==",
        "value_b64": "e30=",
        "stage": "decode",
        "reason": "invalid_json",
        "error": "EOF",
        "failed_at": "2026-05-30T09:15:00Z",
    }


def test_a_v1_letter_decodes_as_a_v2_letter_that_kept_everything() -> None:
    dead = CODEC.decode_as(DeadLettered, json.dumps(_v1_letter()).encode())
    assert dead.schema_version == 2
    assert dead.truncated is False
    assert base64.b64decode(dead.value_b64) == b"{}"
    assert dead.value_size is None


def test_a_truncated_letter_must_say_how_to_find_the_whole_message() -> None:
    with pytest.raises(ValidationError):
        DeadLettered(
            occurred_at=NOW,
            source_topic="retrain-requested",
            partition=0,
            offset=0,
            value_b64="e30=",
            stage="decode",
            reason="invalid_json",
            error="",
            failed_at=NOW,
            truncated=True,
        )
    wire = {**_v1_letter(), "schema_version": 2, "truncated": True}
    with pytest.raises(DecodeError) as caught:
        CODEC.decode_as(DeadLettered, json.dumps(wire).encode())
    assert caught.value.reason is RejectReason.MISSING_FIELD
