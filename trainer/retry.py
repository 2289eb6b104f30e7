"""The trainer's use of the shared retry policy (edge.retry) for calls that reach PostgreSQL or
Kafka: a bounded number of attempts, then DependencyUnavailable."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from edge.logs import RateLimitedLog
from edge.retry import TRANSIENT_ERRORS, RetriesExhausted, RetryPolicy
from trainer.errors import DependencyUnavailable
from trainer.settings import TrainerSettings

T = TypeVar("T")
log = logging.getLogger(__name__)
_errors = RateLimitedLog(log)

TRANSIENT: tuple[type[BaseException], ...] = (*TRANSIENT_ERRORS, DependencyUnavailable)
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


def policy_of(settings: TrainerSettings) -> RetryPolicy:
    """The shared retry policy with the trainer's pacing and number of attempts."""
    return RetryPolicy(
        initial_s=settings.retry_base_delay_s,
        max_s=settings.retry_max_delay_s,
        attempts=settings.retry_attempts,
        transient=TRANSIENT,
    )


async def retrying(
    operation: Callable[[], Awaitable[T]], settings: TrainerSettings, what: str
) -> T:
    """Run `operation`, retrying transient failures; then raise DependencyUnavailable."""
    try:
        return await policy_of(settings).call(operation, what, _errors)
    except RetriesExhausted as exc:
        raise DependencyUnavailable(str(exc)) from exc
