"""Replay throughput: simulated events re-consumed into PostgreSQL, new and already present."""

from __future__ import annotations

import asyncio

from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.publish import PublishOptions, run_publish
from streams.replay import ReplayOptions, replay
from tests.bench.harness import BenchContext, BenchResult, Figure

# About 100k events: 7,000 customers with a year of statements, 3,000 sheets, their labels.
SCENARIO = ScenarioConfig.of(seed=5, customers=7000, sheets=3000, bad_rate=0.002)


def bench_replay(ctx: BenchContext) -> BenchResult:
    """`retrainer replay --from-beginning` over ~100k events: into an empty database, then again."""
    with ctx.database("replay") as url, ctx.services("replay", url) as workers:
        settings = workers.settings()
        published = run_publish(
            PublishOptions(
                scenario=SCENARIO,
                bootstrap=ctx.bootstrap,
                topic_overrides={t: workers.topic(t) for t in UPSTREAM_TOPICS},
            )
        )
        if not published.ok:
            raise RuntimeError(f"publishing failed: {published.failure_samples}")
        options = ReplayOptions(notify_policy=False)
        first = asyncio.run(replay(settings, options))
        if first.consumed != published.total_sent or first.present:
            raise RuntimeError(f"first replay consumed {first.consumed} of {published.total_sent}")
        again = asyncio.run(replay(settings, options))
        if again.new:
            raise RuntimeError(f"the second replay stored {again.new} events again")
    yield Figure("replay_events", first.consumed, "events")
    yield Figure("replay_new_events_per_s", first.rate, "events/s")
    yield Figure("replay_present_events_per_s", again.rate, "events/s")
