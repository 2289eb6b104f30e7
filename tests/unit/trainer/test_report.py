"""The model report: a self-contained page from plain inputs, degenerate holdouts included."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST, ModelBundle
from tests.unit.test_import_graph import imported_roots
from tests.unit.trainer.factories import frames, world
from tests.unit.trainer.report_inputs import inputs
from trainer.families import delinquency_set, expense_set, fit
from trainer.report import render_report
from trainer.reporting import holdout_scores, importances, score_meaning
from trainer.settings import TrainerSettings

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = TrainerSettings(training_threads=1, forest_trees=20)


def panels(page: str) -> dict[str, str]:
    """figure id -> its SVG."""
    return dict(re.findall(r'<figure class="panel" id="(\w+)"[^>]*>(.*?)</figure>', page, re.S))


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # Only the SVG namespace names are URLs, and namespaces are never fetched.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}, urls
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", page)
    ids = re.findall(r'\bid="([^"]+)"', page)
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"ids repeated across the inlined SVGs: {sorted(duplicates)[:5]}"


def test_a_full_report_has_every_plot_and_the_headline_figures() -> None:
    rng = np.random.default_rng(4)
    page = render_report(
        inputs(
            champion_version="20261101T0000Z",
            champion_scores=rng.random(200),
            metrics={
                "auc": 0.912,
                "precision": 0.7,
                "recall": 0.6,
                "f1": 0.65,
                "champion_auc": 0.8,
            },
            drift={"amount": 0.31, "hour": 0.02, "weekday": 0.12},
        )
    )
    assert_self_contained(page)
    assert set(panels(page)) == {
        "roc",
        "pr",
        "calibration",
        "scores",
        "confusion",
        "importance",
        "drift",
    }
    for name, svg in panels(page).items():
        assert svg.startswith("<svg"), name
        assert svg.rstrip().endswith("</svg>"), name
    for shown in ("0.912", "20261202T0800Z", "20261101T0000Z", "first model of the family"):
        assert shown in page
    assert "2026-06-01 00:00 UTC to 2026-12-01 00:00 UTC" in page
    assert '<td class="shifted">0.310</td>' in page
    assert "promoted" in page


@pytest.mark.parametrize(
    ("truth", "gap"),
    [
        (np.full(50, np.nan), "no labelled holdout"),
        (np.zeros(50), "no labelled holdout positives (0 of 50)"),
        (np.ones(50), "no labelled holdout negatives (50 of 50)"),
    ],
    ids=["unlabelled", "negatives-only", "positives-only"],
)
def test_a_holdout_without_both_classes_says_so_instead_of_curves(
    truth: np.ndarray, gap: str
) -> None:
    page = render_report(
        inputs(
            rows=50,
            truth=truth,
            challenger_scores=np.linspace(0, 1, 50),
            metrics={"holdout_samples": 50.0},
        )
    )
    assert_self_contained(page)
    assert gap in page  # the headline caption says it in words
    assert len(panels(page)) == 6
    assert "n/a" in page  # AUC and friends are not made up


def test_zero_holdout_rows_and_no_importances() -> None:
    empty = np.array([], dtype=np.float64)
    page = render_report(
        inputs(
            truth=empty,
            challenger_scores=empty,
            metrics={},
            importances=None,
            importance_kind="IsolationForest has no importances",
            promoted=False,
            decision="rejected: no evidence",
        )
    )
    assert_self_contained(page)
    assert "0 rows, 0 labelled, 0 positive" in page
    assert "not promoted" in page
    assert "reference was not computed" in page


def test_text_from_the_registry_is_escaped() -> None:
    page = render_report(inputs(decision="<script>alert(1)</script> & more", version="v<1>"))
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page


def test_misaligned_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="challenger scores"):
        inputs(challenger_scores=np.zeros(3))
    with pytest.raises(ValueError, match="champion scores"):
        inputs(champion_scores=np.zeros(3))
    with pytest.raises(ValueError, match="importances"):
        inputs(importances=(1.0,))


def test_matplotlib_is_imported_only_when_a_report_is_drawn() -> None:
    probe = "import sys, trainer.reporting; print('matplotlib' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "False", found.stderr
    roots = imported_roots(ROOT / "trainer" / "report.py")
    assert not roots & {"asyncpg", "confluent_kafka", "faust", "streams", "xgboost"}, roots


# --- what the trainer feeds it -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sim():  # type: ignore[no-untyped-def]
    return frames(world(seed=9, customers=300, sheets=150, label_fraction=0.5))


def test_each_family_reads_its_importances_and_threshold(sim) -> None:  # type: ignore[no-untyped-def]
    cutoff_day = int(sim.end_us // 86_400_000_000)
    delinquency = delinquency_set(
        sim.activity, sim.customers, cutoff_day=cutoff_day, settings=SETTINGS
    )
    booster = fit(delinquency, SETTINGS)
    values, kind = importances(booster)
    assert kind == "XGBoost total gain"
    assert values is not None
    assert len(values) == len(booster.feature_names)
    assert sum(values) > 0
    assert score_meaning(booster).probabilities
    assert len(holdout_scores(booster, delinquency)) == len(delinquency.holdout_rows)

    expenses = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    forests = fit(expenses, SETTINGS)
    assert importances(forests)[1] == "RandomForest impurity decrease"
    detector_only = ModelBundle(
        family=forests.family,
        models={ISOLATION_FOREST: forests.models[ISOLATION_FOREST]},
        feature_names=forests.feature_names,
        threshold=forests.threshold,
    )
    values, kind = importances(detector_only)
    assert kind == "IsolationForest splits (proxy)"
    assert values is not None
    assert sum(values) > 0
    meaning = score_meaning(detector_only)
    assert not meaning.probabilities
    # The threshold is where the forest itself starts flagging rows.
    scores = detector_only.score(np.nan_to_num(expenses.features[expenses.holdout_rows]))
    np.testing.assert_array_equal(scores.score > meaning.threshold, scores.flagged)
    assert RANDOM_FOREST not in detector_only.models


def test_a_report_that_cannot_be_drawn_is_logged_and_left_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The version is recorded without a report: nothing is written, the log says why."""
    import asyncio
    import logging
    from types import SimpleNamespace
    from typing import Any

    from trainer import reporting

    def broken(*_args: object, **_kwargs: object) -> str:
        raise ValueError("a plot went wrong")

    monkeypatch.setattr(reporting, "report_inputs", broken)

    class NoDatabase:
        async def execute(self, *_args: object) -> None:
            raise AssertionError("nothing may be stored")

    async def inline(function: Any) -> Any:
        return function()

    caplog.set_level(logging.ERROR, logger="trainer.reporting")
    stored = asyncio.run(
        reporting.store_report(
            NoDatabase(),  # type: ignore[arg-type]
            SimpleNamespace(version="v1"),  # type: ignore[arg-type]
            SimpleNamespace(),  # type: ignore[arg-type]
            SimpleNamespace(),  # type: ignore[arg-type]
            SimpleNamespace(),  # type: ignore[arg-type]
            inline,
        )
    )
    assert stored is False
    assert "the report of v1 could not be drawn" in caplog.text
    assert "a plot went wrong" in caplog.text


def test_warm_up_loads_the_plotting_code_a_report_needs() -> None:
    import sys

    from trainer.report import warm_up

    warm_up()
    assert "matplotlib.figure" in sys.modules
    assert "matplotlib.backends.backend_svg" in sys.modules
