"""Errors of the local stack; each one says what to do about it."""

from __future__ import annotations


class StackError(Exception):
    """A stack service cannot be provided; `hint` tells the user what to do."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}"


class ToolMissing(StackError):
    """A program the stack needs (java, mvn) is not installed or too old."""


class PortTaken(StackError):
    """Another process listens on a port the stack wants."""


class DownloadFailed(StackError):
    """Maven could not resolve the broker's jars."""


class ServiceFailed(StackError):
    """A service started but did not become healthy."""
