"""Model following: each worker reads every promotion and swaps the scorers' model while it
runs (scoring itself happens in the ingest batch, see streams.agents.ingest)."""

from __future__ import annotations

import faust

from streams.agents import named
from streams.context import WorkerContext


def install(app: faust.App, ctx: WorkerContext) -> None:
    async def model_follower() -> None:
        await ctx.follower.run()

    app.task(named("model_follower", model_follower))
