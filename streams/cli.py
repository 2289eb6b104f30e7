"""The worker's commands: `worker`, the expense app's `scheduled-training`, and the backfill tools
(`replay`, `rebuild-state`, `rescore`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edge.levels import LogLevel
from schemas import diagnostics
from schemas.diagnostics import Problem, kafka_unreachable
from schemas.families import ModelFamily

if TYPE_CHECKING:
    from streams.settings import StreamsSettings


def register(app: typer.Typer) -> None:
    """Add the worker's commands to the `retrainer` CLI."""

    @app.command("worker")
    def worker(
        loglevel: Annotated[
            LogLevel | None,
            typer.Option(
                case_sensitive=False,
                help="lowest level logged (default: RETRAINER_LOG_LEVEL, or INFO)",
            ),
        ] = None,
    ) -> None:
        """Run the stream worker: ingest, counters, policy, scorers, HTTP API (port 6066)."""
        from edge.health import kafka_problem
        from edge.logs import LogSettings
        from schemas.diagnostics import port_problem
        from streams.bootstrap import SchemaBehind, TopicSetupError, run_worker
        from streams.settings import StreamsSettings

        settings = with_data_dir(StreamsSettings())
        logs = LogSettings() if loglevel is None else LogSettings(log_level=loglevel)
        # What a user gets wrong is refused here, in one line each, before Faust starts.
        _refuse(
            port_problem(
                settings.web_host, settings.web_port, "RETRAINER_WEB_PORT", "RETRAINER_WEB_HOST"
            )
        )
        dsn = settings.database_url.get_secret_value()
        _refuse(asyncio.run(probe_database(dsn)))
        _refuse(kafka_problem(settings.kafka))
        try:
            run_worker(settings, logs)
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

    @app.command("openapi")
    def openapi() -> None:
        """Print the worker's OpenAPI 3.1 document (as committed in schemas/openapi.json)."""
        from streams.web.openapi import rendered

        typer.echo(rendered(), nl=False)

    _register_backfill(app)


def with_data_dir(settings: StreamsSettings) -> StreamsSettings:
    """`settings` with Faust's data directory made explicit and created, parents included.

    Faust creates it without its parents, so on a machine where ~/.cache/retrainer does not
    exist yet the worker would die at start.
    """
    from pathlib import Path

    folder = (
        Path(settings.worker_data_dir).expanduser()
        if settings.worker_data_dir
        else Path.home() / ".cache" / "retrainer" / "workers" / settings.app_id
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _refuse(
            Problem(
                f"cannot create the worker's data directory {folder}: {exc.strerror}; set "
                "RETRAINER_WORKER_DATA_DIR to a directory the worker may write"
            )
        )
    return settings.model_copy(update={"worker_data_dir": str(folder)})


async def probe_database(dsn: str) -> Problem | None:
    """Connect once: None if PostgreSQL takes us, else why not (one line naming the setting)."""
    from functools import partial

    import asyncpg

    return await diagnostics.probe_database(dsn, partial(asyncpg.connect, timeout=15))


def _refuse(problem: Problem | None) -> None:
    if problem is not None:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(code=2)


async def _scheduled(days: int, force: bool, families: list[ModelFamily]) -> None:
    import asyncpg

    from edge.health import kafka_problem
    from edge.producer import DeliveringProducer, DeliveryFailed
    from streams.readmodel import family_status, next_manual_request
    from streams.services.quality import QualityMonitor
    from streams.settings import StreamsSettings
    from streams.signals import PolicySignal, SignalKind
    from streams.store.counts import stored_within

    settings = StreamsSettings()
    dsn = settings.database_url.get_secret_value()
    _refuse(await probe_database(dsn))
    _refuse(kafka_problem(settings.kafka))
    # asyncpg's min_size defaults to 10: it must be given with a max_size below that.
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, timeout=15)
    # The same partitioner as the worker's (Java-compatible murmur2), so a family's signal lands
    # on the partition whose agent holds that family's state.
    producer = DeliveringProducer(settings.kafka, partitioner="murmur2_random")

    policy = settings.policy()

    async def opened() -> asyncpg.Pool:
        return pool

    # The drift and performance triggers count as due for cron as they do for the worker.
    quality = QualityMonitor(policy.quality, opened)
    try:
        for family in families:
            status = await family_status(pool, policy, family, quality=quality)
            async with pool.acquire() as conn:
                recent = await stored_within(conn, family, days)
            # cron is not held back by the minimum interval between automatic trainings
            due = status.decision.value in ("request", "held")
            request_id = None
            if force or due:
                request_id = (await next_manual_request(pool, family))[1]
                signal = PolicySignal(
                    kind=SignalKind.MANUAL,
                    family=family,
                    sent_at=datetime.now(UTC),
                    request_id=request_id,
                    requested_by="scheduled-training",
                    force=force,
                )
                producer.enqueue(
                    settings.topics.policy_signals, [(family.value.encode(), signal.encode())]
                )
            typer.echo(
                json.dumps(
                    {
                        "family": family.value,
                        f"stored_last_{days}_days": recent,
                        "decision": status.decision.value,
                        "reason": status.reason,
                        "requested": str(request_id) if request_id else None,
                        "force": force,
                    }
                )
            )
        try:
            producer.close(timeout_s=30)
        except DeliveryFailed as exc:
            _refuse(kafka_unreachable(settings.kafka.describe(), f"not acknowledged: {exc}"))
    finally:
        await pool.close()


