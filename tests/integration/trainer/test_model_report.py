"""Every trained version gets its report, stored with it, and the page works in a real browser.

Trained in-process on the real PostgreSQL; the stored page is fetched with the CLI and opened in
headless Chromium: no console error, nothing fetched but the file itself, and a page with plots
(many colours), not a blank one.
"""

from __future__ import annotations

import functools
import html
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from schemas.base import ModelFamily
from schemas.training_outcome import OutcomeStatus
from tests.browser import PageVisit, distinct_colours, fetched, file_url, open_page
from tests.conftest import Stack, TopicFactory
from tests.factories import ROOT
from tests.integration.trainer.kafka_helpers import request, settings_for
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames, world
from trainer import registry
from trainer.bootstrap import build
from trainer.errors import RegistryError

pytestmark = pytest.mark.integration

PLOTS = ("roc", "pr", "calibration", "scores", "confusion", "importance")
MANY_COLOURS = 500
"""Anti-aliased curves, bars and text give thousands of colours; a blank page gives a handful."""


@functools.cache
def delinquency_world() -> Frames:
    return frames(world(seed=11, customers=300, sheets=20))


def _cutoff(f: Frames) -> datetime:
    return datetime.fromtimestamp(f.end_us / 1_000_000, tz=UTC)


async def _report(url: str, version: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return await registry.report(conn, version)
    finally:
        await conn.close()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRAINER_")}
    env.update({"RETRAINER_DATABASE_URL": url, "COLUMNS": "400"})
    return subprocess.run(
        [sys.executable, "-m", "retrainer.cli", "models", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _assert_works_in_a_browser(page: Path) -> PageVisit:
    visit = await open_page(file_url(page))
    assert visit.problems == [], visit.problems
    assert fetched(visit) == [file_url(page)], "the report fetched something besides itself"
    assert visit.title.startswith("Model report ")
    colours = distinct_colours(visit.screenshot)
    assert colours >= MANY_COLOURS, f"the screenshot looks blank ({colours} colours)"
    return visit


async def test_each_version_has_a_report_that_a_browser_shows_without_errors(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str, tmp_path: Path
) -> None:
    url = fresh_database_url
    await seed(url, delinquency_world())
    app = await build(settings_for(stack, url, make_topic, training_threads=1))
    try:
        cutoff = _cutoff(delinquency_world())
        first = await app.trainer.handle(request(ModelFamily.DELINQUENCY, cutoff))
        second = await app.trainer.handle(request(ModelFamily.DELINQUENCY, cutoff))
    finally:
        await app.close()
    assert first.status is OutcomeStatus.PROMOTED, first.outcome.reason
    assert second.status in (OutcomeStatus.PROMOTED, OutcomeStatus.REJECTED)
    assert first.outcome.version is not None
    assert second.outcome.version is not None

    alone = await _report(url, first.outcome.version)
    compared = await _report(url, second.outcome.version)
    for page in (alone, compared):
        for plot in PLOTS:
            assert f'id="{plot}"' in page, plot
    assert "no labelled holdout" not in compared
    # The second version was compared with the first on the same holdout, and says so.
    assert f"<td>{first.outcome.version} (AUC " in compared
    assert f"champion {first.outcome.version}" in compared  # the curves' legends
    assert html.escape(second.outcome.reason) in compared

    # The CLI writes the stored page as it is; an unknown version is a clear error.
    saved = tmp_path / "report.html"
    done = _cli(url, "report", second.outcome.version, "--out", str(saved))
    assert done.returncode == 0, done.stderr
    assert saved.read_text(encoding="utf-8") == compared
    unknown = _cli(url, "report", "20000101T000000Z", "--out", str(tmp_path / "x.html"))
    assert unknown.returncode == 2
    assert "no model version '20000101T000000Z' in the registry" in unknown.stderr
    assert not (tmp_path / "x.html").exists()

    visit = await _assert_works_in_a_browser(saved)
    (tmp_path / "report.png").write_bytes(visit.screenshot)


async def test_an_unlabelled_detector_gets_a_report_that_says_what_it_cannot_show(
    stack: Stack, make_topic: TopicFactory, fresh_database_url: str, tmp_path: Path
) -> None:
    unlabelled = frames(world(seed=5, customers=10, sheets=60, label_fraction=0.0))
    await seed(fresh_database_url, unlabelled)
    app = await build(settings_for(stack, fresh_database_url, make_topic, training_threads=1))
    try:
        result = await app.trainer.handle(request(ModelFamily.EXPENSE_FRAUD, _cutoff(unlabelled)))
    finally:
        await app.close()
    assert result.outcome.version is not None
    page = await _report(fresh_database_url, result.outcome.version)
    assert "no labelled holdout" in page
    assert "anomaly score is not a probability" in page
    assert "IsolationForest splits (proxy)" in page
    saved = tmp_path / "detector.html"
    saved.write_text(page, encoding="utf-8")
    await _assert_works_in_a_browser(saved)

    conn = await asyncpg.connect(fresh_database_url)
    try:
        with pytest.raises(RegistryError, match="no model version"):
            await registry.report(conn, "20000101T000000Z")
    finally:
        await conn.close()
