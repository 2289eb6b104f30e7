"""`retrainer demo` as a user runs it (no TTY): every trigger fires, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import psutil
import pytest
from confluent_kafka.admin import AdminClient

from tests.conftest import Stack
from tests.factories import ROOT

pytestmark = pytest.mark.e2e

BUDGET_S = 180.0
REASONS = {
    "new customers": r"request  delinquency: new_customers — “New customers: \d+”",
    "new sheets": r"request  expense-fraud: new_sheets — “New sheets: \d+”",
    "anomaly rate": r"request  expense-fraud: anomaly_rate_(high|low) — “Anomaly rate ",
    "manual": r"request  delinquency: manual — “Manual retraining requested by ",
}


def leftovers(run_id: str, pids: list[int]) -> list[str]:
    """Processes of the run still alive: its worker and trainer, or anything with its prefix."""
    prefix = f"demo-{run_id}"
    found: list[str] = []
    for pid in pids:
        if psutil.pid_exists(pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.status() != psutil.STATUS_ZOMBIE:
                    found.append(f"pid {pid}: {' '.join(process.cmdline())}")
    for process in psutil.process_iter(["pid", "cmdline"]):
        # A process may end, or refuse to show its environment, while we look: it is not ours.
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            command = " ".join(process.info["cmdline"] or [])
            ours = prefix in command
            if "retrainer.cli worker" in command or "retrainer.cli trainer" in command:
                environment = process.environ()
                ours = ours or any(prefix in value for value in environment.values())
            if ours and process.pid != os.getpid():
                found.append(f"pid {process.pid}: {command}")
    return found


async def database_exists(dsn: str, name: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def test_demo_fires_every_trigger_and_leaves_nothing_running(stack: Stack) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "demo"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=BUDGET_S + 60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]

    run_id = re.search(r"^run (\S+) · seed", output, re.MULTILINE)
    assert run_id is not None, output[:2000]
    pids = re.search(r"worker pid (\d+) \(:\d+\), trainer pid (\d+)", output)
    assert pids is not None, output[:4000]

    for kind, pattern in REASONS.items():
        assert re.search(pattern, output), f"no {kind} request in:\n{output[-6000:]}"

    promoted = re.findall(r"trained  (\S+) (auto_retrain_\S+): .* → promoted", output)
    reloaded = set(re.findall(r"reload   the worker now scores (\S+) with (\S+)", output))
    with_reload = [p for p in promoted if p in reloaded]
    assert len(with_reload) >= 3, f"promotions {promoted}, reloads {reloaded}"

    wall = re.search(r"wall time ([\d.]+) s", output)
    assert wall is not None, output[-2000:]
    assert float(wall.group(1)) < BUDGET_S, output[-2000:]

    assert leftovers(run_id.group(1), [int(pids.group(1)), int(pids.group(2))]) == []
    database = "retrainer_demo_" + run_id.group(1).replace("-", "_")
    assert not asyncio.run(database_exists(stack.dsn, database))
    topics = AdminClient({"bootstrap.servers": stack.bootstrap}).list_topics(timeout=15).topics
    assert [t for t in topics if t.startswith(f"demo-{run_id.group(1)}")] == []

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    shutil.rmtree(cache / "retrainer" / "demo" / run_id.group(1), ignore_errors=True)
