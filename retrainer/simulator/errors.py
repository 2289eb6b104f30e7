"""The simulator's one base exception, so callers can tell its failures from everyone else's."""

from __future__ import annotations


class SimulatorError(Exception):
    """A scenario cannot be built or published as configured."""
