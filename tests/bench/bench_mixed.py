"""Sustained mixed load: one worker through a pre-produced backlog of every upstream topic.

About RETRAINER_BENCH_MIXED_EVENTS events (default 1,000,000; 70 % statements, 15 % labels, 10 %
customers, 5 % sheets of some seven lines) are produced before the worker starts, with a trained
version of each family announced, so every batch is stored and really scored. The worker's
progress is its committed offsets, sampled each second with its RSS and CPU time; the rate is
reported over the whole run and per 30 s window. The same topics are then read by the two
references (tests/bench/references.py), and the worker's rate is set beside both.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from confluent_kafka import Consumer, TopicPartition

from retrainer.simulator.events import UPSTREAM_TOPICS
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.bench.mixed_stream import encode_world, mixed_world, produce
from tests.bench.models import announce_champions, both_models
from tests.bench.references import end_offsets, plain_consume_decode, plain_handlers
from tests.factories import wait_until

EVENTS = int(os.environ.get("RETRAINER_BENCH_MIXED_EVENTS", "1000000"))
WINDOW_S = 30.0
SAMPLE_S = 1.0
RUN_TIMEOUT_S = 3600.0
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")

WORKER_ENV = {
    # The production tick (the harness's 2 s is for tests waiting on decisions).
    "RETRAINER_POLICY_TICK_S": "30",
    # Stopped while the backlog is produced: the group keeps it meanwhile (below Faust's
    # 90 s request timeout, which a session may not exceed).
    "RETRAINER_SESSION_TIMEOUT_S": "80",
}


@dataclass(frozen=True)
class Sample:
    """One look at the worker: when, events committed, resident memory and CPU seconds."""

    at: float
    committed: int
    rss_mb: float
    cpu_s: float


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _committed(consumer: Consumer, partitions: list[TopicPartition]) -> int:
    return sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))


def _follow(
    bootstrap: str, group: str, topics: Sequence[str], pid: int, total: int
) -> list[Sample]:
    """Sample the worker each second until its group committed `total` offsets."""
    ends = end_offsets(bootstrap, topics)
    partitions = [TopicPartition(t, p) for t, p in sorted(ends)]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    samples: list[Sample] = []
    began = time.monotonic()
    try:
        while True:
            at = time.monotonic()
            samples.append(Sample(at, _committed(consumer, partitions), _rss_mb(pid), _cpu_s(pid)))
            if samples[-1].committed >= total:
                return samples
            if at - began > RUN_TIMEOUT_S:
                raise TimeoutError(f"{samples[-1].committed} of {total} after {RUN_TIMEOUT_S}s")
            time.sleep(max(SAMPLE_S - (time.monotonic() - at), 0))
    finally:
        consumer.close()


def _windows(samples: Sequence[Sample]) -> list[float]:
    """Events/s in each WINDOW_S window from the first progress on (a last partial one too)."""
    rates: list[float] = []
    start = samples[0]
    for sample in samples[1:]:
        if sample.at - start.at >= WINDOW_S or sample is samples[-1]:
            if sample.at - start.at >= WINDOW_S / 6:
                rates.append((sample.committed - start.committed) / (sample.at - start.at))
            start = sample
    return rates


def _scalar(dsn: str, sql: str) -> int:
    async def fetch() -> int:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return int(await conn.fetchval(sql))
        finally:
            await conn.close()

    return asyncio.run(fetch())


UNSCORED = """
SELECT (SELECT count(*) FROM customer_activity a WHERE NOT EXISTS (
            SELECT 1 FROM customer_scores s WHERE s.statement_id = a.statement_id
            AND s.model_version <> ''))
     + (SELECT count(*) FROM expenses e WHERE NOT EXISTS (
            SELECT 1 FROM expense_scores s WHERE s.expense_id = e.expense_id
            AND s.model_version <> ''))
