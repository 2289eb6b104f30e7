"""Training on one machine against training on a Dask cluster: the same forced delinquency
request at each size (default 1M and 5M labelled samples; RETRAINER_BENCH_CLUSTER_SIZES), trained
in the trainer process and on a LocalCluster of two worker processes, in one run.

Printed per size and path: wall time with its split (load, features+labels, fit, refit, other),
the trainer process's peak memory above what it held before, the Dask workers' peak memory (all
of them together), samples and holdout AUC. The sizes beyond the first are the first world's
customers copied under new ids in SQL (same statements, new customers), which is much faster
than simulating them.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import psutil

from schemas.training_outcome import OutcomeStatus
from tests.bench.bench_trainer import LABELLED_PER_CUSTOMER, _database, _request, wall_and_split
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import frames, world
from trainer.cluster import with_cluster
from trainer.service import Trainer
from trainer.settings import TrainerSettings

WORKERS = 2
MB = 1024 * 1024


def _sizes() -> list[int]:
    text = os.environ.get("RETRAINER_BENCH_CLUSTER_SIZES", "1000000,5000000")
    return sorted(int(s) for s in text.split(",") if s.strip())


@dataclass
class _Peaks:
    workers_idle: int
    trainer: int = 0
    workers: int = 0


@contextmanager
def _peak_memory(workers: list[int]) -> Iterator[_Peaks]:
    """Peak RSS of this process (above its RSS at the start) and of the `workers` together."""
    me = psutil.Process()
    base = me.memory_info().rss
    done = threading.Event()

    def rss(pid: int) -> int:
        try:
            return int(psutil.Process(pid).memory_info().rss)
        except psutil.NoSuchProcess:
            return 0

    idle = sum(rss(pid) for pid in workers)
    peaks = _Peaks(workers_idle=idle)

    def sample() -> None:
        while not done.wait(0.2):
            peaks.trainer = max(peaks.trainer, me.memory_info().rss - base)
            peaks.workers = max(peaks.workers, sum(rss(pid) for pid in workers))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peaks
    finally:
        done.set()
        sampler.join()


async def _copy_customers(url: str, first: int, last: int) -> None:
    """Copies `first`..`last` of every original customer and their statements, under new ids."""
    conn = await asyncpg.connect(url)
    try:
        for table, renamed in (
            ("customers", {"customer_id"}),
            ("customer_activity", {"customer_id", "statement_id"}),
        ):
            columns = [
                r["column_name"]
                for r in await conn.fetch(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = $1 ORDER BY ordinal_position",
                    table,
                )
            ]
            for k in range(first, last + 1):
                select = ", ".join(
                    f"{c} || '~{k}'"
                    if c in renamed
                    else ("gen_random_uuid()" if c == "event_id" else c)
                    for c in columns
                )
                await conn.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"SELECT {select} FROM {table} WHERE customer_id NOT LIKE '%~%'"
                )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _label(size: int) -> str:
    return f"{size / 1e6:g}m" if size >= 1_000_000 else f"{size / 1e3:g}k"


async def _train(
    settings: TrainerSettings, cutoff: datetime, workers: list[int], size: str
) -> list[Figure]:
    pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=2)
    cluster = with_cluster(settings)
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            trainer = Trainer(settings, pool, executor, cluster=cluster)
            with _peak_memory(workers) as peaks:
                began = time.perf_counter()
                result = await trainer.handle(_request(cutoff))
                wall = time.perf_counter() - began
            trainer.close()
    finally:
        await pool.close()
    assert result.status is OutcomeStatus.PROMOTED, result.outcome.reason
    detail = result.detail
    assert detail is not None
    samples = int(detail.training_set.summary["observations"])
    path = "cluster" if cluster is not None else "local"
    name = f"trainer_{path}_{size}"
    return [
        *wall_and_split(name, wall, detail),
        Figure(f"{name}_trainer_peak", peaks.trainer / MB, "MB"),
        Figure(f"{name}_workers_peak", peaks.workers / MB, "MB"),
        Figure(f"{name}_workers_peak_above_idle", (peaks.workers - peaks.workers_idle) / MB, "MB"),
        Figure(f"{name}_samples", samples, "rows"),
        Figure(f"{name}_auc", result.outcome.metrics["auc"], "auc"),
    ]


async def _run(dsn: str, scheduler: str, workers: list[int]) -> list[Figure]:
    sizes = _sizes()
    base = sizes[0]
    sim = frames(world(seed=21, customers=base // LABELLED_PER_CUSTOMER + 1, sheets=60))
    cutoff = datetime.fromtimestamp(sim.end_us / 1_000_000, tz=UTC)
    figures: list[Figure] = []
    async with _database(dsn) as url:
        await seed(url, sim)
        del sim
        copied = 0
        for size in sizes:
            wanted = max(0, round(size / base) - 1)
            if wanted > copied:
                began = time.perf_counter()
                await _copy_customers(url, copied + 1, wanted)
                copied = wanted
                figures.append(
                    Figure(f"trainer_cluster_seed_{size}", time.perf_counter() - began, "s")
                )
            local = TrainerSettings(database_url=url, max_customers=0)  # type: ignore[arg-type]
            on_cluster = local.model_copy(update={"dask_scheduler": scheduler})
            for settings in (local, on_cluster):
                figures += await _train(settings, cutoff, workers, _label(size))
    return figures


def bench_trainer_cluster(ctx: BenchContext) -> BenchResult:
    """1M and 5M samples, local vs a LocalCluster of two worker processes."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=WORKERS,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            host="127.0.0.1",
            memory_limit=None,
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        workers = [int(pid) for pid in client.run(os.getpid).values()]
        yield from asyncio.run(_run(ctx.dsn, cluster.scheduler_address, workers))
