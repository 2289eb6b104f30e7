"""One log format for the worker and the trainer: `RETRAINER_LOG_FORMAT` and `RETRAINER_LOG_LEVEL`.

`text` is one line per record for a terminal; `json` is one JSON object per line for a log
shipper (Loki, Elasticsearch, CloudWatch), with the same fields in both services. Whatever the
format, credentials in connection strings are masked before a record is written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from enum import StrEnum

from pydantic_settings import BaseSettings, SettingsConfigDict

from edge.levels import LogLevel as LogLevel
from schemas.diagnostics import mask_dsn

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
NOISY_LOGGERS = ("aiokafka", "faust.transport", "kafka", "asyncpg.pool")
"""Loggers whose records pass once per kind and interval (see NoisyLoggerFilter)."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LogSettings(BaseSettings):
    """How the worker and the trainer write their logs (read from the environment)."""

    model_config = SettingsConfigDict(env_prefix="RETRAINER_", frozen=True, extra="ignore")

    log_format: LogFormat = LogFormat.TEXT
    """`text` (one line per record) or `json` (one JSON object per line, for log shippers)"""
    log_level: LogLevel = LogLevel.INFO
    """the lowest level written; the Kafka clients' own chatter stays at WARNING unless DEBUG"""


class _MaskingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_dsn(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_dsn(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = mask_dsn(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_dsn(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(settings: LogSettings) -> logging.Formatter:
    if settings.log_format is LogFormat.JSON:
        return JsonFormatter()
    return _MaskingFormatter(TEXT_FORMAT)


def configure(settings: LogSettings | None = None) -> LogSettings:
    """Send every record of the process to stderr in the configured format and level.

    Replaces the root logger's handlers (Faust's own included, when called after it set them).
    """
    settings = settings or LogSettings()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(settings))
    # Clients that repeat themselves while a server is down: one line per kind per 30 s.
    handler.addFilter(NoisyLoggerFilter(NOISY_LOGGERS, every_s=30.0))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.value)
    return settings


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
