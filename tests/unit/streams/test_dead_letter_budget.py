"""The worker's dead letters come from the same constructor as the trainer's: any message fits."""

from __future__ import annotations

import base64
import hashlib

from edge.dead_letters import RawMessage, dead_letter_from
from schemas.codec import Codec
from schemas.dead_letter import KEPT_VALUE_BYTES, MAX_LETTER_BYTES

CODEC = Codec()


def test_a_near_limit_message_gives_a_letter_kafka_takes_with_defaults() -> None:
    value = b"x" * 1_000_000
    letter = dead_letter_from(
        RawMessage("customer-created", 3, 17, b"c-1", value), "decode", "string_too_long", "long"
    )
    assert letter.truncated
    assert base64.b64decode(letter.value_b64) == value[:KEPT_VALUE_BYTES]
    assert (letter.value_size, letter.value_sha256) == (
        len(value),
        hashlib.sha256(value).hexdigest(),
    )
    assert len(CODEC.encode(letter)) + len(CODEC.key_of(letter)) < MAX_LETTER_BYTES


def test_a_small_message_is_kept_byte_for_byte() -> None:
    letter = dead_letter_from(
        RawMessage("expense-label", 0, 5, None, b"{oops"), "decode", "invalid_json", "EOF"
    )
    assert not letter.truncated
    assert base64.b64decode(letter.value_b64) == b"{oops"
    assert CODEC.decode("dead-letter", CODEC.encode(letter)) == letter
