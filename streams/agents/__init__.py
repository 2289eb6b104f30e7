"""The worker's agents and tasks, one module per group; each has `install(app, ctx)`.

An agent moves bytes: it decodes, calls a service (streams.services) and emits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import faust

from edge.dead_letters import RawMessage

RAW: dict[str, Any] = {
    "key_type": bytes,
    "value_type": bytes,
    "key_serializer": "raw",
    "value_serializer": "raw",
}
"""Topic options for bytes in, bytes out: the codec decodes, never Faust."""


def raw_topic(app: faust.App, name: str, **options: Any) -> faust.TopicT:
    """`name` as a Faust topic of raw bytes."""
    return app.topic(name, **options, **RAW)


F = TypeVar("F", bound=Callable[..., Any])


def named(name: str, fun: F) -> F:
    """`fun` under `name` in Faust's logs ("retrainer.policy"), not its closure's path."""
    fun.__name__ = fun.__qualname__ = name
    fun.__module__ = "retrainer"
    return fun


def raw_message(event: Any) -> RawMessage:
    """The message of a Faust event, as the services and dead letters take it."""
    message = event.message
    return RawMessage(message.topic, message.partition, message.offset, message.key, message.value)
