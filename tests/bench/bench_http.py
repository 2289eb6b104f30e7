"""The worker's HTTP API under 200 concurrent requests mixing status, CSV upload, models and health.

A real worker (subprocess, its own topics and database, a few thousand stored sheets so the
status queries have rows to count) gets the mix at once; the figures are its latency
percentiles, the same percentiles for /health alone in the mix, and how many health answers
were not 200 (health reads a cached probe, so a busy loop must not make it fail).
"""

from __future__ import annotations

import asyncio
import statistics
import time

from aiohttp import ClientSession, ClientTimeout

from schemas.expense_sheet import UPLOAD_CSV_COLUMNS
from tests.bench.bench_worker import _stored_lines
from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.factories import API_TOKEN, publish, sheet, wait_until

CONCURRENT = 200
SEEDED_SHEETS = 2000
BACKLOG_SHEETS = 20000
MIX = ("status", "upload", "models", "health")


def _upload_csv(n: int, round_: str) -> bytes:
    rows = [",".join(UPLOAD_CSV_COLUMNS)]
    for line in range(5):
        rows.append(
            f"{round_}-{n},emp-{n % 17},{round_}-{n}-{line},{10 + line}.25,EUR,meals,Cafe,"
            f"2025-01-0{line + 1},lunch {line},r{line}"
        )
    return ("\r\n".join(rows) + "\r\n").encode()


async def _one(
    session: ClientSession, base: str, kind: str, n: int, round_: str
) -> tuple[str, int, float]:
    began = time.perf_counter()
    if kind == "status":
        request = session.get(f"{base}/retraining/status?family=expense-fraud")
    elif kind == "models":
        request = session.get(f"{base}/models")
    elif kind == "health":
        request = session.get(f"{base}/health")
    else:
        request = session.post(
            f"{base}/expenses/upload",
            data=_upload_csv(n, round_),
            headers={"Content-Type": "text/csv", "Authorization": f"Bearer {API_TOKEN}"},
        )
    async with request as response:
        await response.read()
        return kind, response.status, time.perf_counter() - began


async def _mix(port: int, round_: str) -> list[tuple[str, int, float]]:
    base = f"http://127.0.0.1:{port}"
    async with ClientSession(timeout=ClientTimeout(total=120)) as session:
        return await asyncio.gather(
            *(_one(session, base, MIX[n % len(MIX)], n, round_) for n in range(CONCURRENT))
        )


def _p(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def bench_http_mixed_load(ctx: BenchContext) -> BenchResult:
    """p50/p99 of 200 concurrent mixed requests to one worker; health answers that were not 200."""
    with ctx.database("http") as url, ctx.services("http", url) as workers:
        topic = workers.topic("expense-sheet")
        port = workers.start()
        publish(ctx.bootstrap, topic, [sheet(n, 4, workers.prefix) for n in range(SEEDED_SHEETS)])
        wait_until(lambda: _stored_lines(url) >= 4 * SEEDED_SHEETS, 600, "the seeded sheets")
        asyncio.run(_mix(port, "warm"))  # warm-up: connections, caches, first queries
        answers = asyncio.run(_mix(port, "quiet"))
        # The same mix while the worker stores a backlog: uploads wait (up to
        # RETRAINER_UPLOAD_WAIT_S) for their sheets, which must not slow the rest.
        backlog = [sheet(n, 4, f"{workers.prefix}-b") for n in range(BACKLOG_SHEETS)]
        publish(ctx.bootstrap, topic, backlog)
        busy = asyncio.run(_mix(port, "busy"))
        workers.kill(0)
    yield from _figures("http_mix_200", answers)
    yield from _figures("http_mix_200_backlog", busy)


def _figures(name: str, answers: list[tuple[str, int, float]]) -> BenchResult:
    failed = [(kind, status) for kind, status, _ in answers if status != 200]
    if [f for f in failed if f[0] != "health"]:
        raise RuntimeError(f"requests failed under load: {failed[:10]}")
    everything = [seconds * 1000 for _, _, seconds in answers]
    yield Figure(f"{name}_p50_ms", _p(everything, 50), "ms")
    yield Figure(f"{name}_p99_ms", _p(everything, 99), "ms")
    yield Figure(f"{name}_health_not_200", float(len(failed)), "answers")
    for kind in MIX:
        mine = [seconds * 1000 for k, _, seconds in answers if k == kind]
        yield Figure(f"{name}_{kind}_p99_ms", _p(mine, 99), "ms")
