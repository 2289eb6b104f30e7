"""The quality monitor's reading rules with a stand-in connection: nothing without a champion,
figures that cannot be read do not stop the policy, an outage goes to the caller's retry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from schemas.base import ModelFamily
from streams.quality import QualityConfig
from streams.services.quality import QualityMonitor

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
FRAUD = ModelFamily.EXPENSE_FRAUD


class FailingConnection:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.queries = 0

    async def fetch(self, *_: Any) -> list[Any]:
        self.queries += 1
        raise self.error


class StandInPool:
    def __init__(self, conn: FailingConnection) -> None:
        self.conn = conn

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[FailingConnection]:
        yield self.conn


def monitor(error: BaseException) -> tuple[QualityMonitor, FailingConnection]:
    conn = FailingConnection(error)

    async def pool() -> Any:
        return StandInPool(conn)

    return QualityMonitor(QualityConfig(), pool), conn


async def test_no_champion_no_read() -> None:
    quality, conn = monitor(AssertionError("not to be called"))
    assert await quality.figures(FRAUD, None, NOW) is None
    assert conn.queries == 0


async def test_unreadable_figures_leave_the_champion_without_figures_until_the_refresh() -> None:
    quality, conn = monitor(asyncpg.exceptions.UndefinedColumnError("column features"))
    figures = await quality.figures(FRAUD, "v1", NOW)
    assert figures is not None
    assert figures.drift is not None
    assert figures.drift.note == "figures unreadable: column features"
    assert figures.champion_performance is None
    assert await quality.figures(FRAUD, "v1", NOW) is figures  # not read again before refresh
    assert conn.queries == 1


async def test_an_outage_goes_to_the_callers_retry() -> None:
    quality, _ = monitor(ConnectionRefusedError("PostgreSQL down"))
    with pytest.raises(ConnectionRefusedError):
        await quality.figures(FRAUD, "v1", NOW)
    assert quality.cached(FRAUD) is None
