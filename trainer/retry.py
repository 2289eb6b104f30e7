"""Retry with exponential backoff for the calls that reach PostgreSQL or Kafka."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from trainer.errors import DependencyUnavailable
from trainer.settings import TrainerSettings

T = TypeVar("T")
log = logging.getLogger(__name__)

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
    DependencyUnavailable,
)
"""Failures that a later attempt may not meet: a server down, restarting or overloaded."""

DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    # What a query meets on a connection the server has just closed (asyncpg's protocol is still
    # consuming the server's error when the next query starts).
    asyncpg.InternalClientError,
)
"""What asyncpg raises when the server is unreachable, refuses us or drops the connection."""


def backoff_delay(attempt: int, settings: TrainerSettings) -> float:
    """Exponential delay before attempt `attempt + 1`, with jitter so retries do not align."""
    ceiling = min(settings.retry_max_delay_s, settings.retry_base_delay_s * 2**attempt)
    jitter: float = random.random()  # noqa: S311 - jitter, not security
    return float(ceiling * (0.5 + jitter / 2))


async def retrying(
    operation: Callable[[], Awaitable[T]], settings: TrainerSettings, what: str
) -> T:
    """Run `operation`, retrying transient failures; then raise DependencyUnavailable."""
    for attempt in range(settings.retry_attempts):
        try:
            return await operation()
        except TRANSIENT as exc:
            if attempt + 1 >= settings.retry_attempts:
                raise DependencyUnavailable(
                    f"{what} failed after {settings.retry_attempts} attempts: {exc!r}"
                ) from exc
            delay = backoff_delay(attempt, settings)
            log.warning("%s failed (%r); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
    raise DependencyUnavailable(f"{what}: no attempt was made")
