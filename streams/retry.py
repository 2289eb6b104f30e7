"""How the worker waits out an outage: capped exponential backoff with jitter (its quiet logs
are edge.logs')."""

from __future__ import annotations

import random


def backoff(attempt: int, initial_s: float, max_s: float) -> float:
    """The pause before try `attempt + 1`: exponential, capped at `max_s`, jittered by half."""
    ceiling = min(max_s, initial_s * (2 ** min(attempt, 30)))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography
