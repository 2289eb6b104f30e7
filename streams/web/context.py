"""What the HTTP API needs of a worker: one context object, and where a view finds it."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import asyncpg
from faust.types import AppT

from schemas.base import ModelFamily
from schemas.codec import Codec
from streams.health import Reachability
from streams.models import ModelFollower, ModelHolder, ModelLoader
from streams.policy import PolicyConfig
from streams.services.quality import QualityMonitor
from streams.services.scoring import Scorer
from streams.settings import StreamsSettings
from streams.signals import SignalKind


class WebContext(Protocol):
    """The worker's parts the views use; the views know nothing else of it."""

    @property
    def settings(self) -> StreamsSettings: ...

    @property
    def codec(self) -> Codec: ...

    @property
    def policy(self) -> PolicyConfig: ...

    @property
    def holder(self) -> ModelHolder: ...

    @property
    def loader(self) -> ModelLoader: ...

    @property
    def follower(self) -> ModelFollower: ...

    @property
    def scorer(self) -> Scorer: ...

    @property
    def reachability(self) -> Reachability: ...

    @property
    def quality(self) -> QualityMonitor: ...

    async def pool(self) -> asyncpg.Pool: ...

    async def signal(self, family: ModelFamily, kind: SignalKind, **fields: Any) -> None: ...

    async def publish(self, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> None:
        """Deliver `messages` (key, value) to `topic`: returns once the broker has them, or
        raises."""
        ...


_CONTEXTS: weakref.WeakKeyDictionary[AppT, WebContext] = weakref.WeakKeyDictionary()


def bind(app: AppT, ctx: WebContext) -> None:
    """Make `ctx` the context of the views of `app`."""
    _CONTEXTS[app] = ctx


def context_of(app: AppT) -> WebContext:
    """The context `install` bound to `app`."""
    try:
        return _CONTEXTS[app]
    except KeyError:
        raise LookupError(f"no web context is bound to {app!r}; call streams.web.install") from None


Signal = Callable[..., Awaitable[None]]