# -- backfill: replay, rebuild-state, rescore ----------------------------------------------------


def _instant(text: str | None, option: str) -> datetime | None:
    from streams.replay import ReplayError, parse_instant

    if text is None:
        return None
    try:
        return parse_instant(text)
    except ReplayError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _split(values: list[str] | None) -> tuple[str, ...]:
    return tuple(
        part.strip() for value in values or [] for part in value.split(",") if part.strip()
    )


def _register_backfill(app: typer.Typer) -> None:
    """Add the backfill tools: replay, rebuild-state and rescore."""
    app.command("replay")(_replay)
    app.command("rebuild-state")(_rebuild_state)
    app.command("rescore")(_rescore)


def _replay(
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", help="replay every message still on the topics")
    ] = False,
    from_: Annotated[
        str | None,
        typer.Option("--from", help="replay messages at or after this ISO 8601 time / epoch ms"),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="stop each partition at its first message at/after this time"),
    ] = None,
    topics: Annotated[
        list[str] | None,
        typer.Option(
            "--topics", help="upstream topics (repeatable or comma-separated; default: all 4)"
        ),
    ] = None,
    commit_group: Annotated[
        str | None,
        typer.Option(
            help="after a full replay, start this idle consumer group (e.g. the workers' "
            "upstream group, <app id>-upstream) where the replay stopped"
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="messages per stored batch")] = 2000,
    notify: Annotated[bool, typer.Option(help="tell the workers' policy that data moved")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as JSON on stdout")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")] = False,
) -> None:
    """Re-consume upstream topics into PostgreSQL (idempotent), up to today's end offsets.

    A fresh consumer of its own (nothing committed), the worker's decode + sink path, dead
    letters to the dead-letter topic; ends with consumed / newly stored / already present /
    dead-lettered. Replaying twice changes nothing in PostgreSQL.
    """
    from streams.replay import ReplayError, ReplayOptions
    from streams.replay import replay as run_replay
    from streams.settings import StreamsSettings

    if from_beginning == (from_ is not None):
        raise typer.BadParameter("give exactly one of --from-beginning and --from")
    try:
        options = ReplayOptions(
            topics=_split(topics),
            from_time=_instant(from_, "--from"),
            to_time=_instant(to, "--to"),
            commit_group=commit_group,
            batch_size=batch_size,
            notify_policy=notify,
        )
        with _replay_progress(enabled=not quiet and not as_json) as (on_plan, on_progress):
            summary = asyncio.run(
                run_replay(StreamsSettings(), options, on_progress, on_plan=on_plan)
            )
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    report = summary.as_dict()
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_replay(report)


def _rebuild_state(
    family: Annotated[
        list[ModelFamily] | None, typer.Option(help="families (default: both)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what PostgreSQL says; send nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as JSON on stdout")] = False,
) -> None:
    """Rebuild the workers' policy state from PostgreSQL (new deployment, lost changelog).

    The champion in model_versions gives version and data cutoff, model_retraining_log the
    last training; both go to the workers as PROMOTED signals. With no worker running, the
    policy_state mirror is written too, and the worker group's reading of the signal topic
    starts at its end where it had no offset. Counters need no rebuild: they are read from
    PostgreSQL against the data cutoff.
    """
    from streams.rebuild import rebuild_state as run_rebuild
    from streams.replay import ReplayError
    from streams.settings import StreamsSettings

    try:
        summary = asyncio.run(
            run_rebuild(StreamsSettings(), family or list(ModelFamily), dry_run=dry_run)
        )
    except ReplayError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    report = summary.as_dict()
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_rebuild(report)