"""
"""Statements and expense lines without a score by a model (scored before it loaded)."""


def bench_mixed_sustained(ctx: BenchContext) -> BenchResult:
    """One worker through ~1M pre-produced mixed events; events/s, RSS and both references."""
    began = time.perf_counter()
    encoded = encode_world(mixed_world(EVENTS))
    encode_s = time.perf_counter() - began
    total = encoded.total
    lines = sum(value.count(b'"expense_id"') for _, value in encoded.messages["expense-sheet"])
    models = list(both_models())
    yield Figure("mixed_events", total, "events")
    for topic, count in encoded.counts.items():
        yield Figure(f"mixed_share_{topic.replace('-', '_')}", count / total, "fraction")
    yield Figure("mixed_expense_lines", lines, "lines")
    yield Figure("mixed_encode_events_per_s", total / encode_s, "events/s")

    with ctx.database("mixed") as url, ctx.services("mixed", url) as workers:
        workers.extra_env.update(WORKER_ENV)
        topics = {logical: workers.topic(logical) for logical in UPSTREAM_TOPICS}
        versions = announce_champions(url, ctx.bootstrap, workers.topic("model-updated"), models)
        port = workers.start()
        pid = workers.procs[-1].pid

        def loaded() -> bool:
            found = workers.get("/models", port)["loaded"]
            return {found[m.family.value]["version"] for m in models} == set(versions)

        wait_until(loaded, 120, "both champions loaded")
        # The backlog is produced while the worker is stopped (it would otherwise take its
        # first batches before the champions are loaded, or compete with the producer).
        os.kill(pid, signal.SIGSTOP)
        try:
            produce_s = produce(ctx.bootstrap, topics, encoded)
        finally:
            os.kill(pid, signal.SIGCONT)
        del encoded
        yield Figure("mixed_produce_events_per_s", total / produce_s, "events/s")
        settings = workers.settings()
        samples = _follow(
            ctx.bootstrap, settings.upstream_group_id, list(topics.values()), pid, total
        )
        dead = workers.metric("retrainer_dead_letters_total", port)
        workers.stop_all()
        unscored = _scalar(url, UNSCORED)
        # The references read the same topics (deleted when this block ends).
        plain = plain_consume_decode(
            ctx.bootstrap, {name: logical for logical, name in topics.items()}
        )
        with ctx.database("mixed_plain") as plain_url:
            handled = plain_handlers(workers.settings(database_url=plain_url), models, lines)
        # The same handlers reading every batch's statement history from PostgreSQL (as before
        # the worker kept it): what keeping it is worth, in this run.
        with ctx.database("mixed_read") as read_url:
            reading = plain_handlers(
                workers.settings(database_url=read_url, statement_history_customers=0),
                models,
                lines,
            )

    moving = [s for s in samples if s.committed > 0]
    first, last = moving[0], moving[-1]
    seconds = last.at - first.at
    worker_rate = (last.committed - first.committed) / seconds if seconds > 0 else float("nan")
    windows = _windows(moving)
    middle = min(moving, key=lambda s: abs(s.at - (first.at + seconds / 2)))
    yield Figure("mixed_worker_events_per_s", worker_rate, "events/s")
    for n, rate in enumerate(windows):
        yield Figure(f"mixed_worker_window_{n:02d}_events_per_s", rate, "events/s")
    if windows:
        yield Figure("mixed_worker_window_min_events_per_s", min(windows), "events/s")
        yield Figure(
            "mixed_worker_window_median_events_per_s", statistics.median(windows), "events/s"
        )
    yield Figure("mixed_worker_rss_start", first.rss_mb, "MB")
    yield Figure("mixed_worker_rss_mid", middle.rss_mb, "MB")
    yield Figure("mixed_worker_rss_end", last.rss_mb, "MB")
    yield Figure("mixed_worker_rss_max", max(s.rss_mb for s in moving), "MB")
    cpu = last.cpu_s - first.cpu_s
    yield Figure(
        "mixed_worker_cpu_ms_per_1k_events",
        cpu * 1e6 / max(last.committed - first.committed, 1),
        "ms",
    )
    yield Figure("mixed_worker_dead_letters", dead, "messages")
    yield Figure("mixed_worker_unscored_by_a_model", unscored, "rows")

    yield Figure("mixed_plain_decode_events_per_s", plain.events_per_s, "events/s")
    yield Figure("mixed_plain_handlers_events_per_s", handled.events_per_s, "events/s")
    yield Figure("mixed_worker_vs_plain_decode_ratio", worker_rate / plain.events_per_s, "ratio")
    yield Figure(
        "mixed_worker_vs_plain_handlers_ratio", worker_rate / handled.events_per_s, "ratio"
    )
    yield Figure(
        "mixed_plain_handlers_reading_history_events_per_s", reading.events_per_s, "events/s"
    )
    yield Figure(
        "mixed_kept_vs_read_history_ratio", handled.events_per_s / reading.events_per_s, "ratio"
    )
