"""Operator actions behind the CLI: registry listing, manual promotion, rollback, `check`.

Promotions made here are announced on model-updated like the trainer's own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
from confluent_kafka import KafkaException

from schemas.base import ModelFamily
from schemas.codec import utc_now
from schemas.retrain_requested import RetrainReason, RetrainRequested
from trainer import outcomes, registry
from trainer.bootstrap import build, codec_for, connect
from trainer.errors import TrainerError
from trainer.publisher import Outgoing, Publisher
from trainer.service import Progress, Result
from trainer.settings import TrainerSettings


async def _announce(settings: TrainerSettings, record: registry.VersionRecord) -> None:
    publisher = Publisher(settings, codec_for(settings))
    try:
        await publisher.send([Outgoing(settings.topic_model_updated, record.model_updated())])
    finally:
        publisher.close()


async def versions(
    settings: TrainerSettings, family: ModelFamily | None = None, limit: int = 50
) -> list[registry.VersionRecord]:
    conn = await asyncpg.connect(settings.dsn, timeout=10)
    try:
        return await registry.list_versions(conn, family, limit)
    finally:
        await conn.close()


@dataclass(frozen=True)
class Shown:
    """A version with whether each artifact's bytes still match its sha256."""

    record: registry.VersionRecord
    verified: dict[str, bool]


async def show(settings: TrainerSettings, version: str) -> Shown:
    conn = await asyncpg.connect(settings.dsn, timeout=10)
    try:
        record = await registry.get_version(conn, version)
        return Shown(record, await registry.verify_artifacts(conn, version))
    finally:
        await conn.close()


async def promote(
    settings: TrainerSettings, version: str, *, force: bool = False
) -> registry.VersionRecord:
    """Make `version` champion (a rejected one only with `force`) and announce it."""
    conn = await asyncpg.connect(settings.dsn, timeout=10)
    try:
        record = await registry.promote(
            conn, version, "promoted by hand", utc_now(), allow_rejected=force
        )
        # Never announce a version whose bytes do not verify: scorers would refuse it anyway.
        await registry.load_bundle(conn, record)
    finally:
        await conn.close()
    await _announce(settings, record)
    return record


async def rollback(settings: TrainerSettings, family: ModelFamily) -> registry.VersionRecord:
    """Bring back the previous champion and re-publish it as model-updated."""
    conn = await asyncpg.connect(settings.dsn, timeout=10)
    try:
        record = await registry.rollback(conn, family, utc_now())
        await registry.load_bundle(conn, record)
    finally:
        await conn.close()
    await _announce(settings, record)
    return record


@dataclass(frozen=True)
class CheckReport:
    """The pre-delinquency engine's check-and-retrain report."""

    new_customers: int
    threshold: int
    days: int | None
    triggers: bool
    forced: bool
    result: Result | None
    announced: bool
    announce_error: str | None = None


async def check(
    settings: TrainerSettings,
    *,
    force: bool = False,
    days: int | None = None,
    progress: Progress | None = None,
) -> CheckReport:
    """Count new customers; retrain delinquency in-process when they reach the threshold."""
    now = utc_now()
    pool = await connect(settings)
    try:
        async with pool.acquire() as conn:
            since: datetime | None = now - timedelta(days=days) if days is not None else None
            new = await outcomes.new_customers(conn, since)
    finally:
        await pool.close()
    triggers = new >= settings.new_customers_threshold
    if not (triggers or force):
        return CheckReport(new, settings.new_customers_threshold, days, False, force, None, False)
    request = RetrainRequested(
        occurred_at=now,
        request_id=uuid.uuid4(),
        family=ModelFamily.DELINQUENCY,
        reason=RetrainReason.NEW_CUSTOMERS if triggers else RetrainReason.MANUAL,
        reason_text=f"New customers: {new}" if triggers else f"Forced check (new customers: {new})",
        counters={"new_customers": float(new)},
        data_cutoff=now,
        force=force,
        requested_by="cli",
    )
    app = await build(settings)
    try:
        result = await app.trainer.handle(request, progress)
        announced, error = False, None
        try:
            messages = [Outgoing(settings.topic_training_outcome, result.outcome)]
            if result.model_updated is not None:
                messages.insert(0, Outgoing(settings.topic_model_updated, result.model_updated))
            await app.publisher.send(messages)
            announced = result.model_updated is not None
        except (TrainerError, KafkaException, BufferError) as exc:
            # The outcome is recorded in PostgreSQL already; the report says Kafka did not get it.
            error = str(exc)
    finally:
        await app.close()
    return CheckReport(
        new, settings.new_customers_threshold, days, triggers, force, result, announced, error
    )