def _rescore(
    version: Annotated[str, typer.Option(help="the model version to score with")],
    topic: Annotated[str, typer.Option(help="the topic the scores go to")],
    from_: Annotated[
        str | None, typer.Option("--from", help="range start (ISO 8601 / epoch ms)")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="range end, exclusive")] = None,
    by: Annotated[
        str, typer.Option(help="'ingested' (when stored: the rollback case) or 'event'")
    ] = "ingested",
    run_id: Annotated[
        str | None, typer.Option(help="scoring_run of every score (default: generated)")
    ] = None,
    store: Annotated[bool, typer.Option(help="also store the scores under the run id")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the summary as JSON on stdout")] = False,
) -> None:
    """Re-score stored expense lines / statements of a time range with a chosen version.

    Every score carries scoring_run = the run id (live scores carry null), so consumers of
    the topic tell a re-score from a live score.
    """
    from schemas.artifacts import ArtifactIntegrityError
    from streams.models import ModelRefused
    from streams.rescore import RescoreError, RescoreOptions, TimeField
    from streams.rescore import rescore as run_rescore
    from streams.settings import StreamsSettings

    try:
        options = RescoreOptions(
            version=version,
            topic=topic,
            from_time=_instant(from_, "--from"),
            to_time=_instant(to, "--to"),
            time_field=TimeField(by),
            run_id=run_id,
            store=store,
        )
        summary = asyncio.run(run_rescore(StreamsSettings(), options))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--by") from exc
    except (RescoreError, ModelRefused, ArtifactIntegrityError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(json.dumps(summary.as_dict()) if as_json else _rescore_line(summary.as_dict()))


@contextmanager
def _replay_progress(
    enabled: bool,
) -> Iterator[tuple[Callable[[Sequence[Any]], None], Callable[[int, int, int], None]]]:
    """A rich progress bar over offsets (done/total from the end offsets), rate and ETA."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.0f} msg/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not (enabled and console.is_terminal),
    )
    began = time.monotonic()
    with progress:
        task = progress.add_task("replay", total=None, rate=0.0)

        def on_plan(plans: Sequence[Any]) -> None:
            progress.update(task, total=sum(plan.size for plan in plans))

        def on_progress(done: int, total: int, consumed: int) -> None:
            rate = consumed / max(time.monotonic() - began, 1e-9)
            progress.update(task, completed=done, total=total, rate=rate)

        yield on_plan, on_progress


def _print_replay(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"replay from {report['from']} to {report['to']}")
    for column in ("topic", "consumed", "newly stored", "already present", "dead-lettered"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for name, t in report["topics"].items():
        table.add_row(
            name,
            str(t["consumed"]),
            str(t["newly_stored"]),
            str(t["already_present"]),
            str(t["dead_lettered"]),
        )
    table.add_row(
        "total",
        str(report["consumed"]),
        str(report["newly_stored"]),
        str(report["already_present"]),
        str(report["dead_lettered"]),
        style="bold",
    )
    console.print(table)
    console.print(
        f"{report['consumed']} messages from {report['partitions']} partitions in "
        f"{report['seconds']}s ({report['events_per_s']} msg/s)"
    )
    if report["skipped_before_from"]:
        console.print(f"skipped {report['skipped_before_from']} message(s) stamped before --from")
    if report["committed_group"]:
        console.print(f"consumer group {report['committed_group']} now starts where this stopped")


def _print_rebuild(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    table = Table(title=f"policy state for group {report['group']}")
    for column in ("family", "model", "data cutoff", "last trained", "signalled", "policy now"):
        table.add_column(column)
    for f in report["families"]:
        table.add_row(
            f["family"],
            f["model_version"] or "-",
            f["data_cutoff"] or "-",
            f["last_trained_at"] or "-",
            "yes" if f["signalled"] else "no",
            f["reason"] or "-",
        )
    console.print(table)
    if report["dry_run"]:
        console.print("dry run: nothing sent")
    elif report["worker_running"]:
        console.print("a worker is running: it takes the signals and writes policy_state itself")
    else:
        console.print(
            f"policy_state written; {report['signal_partitions_reset']} signal partition(s) "
            "positioned at their end for the worker group"
        )
    for f in report["families"]:
        if f["open_requests"]:
            console.print(
                f"[yellow]{f['family']}: requests without an outcome:[/] "
                + ", ".join(f["open_requests"])
                + " (the trainer answers them; a worker may ask again once the timeout passes)"
            )


def _rescore_line(report: dict[str, Any]) -> str:
    return (
        f"{report['scored']} {report['family']} scores by {report['version']} to "
        f"{report['topic']} (scoring_run={report['run_id']}, {report['flagged']} flagged, "
        f"{report['seconds']}s)"
    )
