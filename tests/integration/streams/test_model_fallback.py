"""A worker whose announced champion fails its sha256 at a cold start scores with the newest
promoted version that verifies, instead of scoring without a model."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from edge.settings import TopicNames
from schemas.base import ModelFamily
from schemas.expense_scored import ExpenseScored
from tests.factories import CODEC, publish, sheet, wait_until
from tests.integration.model_versions import add_version, tamper
from tests.integration.streams.conftest import Workers, read_all
from trainer import admin
from trainer.settings import TrainerSettings

ENV = {
    # No trigger of the policy may fire: there is no trainer, and none is needed.
    "RETRAINER_NEW_SHEETS_THRESHOLD": "100000000",
    "RETRAINER_ANOMALY_MIN_SAMPLE": "100000000",
}


def _scores(dsn: str, sheet_ids: list[str]) -> list[str]:
    async def run() -> list[str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT model_version FROM expense_scores WHERE sheet_id = ANY($1)", sheet_ids
            )
        finally:
            await conn.close()
        return [row["model_version"] for row in rows]

    return asyncio.run(run())


def _loaded(workers: Workers) -> dict[str, Any]:
    loaded: dict[str, Any] = workers.get("/models")["loaded"]["expense-fraud"]
    return loaded


def test_a_cold_start_with_a_tampered_champion_scores_with_the_newest_version_that_verifies(
    workers: Workers,
) -> None:
    workers.extra_env.update(ENV)
    workers.create_topics()
    dsn = workers.database_url
    settings = TrainerSettings(
        kafka_bootstrap=workers.stack.bootstrap,
        database_url=dsn,  # type: ignore[arg-type]
        topics=TopicNames(
            model_updated=workers.topic("model-updated"),
        ),
        trainer_metrics_port=0,
    )

    async def history() -> tuple[str, str]:
        """first, second, third promoted; third rolled back (second restored); fourth promoted."""
        first, second, third = [await add_version(dsn) for _ in range(3)]
        for version in (first, second, third):
            await admin.promote(settings, version)
        await admin.rollback(settings, ModelFamily.EXPENSE_FRAUD)
        fourth = await add_version(dsn)
        await admin.promote(settings, fourth)
        await add_version(dsn)  # the newest version, never promoted: no fallback
        # The announced champion and the version promoted just before it no longer verify.
        await tamper(dsn, fourth)
        await tamper(dsn, second)
        return first, fourth

    first, fourth = asyncio.run(history())

    port = workers.start()
    wait_until(lambda: workers.get("/models")["follower_ready"], 90, "the follower to catch up")
    # second is refused in its turn, third was rolled back from: first is the one that verifies.
    assert _loaded(workers) == {"version": first, "shadow": None}
    reloads = "retrainer_model_reloads_total"
    assert workers.metric(reloads, family="expense-fraud", outcome="refused") == 2
    assert workers.metric(reloads, family="expense-fraud", outcome="fallback") == 1
    assert workers.metric(reloads, family="expense-fraud", outcome="loaded") == 0
    log = (workers.logs / f"worker-{port}.log").read_text()
    assert f"refused expense-fraud {fourth} with no model to keep" in log
    assert f"scoring expense-fraud with {first}, the newest promoted version that verifies" in log

    sheets = [sheet(i, lines=4, prefix=workers.prefix) for i in range(5)]
    publish(workers.stack.bootstrap, workers.topic("expense-sheet"), sheets)
    sheet_ids = [s.sheet_id for s in sheets]
    wait_until(lambda: len(_scores(dsn, sheet_ids)) == 20, 90, "the new lines scored")
    assert set(_scores(dsn, sheet_ids)) == {first}
    scored = [
        CODEC.decode_as(ExpenseScored, value)
        for _, value in read_all(workers.stack.bootstrap, workers.topic("expense-scored"))
    ]
    assert len(scored) == 20
    assert {s.model_version for s in scored} == {first}

    # The next good announcement replaces the fallback as usual.
    async def promote_fifth() -> str:
        fifth = await add_version(dsn)
        await admin.promote(settings, fifth)
        return fifth

    fifth = asyncio.run(promote_fifth())
    wait_until(lambda: _loaded(workers)["version"] == fifth, 60, f"the worker to load {fifth}")
    assert workers.metric(reloads, family="expense-fraud", outcome="loaded") == 1
