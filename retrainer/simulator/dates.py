"""Time arithmetic on numpy arrays: microsecond timestamps, day numbers, weekends and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DATE = date(1970, 1, 1)
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch; integer so timelines sort and compare exactly."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(us))


def from_day(day: int) -> date:
    return EPOCH_DATE + timedelta(days=int(day))


def day_of(us: IntArray) -> IntArray:
    return np.floor_divide(us, US_PER_DAY)


def weekday(days: IntArray) -> IntArray:
    """Monday = 0 … Sunday = 6 (1970-01-01 was a Thursday)."""
    return np.asarray((days + 3) % 7, dtype=np.int64)


def _easter(year: int) -> date:
    # Anonymous Gregorian algorithm (Meeus/Jones/Butcher).
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def holidays(first_year: int, last_year: int) -> IntArray:
    """Day numbers of common public holidays (fixed dates plus Easter) in the given years."""
    found: list[date] = []
    for year in range(first_year, last_year + 1):
        found += [date(year, m, d) for m, d in ((1, 1), (5, 1), (12, 24), (12, 25), (12, 26))]
        easter = _easter(year)
        found += [easter + timedelta(days=offset) for offset in (-2, 1, 39, 50)]
    return np.array(sorted((d - EPOCH_DATE).days for d in found), dtype=np.int64)


def is_off_day(days: IntArray, holiday_days: IntArray) -> BoolArray:
    """True for Saturdays, Sundays and holidays."""
    return np.asarray((weekday(days) >= 5) | np.isin(days, holiday_days), dtype=np.bool_)
