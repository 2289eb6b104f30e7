"""Model quality on the drift scenario (tests.quality): AUC and F1 of the champion before and
after the drift, of the model the retrain produces, and of an oracle, per family."""

from __future__ import annotations

import asyncio

from tests.bench.harness import BenchContext, BenchResult, Figure
from tests.quality import drift_world, run_drift_scenario


def bench_quality_drift_scenario(ctx: BenchContext) -> BenchResult:
    """F1 is at each model's own threshold; the oracle's is its best F1 on the same rows."""
    with ctx.database("quality") as url:
        result = asyncio.run(run_drift_scenario(url, drift_world()))
    for outcome, text in result.outcomes.items():
        print(f"# {outcome}: {text[:200]}")
    for quality in result.qualities:
        yield Figure(f"{quality.name}_auc", quality.auc, "auc")
        yield Figure(f"{quality.name}_f1", quality.f1, "f1")
        if quality.new_kind_recall is not None:
            yield Figure(f"{quality.name}_new_kind_recall", quality.new_kind_recall, "recall")
