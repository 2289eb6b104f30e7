"""The log levels the services accept, named without pydantic: command-line parsing (`retrainer
worker --loglevel`) reads them before any settings are built (edge.logs re-exports them)."""

from __future__ import annotations

from enum import StrEnum


class LogLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"
