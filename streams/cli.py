"""The worker's commands: `retrainer worker` and the expense app's `scheduled-training`."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from schemas.base import ModelFamily


def register(app: typer.Typer) -> None:
    """Add the worker's commands to the `retrainer` CLI."""

    @app.command("worker")
    def worker(
        loglevel: Annotated[str, typer.Option(help="faust log level")] = "info",
    ) -> None:
        """Run the stream worker: ingest, counters, policy, scorers, HTTP API (port 6066)."""
        from streams.bootstrap import SchemaBehind, TopicSetupError, run_worker
        from streams.settings import StreamsSettings

        try:
            run_worker(StreamsSettings(), loglevel=loglevel)
        except (TopicSetupError, SchemaBehind) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from exc

    @app.command("scheduled-training")
    def scheduled_training(
        days: Annotated[
            int, typer.Option(help="report data stored in the last N days", min=1)
        ] = 30,
        force: Annotated[
            bool, typer.Option(help="request a retraining even if none is due")
        ] = False,
        family: Annotated[
            list[ModelFamily] | None, typer.Option(help="families (default: both)")
        ] = None,
    ) -> None:
        """For cron: ask for a retraining of each family when its policy is due (or --force).

        Sends the request to the workers (they own the policy state and the in-flight guard) and
        prints what each family's policy says; it trains nothing itself.
        """
        asyncio.run(_scheduled(days, force, family or list(ModelFamily)))


async def _scheduled(days: int, force: bool, families: list[ModelFamily]) -> None:
    import asyncpg
    from confluent_kafka import Producer

    from streams.handlers import PolicyEngine
    from streams.settings import StreamsSettings
    from streams.signals import PolicySignal, SignalKind
    from streams.web import family_status

    settings = StreamsSettings()
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), max_size=2)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})

    async def ready() -> asyncpg.Pool:
        return pool

    engine = PolicyEngine(settings.policy(), ready)
    try:
        for family in families:
            status = await family_status(pool, engine, family)
            async with pool.acquire() as conn:
                table = "sheets" if family is ModelFamily.EXPENSE_FRAUD else "customers"
                recent = await conn.fetchval(
                    f"SELECT count(*) FROM {table} "  # noqa: S608 - a fixed table name
                    "WHERE ingested_at > now() - make_interval(days => $1)",
                    days,
                )
            due = status["decision"] == "request"
            request_id = None
            if force or due:
                request_id = uuid.uuid4()
                signal = PolicySignal(
                    kind=SignalKind.MANUAL,
                    family=family,
                    sent_at=datetime.now(UTC),
                    request_id=request_id,
                    requested_by="scheduled-training",
                    force=force,
                )
                producer.produce(
                    settings.topics().policy_signals,
                    key=family.value.encode(),
                    value=signal.encode(),
                )
            typer.echo(
                json.dumps(
                    {
                        "family": family.value,
                        f"stored_last_{days}_days": recent,
                        "decision": status["decision"],
                        "reason": status["reason"],
                        "requested": str(request_id) if request_id else None,
                        "force": force,
                    }
                )
            )
        if producer.flush(30) != 0:
            typer.echo("error: the request could not be delivered to Kafka", err=True)
            raise typer.Exit(code=2)
    finally:
        await pool.close()
