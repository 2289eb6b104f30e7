"""The one retry policy of both services: exponential backoff with jitter over one set of
transient errors (a server down, restarting, overloaded or briefly unreachable)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from confluent_kafka import KafkaException
from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_never,
    wait_random_exponential,
)

from edge.logs import RateLimitedLog

T = TypeVar("T")
log = logging.getLogger(__name__)

TRANSIENT_DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)
"""What asyncpg raises while PostgreSQL cannot be reached or is restarting: try again later."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (*TRANSIENT_DATABASE_ERRORS, KafkaException)
"""Every failure a later attempt may not meet: PostgreSQL or Kafka unreachable for now."""


class RetriesExhausted(Exception):
    """An operation kept failing transiently for as many attempts as its policy allows."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts (exponential from `initial_s`, capped at `max_s`,
    randomised so clients do not retry in step) and when to give up (`attempts`; None = never,
    for work that must not be dropped, such as a polled batch that is not committed yet)."""

    initial_s: float = 0.5
    max_s: float = 5.0
    attempts: int | None = None
    transient: tuple[type[BaseException], ...] = TRANSIENT_ERRORS

    def attempts_of(
        self,
        what: str,
        errors: RateLimitedLog | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> AsyncIterator[AttemptManager]:
        """Attempts to run `what`: `async for attempt in policy.attempts_of(...): with attempt:`.

        A transient failure is logged (at most once per interval for the same `what`) and tried
        again; any other exception goes straight to the caller. When attempts run out, the last
        transient error is raised.
        """
        quiet = errors or RateLimitedLog(log)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            pause = state.next_action.sleep if state.next_action else 0.0
            if exc is not None and on_retry is not None:
                on_retry(exc)
            quiet.warning(
                what,
                "%s failed (%s: %s); retrying in %.1fs",
                what,
                type(exc).__name__,
                exc,
                pause,
            )

        return AsyncRetrying(
            retry=retry_if_exception_type(self.transient),
            wait=wait_random_exponential(multiplier=self.initial_s, max=self.max_s, min=0.0),
            stop=stop_never if self.attempts is None else stop_after_attempt(self.attempts),
            before_sleep=before_sleep,
            reraise=True,
        ).__aiter__()

    async def call(
        self,
        operation: Callable[[], Awaitable[T]],
        what: str,
        errors: RateLimitedLog | None = None,
        on_retry: Callable[[BaseException], None] | None = None,
    ) -> T:
        """`await operation()` under this policy; RetriesExhausted once attempts run out."""
        try:
            async for attempt in self.attempts_of(what, errors, on_retry):
                with attempt:
                    return await operation()
        except self.transient as exc:
            raise RetriesExhausted(
                f"{what} failed after {self.attempts} attempts: {exc!r}"
            ) from exc
        raise RetriesExhausted(f"{what}: no attempt was made")  # pragma: no cover - stop >= 1
