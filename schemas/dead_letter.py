"""dead-letter: a message that could not be handled, kept with the reason why.

A letter keeps the original key and value byte for byte up to a budget; past it, a prefix plus
the original size and sha256. So every letter fits Kafka's default message size, whatever the
message was, and publishing a letter can never be what stops a consumer.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from schemas.base import (
    VERSION_IS_INT,
    Base64,
    Count,
    Event,
    Identifier,
    Offset,
    Sha256,
    Text,
    TopicName,
    Upcaster,
    UtcDatetime,
)

MAX_LETTER_BYTES = 1_000_000
"""What a letter built by `DeadLettered.from_message` stays under, its key included: the smallest
of Kafka's default message size limits (librdkafka's `message.max.bytes`; brokers and topics
allow 1 MiB). A letter therefore fits any dead-letter topic created with default settings."""

KEPT_VALUE_BYTES = 512 * 1024
"""The most of an original value a letter keeps (in base64, about 683 KiB of the letter)."""

KEPT_KEY_BYTES = 16 * 1024
"""The most of an original key a letter keeps (it is also the letter's own Kafka key)."""

KEPT_ERROR_CHARS = 1000
"""The most of an error text a letter keeps."""

KEPT_CODE_CHARS = 200
"""The most of a stage or reason code a letter keeps."""


def upcast_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """A v1 letter always held the whole message: it is a v2 letter that was not truncated."""
    return {"truncated": False, **payload}


def _kept(data: bytes, budget: int) -> tuple[str, bool]:
    """The base64 of at most `budget` leading bytes of `data`, and whether that cut anything."""
    return base64.b64encode(data[: max(budget, 0)]).decode(), len(data) > max(budget, 0)


def _text(text: str, limit: int) -> str:
    """`text` as a letter can carry it: valid UTF-8, no NUL (PostgreSQL refuses it), cut short."""
    clean = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\\0")
    return clean[:limit]


class DeadLettered(Event):
    """A message was set aside at some stage instead of crashing the worker."""

    TOPIC: ClassVar[str] = "dead-letter"
    KEY_FIELD: ClassVar[str] = "key_b64"
    SCHEMA_VERSION: ClassVar[int] = 2
    UPCASTERS: ClassVar[Mapping[int, Upcaster]] = MappingProxyType({1: upcast_v1_to_v2})

    schema_version: Annotated[Literal[2], VERSION_IS_INT] = 2
    """Version of this event's shape (v1 letters, never truncated, are upcast by the codec)."""
    source_topic: TopicName
    partition: Count
    offset: Offset
    key_b64: Base64 | None = None
    """The original key, base64 (a prefix when `truncated`); null when the message had none."""
    value_b64: Base64
    """The original value, base64 (a prefix when `truncated`; not subject to the text limit)."""
    stage: Identifier
    """Where it failed: decode, store, score, ..."""
    reason: Identifier
    """Machine-readable code, e.g. a RejectReason value."""
    error: Text
    """What went wrong, for people."""
    failed_at: UtcDatetime
    truncated: bool = False
    """Only a prefix of the key or value is kept (over the byte budget); see sizes and digests."""
    value_size: Count | None = None
    """Length of the original value in bytes (null only in a letter upcast from v1)."""
    value_sha256: Sha256 | None = None
    """SHA-256 of the whole original value, hex (null only in a letter upcast from v1)."""
    key_size: Count | None = None
    """Length of the original key in bytes; null when it had none (or upcast from v1)."""
    key_sha256: Sha256 | None = None
    """SHA-256 of the whole original key, hex; null when it had none (or upcast from v1)."""

    @model_validator(mode="after")
    def _truncation_is_identified(self) -> Self:
        # A prefix alone cannot be told apart from a whole message: it needs the size and digest.
        if self.truncated and (
            self.value_size is None
            or self.value_sha256 is None
            or (self.key_b64 is not None and (self.key_size is None or self.key_sha256 is None))
        ):
            raise PydanticCustomError(
                "missing", "A truncated letter states the original sizes and sha256 digests"
            )
        return self

    @classmethod
    def from_message(
        cls,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        stage: str,
        reason: str,
        error: str,
        at: datetime,
        kept_value_bytes: int = KEPT_VALUE_BYTES,
        kept_key_bytes: int = KEPT_KEY_BYTES,
    ) -> Self:
        """The letter for one message, from its raw bytes; it stays under MAX_LETTER_BYTES.

        Bytes within the budgets are kept exactly; past them, a prefix with `truncated` set.
        Texts are made valid for the contract (cut short, NUL escaped), so any message and any
        error text give a letter. Smaller budgets (0: no bytes at all) are for a dead-letter
        topic that refuses even a letter within the defaults.
        """
        value = value or b""
        value_b64, value_cut = _kept(value, kept_value_bytes)
        key_b64, key_cut = _kept(key, kept_key_bytes) if key is not None else (None, False)
        return cls(
            occurred_at=at,
            source_topic=source_topic,
            partition=max(partition, 0),
            offset=max(offset, 0),
            key_b64=key_b64,
            value_b64=value_b64,
            stage=_text(stage, KEPT_CODE_CHARS) or "unknown",
            reason=_text(reason, KEPT_CODE_CHARS) or "unknown",
            error=_text(error, KEPT_ERROR_CHARS),
            failed_at=at,
            truncated=value_cut or key_cut,
            value_size=len(value),
            value_sha256=hashlib.sha256(value).hexdigest(),
            key_size=len(key) if key is not None else None,
            key_sha256=hashlib.sha256(key).hexdigest() if key is not None else None,
        )

    def partition_key(self) -> bytes:
        """The original message key (empty when it had none), so a key's letters stay in order."""
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else b""
