"""Scoring costs: micro-batches against one event at a time, and the loop stall of a hot reload."""

from __future__ import annotations

import asyncio
import statistics
import time

import asyncpg
import numpy as np
import pandas as pd

from schemas.artifacts import dump_all
from schemas.bundles import FloatArray, ModelBundle
from schemas.features import ACTIVITY_COLUMNS, EXPENSE_COLUMNS, delinquency_features
from streams.models import ModelHolder, ModelLoader, StallMonitor, build_model, fetch_version
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
from trainer.families import expense_set, fit

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


RELOADS = 6
"""Reloads measured per path (after one warm-up each), the paths taking turns."""
SCORING_ROWS = 20
SCORING_GAP_S = 0.004
"""The scoring load: a batch of SCORING_ROWS lines scored on the loop every few milliseconds,
as a worker does between reads from Kafka."""
IDLE_S = 0.15
UNLOADED_RELOADS = 3
"""Reloads per path with no scoring load first: the stall the reload alone causes."""
"""Scoring without a reload before each reload: the loop's own lateness under that load."""


def _stored_version(bundle: ModelBundle, version: str) -> StoredVersion:
    """`bundle` as the registry stores it: every artifact form the trainer writes."""
    stored = [a for role, m in sorted(bundle.models.items()) for a in dump_all(role, m)]
    return StoredVersion(
        family=bundle.family,
        version=version,
        params=bundle.params,
        request_id=None,
        artifacts=[(a.role, a.format.value, a.sha256, a.content) for a in stored],
        digests={},
    )


async def _no_pool() -> asyncpg.Pool:
    raise AssertionError("the bench hands the loader stored versions; it reads no registry")


async def _score_forever(model: LoadedModel, rows: FloatArray, stop: asyncio.Event) -> int:
    batches = 0
    while not stop.is_set():
        await asyncio.sleep(SCORING_GAP_S)
        model.bundle.score(rows)
        batches += 1
    return batches


def _ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q)) * 1000 if samples else float("nan")


def bench_reload_stall(ctx: BenchContext) -> BenchResult:
    """The event loop's lateness while versions reload in a thread under scoring load.

    One loop scores a batch every few milliseconds and a monitor wakes every 2 ms; meanwhile
    the same stored expense-fraud version is reloaded through the worker's ModelLoader, by the
    old path (skops) and the new one (tree arrays) in turns, and a delinquency version (XGBoost,
    unchanged). Lateness counts only while a reload runs; the idle figures are the same load
    with no reload (what the scoring itself costs the loop). The scoring load is the same for
    every path; what each form costs to score is measured after, at two batch sizes. First,
    the worst stall of a few reloads with no scoring load: what the reload alone costs.
    """
    data = _data()
    training = expense_set(data.expenses, data.labels, settings=SETTINGS)
    fraud = fit(training, SETTINGS)
    stored = _stored_version(fraud, "bench-fraud")
    delinquency = _stored_version(delinquency_model(data).bundle, "bench-delinquency")
    columns = [training.feature_names.index(name) for name in fraud.feature_names]
    rows = training.features[:SCORING_ROWS][:, columns]

    stalls: dict[str, list[float]] = {"old": [], "new": [], "xgboost": [], "idle": []}
    seconds: dict[str, list[float]] = {"old": [], "new": [], "xgboost": []}

    unloaded: dict[str, list[float]] = {"old": [], "new": []}

    async def run() -> int:
        old = ModelLoader(ModelHolder(), _no_pool, prefer_fast=False)
        new = ModelLoader(ModelHolder(), _no_pool, prefer_fast=True)
        turns = (("old", old, stored), ("new", new, stored), ("xgboost", new, delinquency))
        for _, loader, version in turns:  # warm-up: first calls, lazy imports
            await loader.build(version)
        for _ in range(UNLOADED_RELOADS):  # the reload alone: its own worst stall
            for path, loader in (("old", old), ("new", new)):
                await loader.build(stored)
                unloaded[path].append(loader.last_stall_s)
        scoring = build_model(stored)  # the same load whichever path reloads
        monitor = StallMonitor()
        stop = asyncio.Event()
        watcher = asyncio.create_task(monitor.watch(stop))
        scorer = asyncio.create_task(_score_forever(scoring, rows, stop))
        for _ in range(RELOADS):
            for path, loader, version in turns:
                mark = len(monitor.samples)
                await asyncio.sleep(IDLE_S)
                stalls["idle"].extend(monitor.samples[mark:])
                mark = len(monitor.samples)
                began = time.perf_counter()
                await loader.build(version)
                seconds[path].append(time.perf_counter() - began)
                stalls[path].extend(monitor.samples[mark:])
        stop.set()
        await watcher
        return await scorer

    batches = asyncio.run(run())
    assert batches > 0

    def batch_ms(bundle: ModelBundle, batch: FloatArray) -> float:
        times = []
        for _ in range(7):
            began = time.perf_counter()
            bundle.score(batch)
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000

    for form in ("skops", "tree-arrays"):
        size = sum(len(a[3]) for a in stored.artifacts if a[1] == form)
        yield Figure(f"reload_artifact_size_{form.replace('-', '_')}", size / 1024, "KiB")
    for path in ("old", "new", "xgboost"):
        yield Figure(f"reload_seconds_median_{path}", statistics.median(seconds[path]), "s")
    for path in ("idle", "old", "new", "xgboost"):
        yield Figure(f"reload_loop_stall_p99_{path}", _ms(stalls[path], 99), "ms")
        yield Figure(f"reload_loop_stall_max_{path}", _ms(stalls[path], 100), "ms")
    for path in ("old", "new"):
        worst = max(unloaded[path]) * 1000
        yield Figure(f"reload_loop_stall_max_{path}_without_load", worst, "ms")
    yield Figure(
        "reload_loop_stall_p99_old_vs_new",
        _ms(stalls["old"], 99) / _ms(stalls["new"], 99),
        "ratio",
    )
    old_bundle = build_model(stored, prefer_fast=False).bundle
    new_bundle = build_model(stored, prefer_fast=True).bundle
    for count in (SCORING_ROWS, 5 * BATCH):
        batch = training.features[:count][:, columns]
        old_ms, new_ms = batch_ms(old_bundle, batch), batch_ms(new_bundle, batch)
        yield Figure(f"scoring_fraud_{count}_rows_old_ms", old_ms, "ms")
        yield Figure(f"scoring_fraud_{count}_rows_new_ms", new_ms, "ms")
        yield Figure(f"scoring_fraud_{count}_rows_old_vs_new", old_ms / new_ms, "ratio")


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
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        stored = await fetch_version(conn, version)
    finally:
        await conn.close()
    return build_model(stored)
