"""Every dead letter of both services is made here, from the message as it came off its topic.

The truncation rule (a prefix plus the original size and digest past the letter's budget) is
`DeadLettered.from_message`'s, so any message gives a letter Kafka accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.dead_letter import KEPT_KEY_BYTES, KEPT_VALUE_BYTES, DeadLettered


@dataclass(frozen=True)
class RawMessage:
    """A message as it came off the topic: bytes plus where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_from(
    raw: RawMessage,
    stage: str,
    reason: str,
    error: str = "",
    *,
    at: datetime | None = None,
    bare: bool = False,
) -> DeadLettered:
    """The dead letter of `raw`, refused at `stage` for `reason` (`error` says more).

    `bare` keeps none of the message's bytes, only where it was and why: for a dead-letter topic
    that refuses even a letter within the default budgets.
    """
    return DeadLettered.from_message(
        source_topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=raw.key,
        value=raw.value,
        stage=stage,
        reason=reason,
        error=error or reason,
        at=at or datetime.now(UTC),
        kept_value_bytes=0 if bare else KEPT_VALUE_BYTES,
        kept_key_bytes=0 if bare else KEPT_KEY_BYTES,
    )
