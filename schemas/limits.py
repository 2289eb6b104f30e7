"""The codec's edge limits, and the per-decode context that carries them into field validators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CodecLimits:
    """Bounds the codec enforces on every message; the defaults are the published contract."""

    max_payload_bytes: int = 1024 * 1024
    max_amount: Decimal = Decimal(1_000_000)
    max_string_length: int = 2000
    max_future: timedelta = timedelta(days=2)

    def __post_init__(self) -> None:
        if self.max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")
        # Accept an int for convenience (max_amount=5000) but hold a Decimal.
        object.__setattr__(self, "max_amount", Decimal(self.max_amount))
        if not self.max_amount.is_finite() or self.max_amount < 0:
            raise ValueError("max_amount must be a finite, non-negative amount")
        if self.max_string_length <= 0:
            raise ValueError("max_string_length must be positive")
        if self.max_future < timedelta(0):
            raise ValueError("max_future must not be negative")


DEFAULT_LIMITS = CodecLimits()


class ValidationContext:
    """What one decode validates against: the limits and the latest instant and date it accepts.

    The codec builds one per message from its clock, so validators never read a clock themselves
    and tests can pin time. (A plain slotted class: it is built once per message, and a frozen
    dataclass would cost more than the validation of a small event.)
    """

    __slots__ = ("latest_date", "latest_datetime", "limits", "max_amount", "max_string_length")

    def __init__(self, now: datetime, limits: CodecLimits) -> None:
        """The context for a decode happening at `now` (timezone-aware) under `limits`."""
        if now.tzinfo is None:
            raise ValueError("the codec's clock must return a timezone-aware datetime")
        latest = (now + limits.max_future).astimezone(UTC)
        self.limits = limits
        self.latest_datetime = latest
        self.latest_date = latest.date()
        # Copies of two limits, read once per string or amount on the hot path.
        self.max_string_length = limits.max_string_length
        self.max_amount = limits.max_amount
