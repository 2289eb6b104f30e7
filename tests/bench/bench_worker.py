"""Worker ingest throughput next to a plain confluent-kafka consume + decode loop, in one run.

The worker (a real subprocess on its own topics and database) takes expense sheets through
decode, the PostgreSQL sink and the policy's counters, and scores them; the plain loop only reads
the same topic and decodes, and the plain handlers loop hands the same batches to the worker's own
handlers without Faust or commits (tests/bench/references.py). The ratios say what the worker's
guarantees cost, and what the handlers do.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
from confluent_kafka import Consumer, TopicPartition

from schemas.codec import Codec
from schemas.expense_sheet import ExpenseSheetSubmitted
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.bench.references import plain_handlers
from tests.factories import publish, sheet, wait_until

SHEETS = 5000
LINES_PER_SHEET = 10


def _stored_lines(url: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM expenses"))
        finally:
            await conn.close()

    return asyncio.run(count())


def plain_consume_decode(bootstrap: str, topic: str) -> tuple[int, float]:
    """Read `topic` to its end offsets with confluent-kafka and decode every sheet: (lines, s)."""
    codec = Codec()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-plain-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        began = time.perf_counter()
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        left = {p for p, end in ends.items() if end > 0}
        lines = 0
        while left:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is not None:
                    continue
                event = codec.decode_as(ExpenseSheetSubmitted, message.value() or b"")
                lines += len(event.lines)
                offset, partition = message.offset(), message.partition()
                if offset is not None and partition is not None and offset + 1 >= ends[partition]:
                    left.discard(partition)
            if time.perf_counter() - began > 300:
                raise TimeoutError("the plain consumer did not reach the end in 5 minutes")
        return lines, time.perf_counter() - began
    finally:
        consumer.close()


def bench_worker_ingest(ctx: BenchContext) -> BenchResult:
    """Valid expense lines/s through a real worker, and through a plain consume+decode loop."""
    with ctx.database("worker") as url, ctx.services("wk", url) as workers:
        topic = workers.topic("expense-sheet")
        workers.start()
        # One sheet through first: the worker has joined its group and is consuming.
        publish(ctx.bootstrap, topic, [sheet(0, LINES_PER_SHEET, workers.prefix)])
        wait_until(lambda: _stored_lines(url) == LINES_PER_SHEET, 90, "the warm-up sheet")
        sheets = [sheet(n, LINES_PER_SHEET, workers.prefix) for n in range(1, SHEETS + 1)]
        total = LINES_PER_SHEET * (SHEETS + 1)
        began = time.perf_counter()
        publish(ctx.bootstrap, topic, sheets)
        wait_until(lambda: _stored_lines(url) >= total, 600, "every line stored")
        worker_seconds = time.perf_counter() - began
        workers.kill(0)
        plain_lines, plain_seconds = plain_consume_decode(ctx.bootstrap, topic)
        with ctx.database("worker_plain") as plain_url:
            handled = plain_handlers(workers.settings(database_url=plain_url), [], total)
    worker_rate = SHEETS * LINES_PER_SHEET / worker_seconds
    plain_rate = plain_lines / plain_seconds
    yield Figure("worker_ingest_lines_per_s", worker_rate, "lines/s")
    yield Figure("plain_consume_decode_lines_per_s", plain_rate, "lines/s")
    yield Figure("plain_handlers_ingest_lines_per_s", handled.lines_per_s, "lines/s")
    yield Figure("worker_vs_plain_ingest_ratio", worker_rate / plain_rate, "ratio")
    yield Figure(
        "worker_vs_plain_handlers_ingest_ratio", worker_rate / handled.lines_per_s, "ratio"
    )
