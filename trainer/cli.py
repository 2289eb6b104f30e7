"""The trainer's commands for the `retrainer` CLI: the service, `check`, and `models …`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from schemas import diagnostics
from schemas.families import ModelFamily
from trainer.errors import TrainerError

if TYPE_CHECKING:
    from trainer.admin import CheckReport
    from trainer.registry import VersionRecord
    from trainer.service import TrainingDetail
    from trainer.settings import TrainerSettings

err = Console(stderr=True)
out = Console()

models_app = typer.Typer(help="The model registry: list, show, report, promote, roll back.")


def _settings() -> TrainerSettings:
    # Imported when a command runs: `retrainer --help` need not build the settings classes.
    from trainer.settings import TrainerSettings

    return TrainerSettings()


def _fail(exc: Exception | diagnostics.Problem, dsn: str | None = None) -> typer.Exit:
    # A database failure is told as what the operator can fix (setting named, password masked).
    problem = diagnostics.database_problem(exc, dsn) if isinstance(exc, BaseException) else exc
    # One line whatever the terminal's width, and the message is text, never markup.
    err.print(f"[bold red]error:[/] {escape(str(problem or exc))}", soft_wrap=True)
    return typer.Exit(code=2)


def _database_problem(settings: TrainerSettings) -> diagnostics.Problem | None:
    from functools import partial

    import asyncpg

    connect = partial(asyncpg.connect, timeout=10)
    return asyncio.run(diagnostics.probe_database(settings.dsn, connect))


def _kafka_problem(settings: TrainerSettings, timeout: float = 10.0) -> diagnostics.Problem | None:
    """One metadata request with the trainer's connection settings."""
    from edge.health import kafka_problem

    return kafka_problem(settings.kafka, timeout)


def trainer() -> None:
    """Run the trainer service: consume retrain-requested, train, publish model-updated."""
    from edge.logs import LogSettings, configure

    settings = _settings()
    logs = LogSettings()
    # Refused at once, in one line each: a taken port, a wrong database URL, no broker. A
    # database that is only unreachable is waited for (the service retries while it starts).
    port = diagnostics.port_problem(
        "0.0.0.0",  # noqa: S104 - where trainer.metrics serves
        settings.trainer_metrics_port,
        "RETRAINER_TRAINER_METRICS_PORT",
    )
    database = _database_problem(settings)
    for problem in (port, None if database and database.transient else database):
        if problem is not None:
            raise _fail(problem)
    kafka = _kafka_problem(settings)
    if kafka is not None:
        raise _fail(kafka)
    from trainer.bootstrap import serve

    configure(logs)
    err.print(
        f"trainer: {settings.topics.retrain_requested} → {settings.topics.model_updated}, "
        f"{settings.topics.training_outcome} · group {settings.trainer_group_id} · "
        f"metrics on :{settings.trainer_metrics_port}",
        soft_wrap=True,
    )
    try:
        asyncio.run(serve(settings))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def check(
    force: Annotated[
        bool, typer.Option("--force", help="retrain even below the threshold")
    ] = False,
    days: Annotated[
        int | None,
        typer.Option("--days", help="count only customers first seen in the last N days"),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="the report as one JSON object on stdout")
    ] = False,
) -> None:
    """Check for new customers and retrain the delinquency model when they reach the threshold."""
    settings = _settings()
    problem = _database_problem(settings)
    if problem is not None:
        raise _fail(problem)
    report = _run_check(settings, force=force, days=days, spinner=not as_json)
    if as_json:
        sys.stdout.write(json.dumps(_check_document(report)) + "\n")
    else:
        _print_check(report, settings, days)
    if report.result is not None and report.result.outcome.status.value == "failed":
        raise typer.Exit(code=1)


def _run_check(
    settings: TrainerSettings, *, force: bool, days: int | None, spinner: bool
) -> CheckReport:
    """Run the check (and the retraining it calls for), its stage shown beside a spinner."""
    from trainer import admin

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not spinner,
    ) as bar:
        task = bar.add_task("counting new customers", total=None)
        try:
            return asyncio.run(
                admin.check(
                    settings,
                    force=force,
                    days=days,
                    progress=lambda stage: bar.update(task, description=stage),
                )
            )
        except (TrainerError, OSError) as exc:
            raise _fail(exc, settings.dsn) from exc


