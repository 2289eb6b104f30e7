"""Report inputs that look like a trained delinquency model's, without training one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from trainer.report import ReportInputs

NAMES = ("amount", "hour", "weekday")


def inputs(rows: int = 200, **changes: object) -> ReportInputs:
    rng = np.random.default_rng(3)
    truth = (rng.random(rows) < 0.3).astype(np.float64)
    truth[rng.random(rows) < 0.1] = np.nan
    scores = np.clip(0.2 + 0.5 * np.nan_to_num(truth) + rng.normal(0, 0.2, rows), 0, 1)
    base = ReportInputs(
        version="20261202T0800Z",
        family="delinquency",
        truth=truth,
        challenger_scores=scores,
        threshold=0.5,
        metrics={"auc": 0.9, "precision": 0.7, "recall": 0.6, "f1": 0.65},
        promoted=True,
        decision="first model of the family",
        samples=800,
        data_start=datetime(2026, 6, 1, tzinfo=UTC),
        data_cutoff=datetime(2026, 12, 1, tzinfo=UTC),
        score_label="P(delinquent)",
        feature_names=NAMES,
        importances=(3.0, 2.0, 1.0),
        importance_kind="XGBoost total gain",
    )
    return replace(base, **changes)  # type: ignore[arg-type]
