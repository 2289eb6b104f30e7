"""Scoring costs: micro-batches against one event at a time, and the loop stall of a hot reload."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time

import numpy as np
import pandas as pd

from schemas.artifacts import dump
from schemas.base import ModelFamily
from schemas.features import ACTIVITY_COLUMNS, EXPENSE_COLUMNS, delinquency_features
from streams.models import StallMonitor, build_model, fetch_version
from streams.scoring_frames import (
    ExpenseHistoryQuery,
    LoadedModel,
    batch_expense_features,
    score,
)
from streams.store.models import StoredVersion
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.bench.models import SETTINGS, delinquency_model, expense_model, training_frames
from tests.bench.references import plain_handlers
from tests.unit.trainer.factories import Frames

BATCH = 1000
SINGLES = 200  # events scored one by one (enough for a stable per-event cost)


def _data() -> Frames:
    return training_frames()


def bench_scoring_batch_vs_event(ctx: BenchContext) -> BenchResult:
    data = _data()

    # expense-fraud: features against the same history (every earlier line, as the store would
    # give them; the read itself is in bench_scoring_expense_history), then predict.
    model = expense_model(data)
    lines = data.expenses.loc[:, list(EXPENSE_COLUMNS)].sort_values("submitted_at")
    earlier = [tuple(r) for r in lines.iloc[:-BATCH].itertuples(index=False)]
    batch = lines.iloc[-BATCH:].reset_index(drop=True)

    def features_of(rows: pd.DataFrame) -> pd.DataFrame:
        query = ExpenseHistoryQuery.of(rows, SETTINGS.expense_history_days)
        return batch_expense_features(
            rows,
            query,
            earlier,
            [],
            approval_limit=500.0,
            history_days=SETTINGS.expense_history_days,
        )

    began = time.perf_counter()
    score(model, features_of(batch))
    per_event_batched = (time.perf_counter() - began) / BATCH
    began = time.perf_counter()
    for i in range(SINGLES):
        score(model, features_of(batch.iloc[i : i + 1].reset_index(drop=True)))
    per_event_single = (time.perf_counter() - began) / SINGLES
    yield Figure("scoring_fraud_batched_per_event", per_event_batched * 1e6, "us")
    yield Figure("scoring_fraud_single_per_event", per_event_single * 1e6, "us")
    yield Figure("scoring_fraud_batch_advantage", per_event_single / per_event_batched, "x")

    # delinquency: each statement with its customer's three previous ones and profile.
    model = delinquency_model(data)
    activity = data.activity.loc[:, list(ACTIVITY_COLUMNS)].sort_values("statement_date")
    last = activity.groupby("customer_id").tail(1).head(BATCH)
    history = activity[
        activity["customer_id"].isin(last["customer_id"])
        & ~activity["statement_id"].isin(last["statement_id"])
    ]
    history = history.groupby("customer_id").tail(3)
    profiles = data.customers

    def features_for(rows: pd.DataFrame) -> pd.DataFrame:
        own = history[history["customer_id"].isin(rows["customer_id"])]
        combined = pd.concat([own, rows], ignore_index=True)
        feats = delinquency_features(combined, profiles)
        return feats.set_index("statement_id").loc[rows["statement_id"]].reset_index()

    began = time.perf_counter()
    score(model, features_for(last))
    per_event_batched = (time.perf_counter() - began) / len(last)
    began = time.perf_counter()
    for i in range(SINGLES):
        score(model, features_for(last.iloc[i : i + 1]))
    per_event_single = (time.perf_counter() - began) / SINGLES
    yield Figure("scoring_delinquency_batched_per_event", per_event_batched * 1e6, "us")
    yield Figure("scoring_delinquency_single_per_event", per_event_single * 1e6, "us")
    yield Figure("scoring_delinquency_batch_advantage", per_event_single / per_event_batched, "x")


def bench_reload_stall(ctx: BenchContext) -> BenchResult:
    """Load a stored expense-fraud version in a thread while the loop keeps ticking."""
    data = _data()
    model = expense_model(data)
    stored_artifacts = [dump(role, m) for role, m in model.bundle.models.items()]
    stored = StoredVersion(
        family=ModelFamily.EXPENSE_FRAUD,
        version="bench",
        params=model.bundle.params,
        request_id=None,
        artifacts=[(a.role, a.format.value, a.sha256, a.content) for a in stored_artifacts],
        digests={},
    )

    async def one() -> tuple[float, float]:
        done = asyncio.Event()
        monitor = StallMonitor()
        watcher = asyncio.create_task(monitor.watch(done))
        began = time.perf_counter()
        gc.freeze()  # as the worker's ModelLoader does
        gc.disable()
        try:
            await asyncio.to_thread(build_model, stored)
        finally:
            gc.enable()
            gc.unfreeze()
        elapsed = time.perf_counter() - began
        done.set()
        await watcher
        return elapsed, monitor.worst

    runs = [asyncio.run(one()) for _ in range(5)]
    size = sum(len(a.content) for a in stored_artifacts)
    yield Figure("reload_artifact_size", size / 1024, "KiB")
    yield Figure("reload_seconds_median", statistics.median(r[0] for r in runs), "s")
    yield Figure("reload_loop_stall_max", max(r[1] for r in runs) * 1000, "ms")
    yield Figure("reload_loop_stall_median", statistics.median(r[1] for r in runs) * 1000, "ms")
    assert np.isfinite(size)


def bench_worker_scoring_throughput(ctx: BenchContext) -> BenchResult:
    """Worker end to end (consume, decode, store, score, emit) against consume + decode alone."""
    import asyncpg
    from confluent_kafka import Consumer

    from schemas.codec import Codec
    from schemas.expense_sheet import ExpenseSheetSubmitted
    from tests.factories import publish, sheet, wait_until
    from tests.integration.streams.test_scorers import ENV, TRAINER_ENV, _loaded, _trigger

    sheets_count, lines_per_sheet = 3000, 10

    async def count(dsn: str) -> int:
        conn = await asyncpg.connect(dsn)
        try:
            # Lines both stored and scored (separate agents): the smaller of the two counts.
            return int(
                await conn.fetchval(
                    "SELECT least((SELECT count(*) FROM expense_scores), "
                    "(SELECT count(*) FROM expenses))"
                )
            )
        finally:
            await conn.close()

    with ctx.database("scoring") as dsn, ctx.services("scoring", dsn) as workers:
        workers.extra_env.update(ENV)
        port = workers.start()
        workers.start_trainer(**TRAINER_ENV)
        topic = workers.topic("expense-sheet")
        publish(ctx.bootstrap, topic, [sheet(i, lines=8, prefix="warm") for i in range(100)])
        wait_until(lambda: asyncio.run(count(dsn)) == 800, 120, "warm-up lines scored")
        request = _trigger(port)
        wait_until(lambda: _loaded(workers) is not None, 180, f"a model for {request}")

        stream = [sheet(i, lines=lines_per_sheet, prefix="bench") for i in range(sheets_count)]
        total = 800 + sheets_count * lines_per_sheet
        began = time.perf_counter()
        publish(ctx.bootstrap, topic, stream)
        wait_until(lambda: asyncio.run(count(dsn)) == total, 600, "every line scored")
        worker_rate = sheets_count * lines_per_sheet / (time.perf_counter() - began)

        codec = Codec()
        consumer = Consumer(
            {
                "bootstrap.servers": ctx.bootstrap,
                "group.id": f"bench-plain-{ctx.run_id}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        seen = lines = 0
        began = time.perf_counter()
        while seen < 100 + sheets_count:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error() is None:
                    decoded = codec.decode_as(ExpenseSheetSubmitted, message.value() or b"")
                    lines += len(decoded.lines)
                    seen += 1
        plain_rate = lines / (time.perf_counter() - began)
        consumer.close()
        # The same batches through the worker's handlers, with the version the worker loaded.
        model = asyncio.run(_stored_model(dsn, str(_loaded(workers))))
        workers.stop_all()
        with ctx.database("scoring_plain") as plain_dsn:
            handled = plain_handlers(workers.settings(database_url=plain_dsn), [model], total)
    yield Figure("worker_scoring_lines_per_s", worker_rate, "lines/s")
    yield Figure("scoring_plain_consume_decode_lines_per_s", plain_rate, "lines/s")
    yield Figure("scoring_plain_handlers_lines_per_s", handled.lines_per_s, "lines/s")
    yield Figure("worker_scoring_vs_plain_ratio", worker_rate / plain_rate, "ratio")
    yield Figure(
        "worker_scoring_vs_plain_handlers_ratio", worker_rate / handled.lines_per_s, "ratio"
    )


async def _stored_model(dsn: str, version: str) -> LoadedModel:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        stored = await fetch_version(conn, version)
    finally:
        await conn.close()
    return build_model(stored)
