"""The README's "By hand" path, the way a user walks it: `retrainer worker` on a machine whose
home has no cache directory yet, and the cron command of docs/operations.md against that worker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from retrainer.harness import create_database, drop_database, free_port
from tests.conftest import Stack
from tests.factories import ROOT, wait_until
from tests.services import Workers

pytestmark = pytest.mark.e2e


def _retrainer(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _requests(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT request_id::text, family FROM retrain_requests")
    finally:
        await conn.close()
    return [(row["request_id"], row["family"]) for row in rows]


@pytest.fixture(scope="module")
def by_hand(
    stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Workers, dict[str, str], int]]:
    """A worker started as the README says: no data directory set, a home never used before.

    One worker serves the module: its tests only read what it made, or run the cron command
    beside it, and each asks for requests of its own."""
    tmp_path = tmp_path_factory.mktemp("by-hand")
    name = f"retrainer_byhand_{stack.session_id}"
    database_url = asyncio.run(create_database(stack.dsn, name))
    workers = Workers(stack, database_url, tmp_path)
    home = tmp_path / "home-of-a-new-user"
    home.mkdir()
    port = free_port()
    env = workers.env(port)
    del env["RETRAINER_WORKER_DATA_DIR"]
    env["HOME"] = str(home)
    try:
        workers.start(port, env, tmp_path / "by-hand.log")
        yield workers, env, port
    finally:
        workers.close()
        asyncio.run(drop_database(stack.dsn, name))


def test_a_worker_started_by_hand_makes_its_data_directory(
    by_hand: tuple[Workers, dict[str, str], int],
) -> None:
    workers, env, _ = by_hand
    data = Path(env["HOME"]) / ".cache" / "retrainer" / "workers" / f"{workers.prefix}-worker"
    assert data.is_dir()


def test_the_cron_command_reports_and_requests_when_forced(
    by_hand: tuple[Workers, dict[str, str], int],
) -> None:
    workers, env, _ = by_hand
    plain = _retrainer(env, "scheduled-training", "--days", "7")
    assert plain.returncode == 0, plain.stderr
    reports = [json.loads(line) for line in plain.stdout.splitlines()]
    assert {r["family"] for r in reports} == {"expense-fraud", "delinquency"}
    assert all(r["stored_last_7_days"] == 0 for r in reports)
    # Nothing stored: no policy is due, so cron asks for nothing.
    assert all(r["requested"] is None for r in reports), reports
    assert "Traceback" not in plain.stderr

    forced = _retrainer(env, "scheduled-training", "--days", "7", "--force")
    assert forced.returncode == 0, forced.stderr
    asked = {r["family"]: r["requested"] for r in map(json.loads, forced.stdout.splitlines())}
    assert all(asked.values()), asked

    wanted = {(request_id, family) for family, request_id in asked.items()}
    wait_until(
        lambda: set(asyncio.run(_requests(workers.database_url))) >= wanted,
        60,
        f"the forced requests {asked} in retrain_requests",
    )


def test_the_cron_command_says_what_to_do_when_the_database_is_wrong(
    by_hand: tuple[Workers, dict[str, str], int],
) -> None:
    _, env, _ = by_hand
    wrong = dict(env, RETRAINER_DATABASE_URL="postgresql://nobody:secret@127.0.0.1:1/none")
    result = _retrainer(wrong, "scheduled-training")
    assert result.returncode == 2
    assert "RETRAINER_DATABASE_URL" in result.stderr
    assert "secret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
