"""Registry versions for tests that need real models but not a training run: fit once, save many."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import asyncpg

from schemas import artifacts
from schemas.bundles import ModelBundle
from tests.unit.trainer.factories import frames, world
from trainer import registry
from trainer.families import expense_set, fit
from trainer.settings import TrainerSettings

SMALL = TrainerSettings(forest_trees=10, training_threads=1)


@functools.cache
def expense_bundle() -> ModelBundle:
    """A small fitted expense-fraud bundle: an IsolationForest and a RandomForest."""
    data = frames(world(seed=5, customers=20, sheets=60, label_fraction=0.5))
    return fit(expense_set(data.expenses, data.labels, settings=SMALL, minimums=False), SMALL)


async def add_version(dsn: str, status: str = registry.VersionStatus.CANDIDATE) -> str:
    """Save the small bundle as a new version (never promoted); returns its id."""
    bundle = expense_bundle()
    stored = [
        artifact
        for role, model in sorted(bundle.models.items())
        for artifact in artifacts.dump_all(role, model)
    ]
    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        async with conn.transaction():
            record = await registry.save_version(
                conn,
                bundle=bundle,
                stored=stored,
                status=status,
                status_reason="saved by a test",
                metrics={"auc": 0.5},
                samples=10,
                data_start=None,
                data_cutoff=now,
                code_version="test",
                request_id=None,
                trained_at=now,
                promoted_at=None,
            )
    finally:
        await conn.close()
    return record.version


async def tamper(dsn: str, version: str, *, undo: bool = False) -> None:
    """Change every artifact's stored bytes (one byte appended) without touching its sha256."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        content = (
            "substring(content FROM 1 FOR length(content) - 1)"
            if undo
            else "content || '\\x00'::bytea"
        )
        changed = await conn.execute(
            f"UPDATE model_artifacts SET content = {content} WHERE version = $1",
            version,
        )
    finally:
        await conn.close()
    assert changed != "UPDATE 0", f"{version} has no artifacts"


async def statuses(dsn: str) -> dict[str, tuple[str, bool]]:
    """version -> (status, whether it was rolled back from)."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT version, status, rolled_back_at FROM model_versions")
    finally:
        await conn.close()
    return {r["version"]: (r["status"], r["rolled_back_at"] is not None) for r in rows}
