"""Start-up: seconds until a worker on an empty database answers /health, and the wall time of
the CLI's read-only commands (what an operator waits for before seeing anything).

Each figure comes with the CPU seconds the process spent (user + system), which other processes
on a shared machine change much less than the wall time.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

import psutil

from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.factories import ROOT

READ_ONLY = {
    "help": ["--help"],
    "check_help": ["check", "--help"],
    "stack_status": ["stack", "status"],
    "models_list": ["models", "list"],
}
"""Commands that only read (the figure's name -> the arguments of `retrainer`)."""

REPEATS = 3
WORKER_STARTS = 2


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command_seconds(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `retrainer <args>` run to its exit."""
    cpu = _children_cpu_s()
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - began, _children_cpu_s() - cpu


def bench_startup(ctx: BenchContext) -> BenchResult:
    """A fresh worker until /health answers (median of two), then each read-only command
    (median of three), all against one empty, migrated database."""
    with ctx.database("startup") as dsn, ctx.services("startup", dsn) as workers:
        ready, ready_cpu = [], []
        for _ in range(WORKER_STARTS):
            began = time.perf_counter()
            port = workers.start()
            ready.append(time.perf_counter() - began)
            service = workers.services.started[-1]
            times = psutil.Process(service.pid).cpu_times()
            ready_cpu.append(times.user + times.system)
            service.stop(30)
        yield Figure("startup_worker_ready_s", statistics.median(ready), "s")
        yield Figure("startup_worker_ready_cpu_s", statistics.median(ready_cpu), "s")
        env = workers.env(port)
        for name, args in READ_ONLY.items():
            runs = [command_seconds(args, env) for _ in range(REPEATS)]
            yield Figure(f"startup_cli_{name}_s", statistics.median(r[0] for r in runs), "s")
            yield Figure(f"startup_cli_{name}_cpu_s", statistics.median(r[1] for r in runs), "s")
