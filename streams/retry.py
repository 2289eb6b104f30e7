"""How the worker waits out an outage: capped exponential backoff with jitter, quiet logs."""

from __future__ import annotations

import logging
import random

from edge.logs import NoisyLoggerFilter, RateLimitedLog, RateLimitFilter, kafka_logger

__all__ = [
    "NoisyLoggerFilter",
    "RateLimitFilter",
    "RateLimitedLog",
    "backoff",
    "kafka_logger",
    "quiet_kafka_client_logs",
]


def backoff(attempt: int, initial_s: float, max_s: float) -> float:
    """The pause before try `attempt + 1`: exponential, capped at `max_s`, jittered by half."""
    ceiling = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


def quiet_kafka_client_logs(every_s: float = 30.0) -> None:
    """Put a `NoisyLoggerFilter` on every handler of the root logger (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, NoisyLoggerFilter) for f in handler.filters):
            handler.addFilter(NoisyLoggerFilter(("aiokafka", "faust.transport", "kafka"), every_s))
