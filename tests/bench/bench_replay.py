"""Replay throughput: simulated events re-consumed into PostgreSQL, new and already present."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from confluent_kafka.admin import AdminClient

from retrainer.migrate import migrate
from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.publish import PublishOptions, run_publish
from streams.bootstrap import ensure_topics
from streams.replay import ReplayOptions, replay
from streams.settings import StreamsSettings
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.factories import worker_env

# About 100k events: 7,000 customers with a year of statements, 3,000 sheets, their labels.
SCENARIO = ScenarioConfig.of(seed=5, customers=7000, sheets=3000, bad_rate=0.002)


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def private_database(dsn: str, name: str) -> Iterator[str]:
    """A migrated database for one benchmark, dropped afterwards."""
    asyncio.run(_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        url = f"{dsn.rpartition('/')[0]}/{name}"
        asyncio.run(migrate(url))
        yield url
    finally:
        asyncio.run(_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def worker_settings(env: dict[str, str]) -> Iterator[StreamsSettings]:
    """Settings as a worker with `env` reads them; topics created, deleted afterwards."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("RETRAINER_")})
    try:
        settings = StreamsSettings()
        ensure_topics(settings)
        yield settings
    finally:
        os.environ.clear()
        os.environ.update(saved)
        admin = AdminClient({"bootstrap.servers": env["RETRAINER_KAFKA_BOOTSTRAP"]})
        prefix = env["RETRAINER_APP_ID"].removesuffix("worker")
        names = [t for t in admin.list_topics(timeout=15).topics if t.startswith(prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                future.result(timeout=60)


def bench_replay(ctx: BenchContext) -> BenchResult:
    """`retrainer replay --from-beginning` over ~100k events: into an empty database, then again."""
    prefix = f"bench-{ctx.run_id}-replay"
    with private_database(ctx.dsn, f"bench_replay_{uuid.uuid4().hex[:8]}") as url:
        env = worker_env(ctx.bootstrap, url, prefix, 0)
        with worker_settings(env) as settings:
            published = run_publish(
                PublishOptions(
                    scenario=SCENARIO,
                    bootstrap=ctx.bootstrap,
                    topic_overrides={t: f"{prefix}-{t}" for t in UPSTREAM_TOPICS},
                )
            )
            if not published.ok:
                raise RuntimeError(f"publishing failed: {published.failure_samples}")
            options = ReplayOptions(notify_policy=False)
            first = asyncio.run(replay(settings, options))
            if first.consumed != published.total_sent or first.present:
                raise RuntimeError(
                    f"first replay consumed {first.consumed} of {published.total_sent}"
                )
            again = asyncio.run(replay(settings, options))
            if again.new:
                raise RuntimeError(f"the second replay stored {again.new} events again")
    yield Figure("replay_events", first.consumed, "events")
    yield Figure("replay_new_events_per_s", first.rate, "events/s")
    yield Figure("replay_present_events_per_s", again.rate, "events/s")
