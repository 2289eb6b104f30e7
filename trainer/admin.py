"""Operator actions behind the CLI: registry listing, manual promotion, rollback, `check`.

Scorers follow model-updated, so a manual promotion or rollback and its announcement are one
step: the version's artifacts are verified, the registry is changed in a transaction, and that
transaction commits only once Kafka has acknowledged the model-updated event. If Kafka does not
take it, nothing changed. Should the commit itself fail after the announcement, the champion it
replaced is announced again, so workers and registry still agree.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import asyncpg
from confluent_kafka import KafkaException

from schemas.base import ModelFamily
from schemas.codec import utc_now
from schemas.retrain_requested import RetrainReason, RetrainRequested
from trainer import outcomes, registry
from trainer.errors import DependencyUnavailable, RegistryError, TrainerError
from trainer.publisher import Outgoing, Publisher
from trainer.retry import DATABASE_ERRORS
from trainer.settings import TrainerSettings

if TYPE_CHECKING:  # training needs scikit-learn and XGBoost: imported by the commands that train
    from trainer.service import ReportStage, Result

APPLICATION_NAME = "retrainer-models"
"""How the CLI's registry connections are named in pg_stat_activity."""


def database_address(dsn: str) -> str:
    """host:port/database of a DSN, without user or password, for messages."""
    try:
        parts = urlsplit(dsn)
        port = parts.port
    except ValueError:
        return "the configured database"
    where = parts.hostname or "localhost"
    return f"{where}:{port or 5432}{parts.path or ''}"


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


@asynccontextmanager
async def _registry(settings: TrainerSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the registry; database failures become one clear TrainerError."""
    where = database_address(settings.dsn)
    try:
        conn = await asyncpg.connect(
            settings.dsn, timeout=10, server_settings={"application_name": APPLICATION_NAME}
        )
    except DATABASE_ERRORS as exc:
        raise DependencyUnavailable(f"cannot use PostgreSQL at {where}: {_reason(exc)}") from exc
    try:
        yield conn
    except DATABASE_ERRORS as exc:
        raise DependencyUnavailable(f"PostgreSQL at {where} failed: {_reason(exc)}") from exc
    finally:
        if not conn.is_closed():
            try:
                await conn.close(timeout=10)
            except DATABASE_ERRORS:
                conn.terminate()


async def versions(
    settings: TrainerSettings, family: ModelFamily | None = None, limit: int = 50
) -> list[registry.VersionRecord]:
    async with _registry(settings) as conn:
        return await registry.list_versions(conn, family, limit)


@dataclass(frozen=True)
class Shown:
    """A version with whether each artifact's bytes still match its sha256."""

    record: registry.VersionRecord
    verified: dict[str, bool]


async def show(settings: TrainerSettings, version: str) -> Shown:
    async with _registry(settings) as conn:
        record = await registry.get_version(conn, version)
        return Shown(record, await registry.verify_artifacts(conn, version))


async def report(settings: TrainerSettings, version: str) -> str:
    """The HTML report of `version` (RegistryError for an unknown version or one without)."""
    async with _registry(settings) as conn:
        return await registry.report(conn, version)


RegistryChange = Callable[[asyncpg.Connection], Awaitable[registry.ChampionChange]]
"""A change of champion made on a connection inside the announcing transaction."""


async def _unannounce(
    publisher: Publisher, topic: str, change: registry.ChampionChange, exc: BaseException
) -> TrainerError:
    """The commit failed after the announcement: announce the unchanged champion again."""
    announced = change.champion.version
    replaced = change.replaced
    if replaced is None or replaced.promoted_at is None:
        return RegistryError(
            f"{announced} was announced on {topic} but the registry change failed "
            f"({_reason(exc)}); run the command again"
        )
    try:
        await publisher.send([Outgoing(topic, replaced.model_updated())])
    except TrainerError as again:
        return RegistryError(
            f"{announced} was announced on {topic} but the registry change failed "
            f"({_reason(exc)}), and announcing {replaced.version} again failed too ({again}): "
            f"run `retrainer models promote {replaced.version}`"
        )
    return RegistryError(
        f"the registry change failed ({_reason(exc)}); nothing changed, {replaced.version} "
        f"is still champion and was announced again"
    )


async def _change_champion(
    settings: TrainerSettings, change: RegistryChange, publisher: Publisher | None
) -> registry.ChampionChange:
    """Run a registry change and announce its champion as one step (see the module's doc)."""
    topic = settings.topics.model_updated
    own = publisher is None
    from trainer.bootstrap import trainer_codec

    sender = publisher if publisher is not None else Publisher(settings, trainer_codec(settings))
    try:
        async with _registry(settings) as conn:
            announced: registry.ChampionChange | None = None
            try:
                async with conn.transaction():
                    result = await change(conn)
                    try:
                        await sender.send([Outgoing(topic, result.champion.model_updated())])
                    except TrainerError as exc:
                        kept = result.replaced.version if result.replaced else "no version"
                        raise RegistryError(
                            f"could not announce {result.champion.version} on {topic} ({exc}); "
                            f"nothing changed, {kept} is still champion"
                        ) from exc
                    announced = result
                return result
            except DATABASE_ERRORS as exc:
                if announced is None or not announced.changed:
                    raise
                undone = await _unannounce(sender, topic, announced, exc)
        # Raised outside the handler, so the database error is not its cause: the message says
        # what the operator needs (what was announced, what the registry still says).
        raise undone
    finally:
        if own:
            sender.close()


async def promote(
    settings: TrainerSettings,
    version: str,
    *,
    force: bool = False,
    publisher: Publisher | None = None,
) -> registry.ChampionChange:
    """Make `version` champion (a rejected one only with `force`) and announce it.

    Promoting the champion again changes nothing in the registry and announces it again.
    """
    return await _change_champion(
        settings,
        lambda conn: registry.promote(
            conn, version, "promoted by hand", utc_now(), allow_rejected=force
        ),
        publisher,
    )


async def rollback(
    settings: TrainerSettings,
    family: ModelFamily,
    *,
    to: str | None = None,
    publisher: Publisher | None = None,
) -> registry.ChampionChange:
    """Bring back an earlier champion (`to`, or the one before the champion) and announce it."""
    return await _change_champion(
        settings, lambda conn: registry.rollback(conn, family, utc_now(), to=to), publisher
    )


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
    progress: ReportStage | None = None,
) -> CheckReport:
    """Count new customers; retrain delinquency in-process when they reach the threshold."""
    from trainer.bootstrap import build, connect

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
            messages = [Outgoing(settings.topics.training_outcome, result.outcome)]
            if result.model_updated is not None:
                messages.insert(0, Outgoing(settings.topics.model_updated, result.model_updated))
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
