"""dead-letter: a message that could not be handled, kept byte for byte with the reason."""

from __future__ import annotations

import base64
from typing import Annotated, ClassVar, Literal

from schemas.base import (
    VERSION_IS_INT,
    Base64,
    Count,
    Event,
    Identifier,
    Offset,
    Text,
    TopicName,
    UtcDatetime,
)


class DeadLettered(Event):
    """A message was set aside at some stage instead of crashing the worker."""

    TOPIC: ClassVar[str] = "dead-letter"
    KEY_FIELD: ClassVar[str] = "key_b64"
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Annotated[Literal[1], VERSION_IS_INT] = 1
    """Version of this event's shape."""
    source_topic: TopicName
    partition: Count
    offset: Offset
    key_b64: Base64 | None = None
    """The original key, base64; null when the message had none."""
    value_b64: Base64
    """The original value, base64 (not subject to the text length limit)."""
    stage: Identifier
    """Where it failed: decode, store, score, ..."""
    reason: Identifier
    """Machine-readable code, e.g. a RejectReason value."""
    error: Text
    """What went wrong, for people."""
    failed_at: UtcDatetime

    def partition_key(self) -> bytes:
        """The original message key (empty when it had none), so a key's letters stay in order."""
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else b""
