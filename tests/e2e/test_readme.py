"""The README's commands, run as written against the local stack.

What the README and docs/ say is checked against the code by the unit tier (tests/unit/docs/);
here the quickstart's stack commands run and the "By hand" query of the retraining log runs
against a migrated database. `make demo`'s command is test_demo.py; the worker started by hand
and the cron command are test_by_hand.py.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import asyncpg
import pytest

from tests.conftest import Stack
from tests.factories import ROOT

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"


def code_block(containing: str) -> str:
    """The README's fenced block that contains `containing`."""
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), re.DOTALL | re.MULTILINE)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"the README has no single code block with {containing!r}"
    return str(found[0])


def retrainer(*args: str) -> subprocess.CompletedProcess[str]:
    """`retrainer ARGS` from the code under test, in the caller's environment."""
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_quickstart_brings_the_stack_up_and_it_is_healthy(stack: Stack) -> None:
    [line] = [ln for ln in code_block("make demo").splitlines() if "retrainer stack up" in ln]
    command = shlex.split(line.partition("#")[0])
    assert command[0].endswith("retrainer"), line
    up = retrainer(*command[1:])
    assert up.returncode == 0, up.stderr
    assert "Traceback" not in up.stderr

    status = retrainer("stack", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["healthy"] is True, report
    assert report["kafka_bootstrap"] == stack.bootstrap


async def test_the_retraining_log_query_runs(fresh_database_url: str) -> None:
    block = code_block("FROM model_retraining_log")
    [sql] = re.findall(r'-c "([^"]+)"', block, flags=re.DOTALL)
    conn = await asyncpg.connect(fresh_database_url, timeout=10)
    try:
        statement = await conn.prepare(sql)
        rows = await statement.fetch()
        columns = [attribute.name for attribute in statement.get_attributes()]
    finally:
        await conn.close()
    assert rows == []
    selected = re.search(r"SELECT (.+?)\s+FROM", sql, flags=re.DOTALL)
    assert selected is not None
    assert columns == [name.strip() for name in selected.group(1).split(",")]
