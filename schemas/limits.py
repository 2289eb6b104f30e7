"""The codec's edge limits, and the per-decode context that carries them into field validators.

Two kinds of limit live here. `CodecLimits` holds the published defaults a deployment may tune
(payload size, expense ceiling, text length, how far in the future a date may lie). The module
constants below are the storage limits: what the PostgreSQL columns, through asyncpg, hold exactly.
They are not configurable, because a value past them would be stored changed (or refused by the
database after the codec accepted it), and each has its own reject reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

MAX_AMOUNT_INTEGER_DIGITS = 18
"""Digits an amount may have before the decimal point: |amount| < 10**18 (`amount_out_of_range`).

Far beyond any real amount in any currency, and far inside what `numeric` and asyncpg's encoder
hold (asyncpg wraps an amount of 131,073 or more integer digits around to a wrong value).
"""

MAX_AMOUNT_DECIMAL_PLACES = 9
"""Digits an amount may have after the point, trailing zeros included (`amount_too_precise`).

With at most 18 + 9 = 27 significant digits an amount is also exact in Python's default decimal
context (28 digits). asyncpg cannot send more than 16,383 decimal places at all.
"""

AMOUNT_BOUND = Decimal(10) ** MAX_AMOUNT_INTEGER_DIGITS
"""Every accepted amount lies strictly between -AMOUNT_BOUND and AMOUNT_BOUND."""

MAX_IDENTIFIER_LENGTH = 256
"""Characters an id or code may have (`string_too_long`), whatever `max_string_length` says.

Ids are keys of B-tree indexes, whose entries PostgreSQL caps at 2,704 bytes: 256 characters are
at most 1,024 bytes of UTF-8, so an id fits an index entry alone or beside a date.
"""

EARLIEST_DATE = date(1900, 1, 1)
"""The earliest calendar date a contract accepts (`date_out_of_range`)."""

LATEST_DATE = date(9999, 12, 30)
"""The latest calendar date a contract accepts: asyncpg writes 9999-12-31 as `infinity`."""

EARLIEST_INSTANT = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest instant a contract accepts, in UTC (`date_out_of_range`).

Dates and instants before 1900 are mistakes in every upstream feed; asyncpg writes the first
day of year 1 as `-infinity`, and an offset can push such an instant out of Python's range.
"""

LATEST_INSTANT = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant a contract accepts, in UTC: asyncpg writes 9999-12-31T23:59:59.999999Z as
`infinity`, and a later local time with a negative offset is beyond Python's range in UTC."""


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
        if self.max_amount >= AMOUNT_BOUND:
            raise ValueError(f"max_amount must be below the storage bound {AMOUNT_BOUND:f}")
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

    __slots__ = (
        "latest_date",
        "latest_datetime",
        "limits",
        "max_amount",
        "max_identifier_length",
        "max_string_length",
    )

    def __init__(self, now: datetime, limits: CodecLimits) -> None:
        """The context for a decode happening at `now` (timezone-aware) under `limits`."""
        if now.tzinfo is None:
            raise ValueError("the codec's clock must return a timezone-aware datetime")
        try:
            latest = min((now + limits.max_future).astimezone(UTC), LATEST_INSTANT)
        except OverflowError:  # a max_future of millennia: the storage limit is the bound
            latest = LATEST_INSTANT
        self.limits = limits
        self.latest_datetime = latest
        self.latest_date = latest.date()
        # Copies of the limits read once per string or amount on the hot path.
        self.max_string_length = limits.max_string_length
        self.max_identifier_length = min(limits.max_string_length, MAX_IDENTIFIER_LENGTH)
        self.max_amount = limits.max_amount
