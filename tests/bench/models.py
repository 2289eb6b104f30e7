"""Trained versions of both families for benchmarks that score: fitted once per process, saved
into a benchmark's database as champions and announced on its model-updated topic."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime

import asyncpg
import pandas as pd

from schemas import artifacts
from schemas.base import ModelFamily
from streams.scoring_frames import LoadedModel
from tests.factories import publish
from tests.unit.trainer.factories import Frames, frames, world
from trainer import registry
from trainer.families import delinquency_set, expense_set, fit
from trainer.settings import TrainerSettings

SETTINGS = TrainerSettings(forest_trees=200, training_threads=1)
"""The trainer's default forest size: scoring costs what it costs in production."""


@functools.cache
def training_frames() -> Frames:
    return frames(world(seed=11, customers=1500, sheets=1500))


def expense_model(data: Frames | None = None) -> LoadedModel:
    data = data if data is not None else training_frames()
    training = expense_set(data.expenses, data.labels, settings=SETTINGS)
    return LoadedModel(ModelFamily.EXPENSE_FRAUD, "bench-fraud", fit(training, SETTINGS))


def delinquency_model(data: Frames | None = None) -> LoadedModel:
    data = data if data is not None else training_frames()
    cutoff_day = int(pd.to_datetime(data.activity["statement_date"]).max().value // 86_400e9)
    training = delinquency_set(
        data.activity, data.customers, cutoff_day=cutoff_day, settings=SETTINGS
    )
    return LoadedModel(ModelFamily.DELINQUENCY, "bench-delinquency", fit(training, SETTINGS))


@functools.cache
def both_models() -> tuple[LoadedModel, LoadedModel]:
    """An expense-fraud and a delinquency version, fitted on one simulated world."""
    return expense_model(), delinquency_model()


async def _save_champion(dsn: str, model: LoadedModel) -> registry.VersionRecord:
    bundle = model.bundle
    stored = [artifacts.dump(role, m) for role, m in sorted(bundle.models.items())]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction():
            return await registry.save_version(
                conn,
                bundle=bundle,
                stored=stored,
                status=registry.VersionStatus.CHAMPION,
                status_reason="saved by a benchmark",
                metrics={"auc": 0.5},
                samples=1,
                data_start=None,
                data_cutoff=now,
                code_version="bench",
                request_id=None,
                trained_at=now,
                promoted_at=now,
            )
    finally:
        await conn.close()


def announce_champions(
    dsn: str, bootstrap: str, topic: str, models: list[LoadedModel]
) -> list[str]:
    """Save `models` as champions in `dsn` and announce them on `topic` (model-updated);
    returns their registry versions, in order."""
    records = [asyncio.run(_save_champion(dsn, model)) for model in models]
    publish(bootstrap, topic, [record.model_updated() for record in records])
    return [record.version for record in records]