def _print_check(report: CheckReport, settings: TrainerSettings, days: int | None) -> None:
    """The check's report for a terminal: the count, the decision, and what became of a model."""
    window = f" (first seen in the last {days} days)" if days is not None else ""
    out.print("[bold]Retraining check — delinquency[/]")
    out.print(f"  New customers: {report.new_customers}{window}")
    out.print(f"  Threshold: {report.threshold}")
    needed = "yes" if report.triggers else "no"
    out.print(f"  Retraining needed: {needed}{' (forced)' if report.forced else ''}")
    result = report.result
    if result is None:
        out.print("  No retraining.")
        return
    if result.detail is not None:
        _print_training(result.detail, settings)
    outcome = result.outcome
    where = {
        "promoted": "promoted to champion",
        "rejected": "kept in the registry as rejected",
        "skipped": "not trained",
        "failed": "failed",
    }[outcome.status.value]
    out.print(f"  Model: {where} — {outcome.reason}")
    if outcome.version:
        out.print(f"  Version: {outcome.version}")
    if report.announced:
        out.print(f"  Announced on {settings.topics.model_updated}")
    if report.announce_error:
        out.print(f"  [yellow]Not announced on Kafka:[/] {report.announce_error}")
    out.print(f"  Duration: {outcome.duration_seconds:.2f} s")


def _print_training(detail: TrainingDetail, settings: TrainerSettings) -> None:
    """What a training saw and measured: the selection, the data, its split and the metrics."""
    data, summary = detail.training_set, detail.training_set.summary
    if detail.selection is not None:
        sel = detail.selection
        out.print(
            f"  Selected customers: {len(sel.customer_ids)} "
            f"({sel.new_selected} new, {sel.existing_selected} existing; "
            f"cap {settings.max_customers or 'none'}"
            + (f", {sel.topped_up} added to reach the minimum data" if sel.topped_up else "")
            + ")"
        )
    out.print(
        f"  Observations loaded: {int(summary.get('statements_loaded', 0))} statements, "
        f"{int(summary.get('observations', 0))} labelled"
    )
    out.print(f"  Positive rate: {_pct(summary.get('positive_rate', 0.0))}")
    out.print(
        f"  Train: {len(data.train_rows)} (positive rate "
        f"{_pct(summary.get('train_positive_rate', 0.0))}) · Test: {len(data.holdout_rows)} "
        f"(positive rate {_pct(summary.get('holdout_positive_rate', 0.0))})"
    )
    m = detail.metrics
    out.print(
        "  "
        + " · ".join(
            f"{name.upper() if name == 'auc' else name} {m[name]:.3f}"
            for name in ("auc", "precision", "recall", "f1")
            if name in m
        )
    )
    if "f1" in m and "threshold" in m:
        yardsticks = [f"flagged from {m['threshold']:.3f}"]
        for name, label in (
            ("f1_at_0_5", "F1 at 0.5"),
            ("best_f1", "best F1 in hindsight"),
            ("past_due_rule_f1", "past-due rule F1"),
        ):
            if name in m:
                yardsticks.append(f"{label} {m[name]:.3f}")
        out.print("  " + " · ".join(yardsticks))
    if detail.decision.holdout_gap is not None:
        out.print(
            f"  [yellow]Warning:[/] {escape(detail.decision.holdout_gap)}: these metrics "
            "are no evidence of the model's quality"
        )


def _check_document(report: CheckReport) -> dict[str, Any]:
    """`check`'s report for scripts: the same facts as the text, as JSON."""
    result = report.result
    outcome = result.outcome.model_dump(mode="json") if result is not None else None
    return {
        "family": ModelFamily.DELINQUENCY.value,
        "new_customers": report.new_customers,
        "threshold": report.threshold,
        "days": report.days,
        "retraining_needed": report.triggers,
        "forced": report.forced,
        "outcome": outcome,
        "announced": report.announced,
        "announce_error": report.announce_error,
    }


def _record_document(r: VersionRecord) -> dict[str, Any]:
    """One registry version for scripts (`models list --json`, `models show`)."""
    return {
        "version": r.version,
        "family": r.family.value,
        "status": r.status,
        "status_reason": r.status_reason,
        "metrics": dict(r.metrics),
        "params": dict(r.params),
        "samples": r.samples,
        "data_start": r.data_start.isoformat() if r.data_start else None,
        "data_cutoff": r.data_cutoff.isoformat(),
        "code_version": r.code_version,
        "request_id": str(r.request_id) if r.request_id else None,
        "created_at": r.created_at.isoformat(),
        "promoted_at": r.promoted_at.isoformat() if r.promoted_at else None,
    }


