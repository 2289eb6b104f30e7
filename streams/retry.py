"""How the worker waits out an outage: capped exponential backoff with jitter, quiet logs."""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict


def backoff(attempt: int, initial_s: float, max_s: float) -> float:
    """The pause before try `attempt + 1`: exponential, capped at `max_s`, jittered by half."""
    ceiling = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


class RateLimitedLog:
    """Logs a repeating message at most once per `every_s` per key, with the count it skipped."""

    def __init__(self, logger: logging.Logger, every_s: float = 30.0) -> None:
        self._log = logger
        self._every_s = every_s
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = defaultdict(int)

    def warning(self, key: str, message: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            self._skipped[key] += 1
            return
        skipped = self._skipped.pop(key, 0)
        self._last[key] = now
        suffix = f" ({skipped} more like it since)" if skipped else ""
        self._log.warning(message + suffix, *args)


class RateLimitFilter(logging.Filter):
    """Lets a record through at most once per `every_s` per (logger, first argument) key.

    librdkafka repeats the same complaint (a broker down) many times a second; its records
    carry the facility (FAIL, ERROR, …) as their first argument.
    """

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self._every_s = every_s
        self._last: dict[tuple[str, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        key = (record.name, str(args[0]) if args else record.getMessage())
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            return False
        self._last[key] = now
        return True


def kafka_logger(name: str = "retrainer.kafka", every_s: float = 30.0) -> logging.Logger:
    """The logger librdkafka clients log through: one line per kind of complaint per interval."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RateLimitFilter) for f in logger.filters):
        logger.addFilter(RateLimitFilter(every_s))
    return logger


class NoisyLoggerFilter(logging.Filter):
    """On a handler: records of the Kafka client loggers pass once per `every_s` per template.

    A broker that is down makes aiokafka (under Faust) repeat the same warning many times a
    second; one line per kind and interval says as much, and `/health` says the rest.
    """

    def __init__(self, prefixes: tuple[str, ...], every_s: float = 30.0) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._every_s = every_s
        self._last: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._every_s:
            return False
        self._last[key] = now
        return True


def quiet_kafka_client_logs(every_s: float = 30.0) -> None:
    """Put a `NoisyLoggerFilter` on every handler of the root logger (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, NoisyLoggerFilter) for f in handler.filters):
            handler.addFilter(NoisyLoggerFilter(("aiokafka", "faust.transport", "kafka"), every_s))
