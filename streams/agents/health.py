"""The background probes behind `GET /health` (PostgreSQL and Kafka reachability)."""

from __future__ import annotations

import faust

from streams.agents import named
from streams.context import WorkerContext


def install(app: faust.App, ctx: WorkerContext) -> None:
    async def reachability_probes() -> None:
        await ctx.reachability.run()

    app.task(named("reachability_probes", reachability_probes))