@models_app.command("list")
def models_list(
    family: Annotated[ModelFamily | None, typer.Option(help="only this family")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="one JSON array of versions on stdout")
    ] = False,
) -> None:
    """Every registered version, newest first, with its status and headline metrics."""
    from trainer import admin

    settings = _settings()
    try:
        records = asyncio.run(admin.versions(settings, family, limit))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc
    if as_json:
        sys.stdout.write(json.dumps([_record_document(r) for r in records]) + "\n")
        return
    from edge.tables import print_table

    columns = ("version", "family", "status", "AUC", "F1", "samples", "created", "promoted")
    rows = []
    for r in records:
        auc, f1 = r.metrics.get("auc"), r.metrics.get("f1")
        rows.append(
            (
                r.version,
                r.family.value,
                r.status,
                f"{auc:.3f}" if auc is not None else "",
                f"{f1:.3f}" if f1 is not None else "",
                str(r.samples),
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                f"{r.promoted_at:%Y-%m-%d %H:%M:%S}" if r.promoted_at else "",
            )
        )
    print_table(out, "model registry", columns, rows, no_wrap=("version", "family", "status"))


@models_app.command("show")
def models_show(
    version: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="one compact JSON object on stdout (no colours)")
    ] = False,
) -> None:
    """One version: status and reason, metrics, parameters, data window, artifacts (verified)."""
    from trainer import admin

    settings = _settings()
    try:
        shown = asyncio.run(admin.show(settings, version))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc
    r = shown.record
    document = {
        **_record_document(r),
        "artifacts": [
            {
                "artifact_id": a.artifact_id,
                "role": a.role,
                "format": a.format,
                "sha256": a.sha256,
                "size_bytes": a.size_bytes,
                "sha256_verified": shown.verified.get(a.name, False),
            }
            for a in r.artifacts
        ],
    }
    if as_json:
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        out.print_json(json.dumps(document))
    if not all(shown.verified.values()):
        raise typer.Exit(code=1)


@models_app.command("report")
def models_report(
    version: str,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="write the page to this file (default: stdout)", dir_okay=False),
    ] = None,
) -> None:
    """Save VERSION's report: one self-contained HTML page (plots, figures, gate decision)."""
    from trainer import admin

    settings = _settings()
    try:
        page = asyncio.run(admin.report(settings, version))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc
    if out is None:
        sys.stdout.write(page)
        return
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise _fail(RuntimeError(f"cannot write {out}: {exc.strerror or exc}")) from exc
    err.print(f"{version}: report written to {escape(str(out))}", soft_wrap=True)


@models_app.command("promote")
def models_promote(
    version: str,
    force: Annotated[bool, typer.Option("--force", help="also promote a rejected version")] = False,
) -> None:
    """Make VERSION its family's champion and publish it as model-updated.

    The version's artifacts are verified first; the registry changes only once model-updated is
    acknowledged by Kafka. Promoting the champion again re-publishes it.
    """
    from trainer import admin

    settings = _settings()
    try:
        change = asyncio.run(admin.promote(settings, version, force=force))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc
    record = change.champion
    if not change.changed:
        out.print(
            f"{record.family.value}: {record.version} is already champion (published again)",
            soft_wrap=True,
        )
        return
    replaced = f", replacing {change.replaced.version}" if change.replaced else ""
    out.print(
        f"{record.family.value}: champion is now {record.version}{replaced} (published)",
        soft_wrap=True,
    )


@models_app.command("rollback")
def models_rollback(
    family: ModelFamily,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="an earlier champion of FAMILY to go back to (default: the last)"
        ),
    ] = None,
) -> None:
    """Retire FAMILY's champion, restore an earlier one and publish it as model-updated.

    The earlier version's artifacts are verified first; the registry changes only once
    model-updated is acknowledged by Kafka.
    """
    from trainer import admin

    settings = _settings()
    try:
        change = asyncio.run(admin.rollback(settings, family, to=to))
    except TrainerError as exc:
        raise _fail(exc, settings.dsn) from exc
    record = change.champion
    replaced = f" from {change.replaced.version}" if change.replaced else ""
    out.print(
        f"{record.family.value}: rolled back{replaced}; champion is now {record.version} "
        "(published)",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add `trainer`, `check` and the `models` sub-app to the `retrainer` command."""
    app.command("trainer")(trainer)
    app.command("check")(check)
    app.add_typer(models_app, name="models")
