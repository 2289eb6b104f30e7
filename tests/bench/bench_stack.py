"""Throughput of the local stack itself: Kafka produce/consume and PostgreSQL COPY."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from confluent_kafka import Consumer, Producer

from tests.bench.harness import BenchContext, BenchResult, Figure

MESSAGES = 200_000
ROWS = 200_000


def bench_kafka_roundtrip(ctx: BenchContext) -> BenchResult:
    topic = ctx.topic("stack-roundtrip", partitions=4)
    value = b"x" * 200
    producer = Producer({"bootstrap.servers": ctx.bootstrap, "linger.ms": 10})
    began = time.perf_counter()
    for i in range(MESSAGES):
        while True:
            try:
                producer.produce(topic, key=str(i).encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("messages left undelivered")
    produced = time.perf_counter() - began
    yield Figure("kafka_produce_rate", MESSAGES / produced, "msg/s")

    consumer = Consumer(
        {
            "bootstrap.servers": ctx.bootstrap,
            "group.id": f"bench-{ctx.run_id}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    began = time.perf_counter()
    deadline = began + 180
    try:
        while seen < MESSAGES and time.perf_counter() < deadline:
            seen += sum(1 for m in consumer.consume(10_000, timeout=1.0) if m.error() is None)
    finally:
        consumer.close()
    if seen < MESSAGES:
        raise RuntimeError(f"consumed {seen} of {MESSAGES}")
    yield Figure("kafka_consume_rate", MESSAGES / (time.perf_counter() - began), "msg/s")


def bench_postgres_copy(ctx: BenchContext) -> BenchResult:
    async def run() -> tuple[float, float]:
        conn = await asyncpg.connect(ctx.dsn)
        table = f"bench_copy_{ctx.run_id}"
        try:
            await conn.execute(f"CREATE TABLE {table} (id bigint, name text, amount float8)")
            rows = [(i, f"row-{i}", i * 0.5) for i in range(ROWS)]
            began = time.perf_counter()
            await conn.copy_records_to_table(table, records=rows)
            copied = time.perf_counter() - began
            began = time.perf_counter()
            back = await conn.fetch(f"SELECT id, name, amount FROM {table}")
            fetched = time.perf_counter() - began
            if len(back) != ROWS:
                raise RuntimeError(f"read back {len(back)} of {ROWS}")
            return ROWS / copied, ROWS / fetched
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {table}")
            await conn.close()

    copy_rate, fetch_rate = asyncio.run(run())
    yield Figure("postgres_copy_rate", copy_rate, "rows/s")
    yield Figure("postgres_fetch_rate", fetch_rate, "rows/s")
