"""The trainer's commands for the `retrainer` CLI: the service, `check`, and `models …`."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas.base import ModelFamily
from trainer.errors import TrainerError
from trainer.settings import TrainerSettings

err = Console(stderr=True)
out = Console()

models_app = typer.Typer(help="The model registry: list, show, promote, roll back.")


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


def trainer() -> None:
    """Run the trainer service: consume retrain-requested, train, publish model-updated."""
    from trainer.bootstrap import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = TrainerSettings()
    err.print(
        f"trainer: {settings.topic_retrain_requested} → {settings.topic_model_updated}, "
        f"{settings.topic_training_outcome} · group {settings.trainer_group_id} · "
        f"metrics on :{settings.trainer_metrics_port}"
    )
    try:
        asyncio.run(serve(settings))
    except TrainerError as exc:
        raise _fail(exc) from exc


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
) -> None:
    """Check for new customers and retrain the delinquency model when they reach the threshold."""
    from trainer import admin

    settings = TrainerSettings()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task("counting new customers", total=None)
        try:
            report = asyncio.run(
                admin.check(
                    settings,
                    force=force,
                    days=days,
                    progress=lambda stage: bar.update(task, description=stage),
                )
            )
        except (TrainerError, OSError) as exc:
            raise _fail(exc) from exc
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
    detail = result.detail
    if detail is not None:
        data, summary = detail.training_set, detail.training_set.summary
        if detail.selection is not None:
            sel = detail.selection
            out.print(
                f"  Selected customers: {len(sel.customer_ids)} "
                f"({sel.new_selected} new, {sel.existing_selected} existing; "
                f"cap {settings.max_customers or 'none'})"
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
        out.print(f"  Announced on {settings.topic_model_updated}")
    if report.announce_error:
        out.print(f"  [yellow]Not announced on Kafka:[/] {report.announce_error}")
    out.print(f"  Duration: {outcome.duration_seconds:.2f} s")
    if outcome.status.value == "failed":
        raise typer.Exit(code=1)


@models_app.command("list")
def models_list(
    family: Annotated[ModelFamily | None, typer.Option(help="only this family")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
) -> None:
    """Every registered version, newest first, with its status and headline metrics."""
    from trainer import admin

    try:
        records = asyncio.run(admin.versions(TrainerSettings(), family, limit))
    except (TrainerError, OSError) as exc:
        raise _fail(exc) from exc
    table = Table(title="model registry")
    for column in ("version", "family", "status", "AUC", "F1", "samples", "created", "promoted"):
        table.add_column(column, no_wrap=column in ("version", "family", "status"))
    for r in records:
        auc, f1 = r.metrics.get("auc"), r.metrics.get("f1")
        table.add_row(
            r.version,
            r.family.value,
            r.status,
            f"{auc:.3f}" if auc is not None else "",
            f"{f1:.3f}" if f1 is not None else "",
            str(r.samples),
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            f"{r.promoted_at:%Y-%m-%d %H:%M:%S}" if r.promoted_at else "",
        )
    out.print(table)


@models_app.command("show")
def models_show(version: str) -> None:
    """One version: status and reason, metrics, parameters, data window, artifacts (verified)."""
    from trainer import admin

    try:
        shown = asyncio.run(admin.show(TrainerSettings(), version))
    except (TrainerError, OSError) as exc:
        raise _fail(exc) from exc
    r = shown.record
    document = {
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
        "artifacts": [
            {
                "artifact_id": a.artifact_id,
                "role": a.role,
                "format": a.format,
                "sha256": a.sha256,
                "size_bytes": a.size_bytes,
                "sha256_verified": shown.verified.get(a.role, False),
            }
            for a in r.artifacts
        ],
    }
    out.print_json(json.dumps(document))
    if not all(shown.verified.values()):
        raise typer.Exit(code=1)


@models_app.command("promote")
def models_promote(
    version: str,
    force: Annotated[bool, typer.Option("--force", help="also promote a rejected version")] = False,
) -> None:
    """Make VERSION its family's champion and publish it as model-updated."""
    from trainer import admin

    try:
        record = asyncio.run(admin.promote(TrainerSettings(), version, force=force))
    except (TrainerError, OSError) as exc:
        raise _fail(exc) from exc
    out.print(f"{record.family.value}: champion is now {record.version} (published)")


@models_app.command("rollback")
def models_rollback(family: ModelFamily) -> None:
    """Retire FAMILY's champion, restore the previous one and publish it as model-updated."""
    from trainer import admin

    try:
        record = asyncio.run(admin.rollback(TrainerSettings(), family))
    except (TrainerError, OSError) as exc:
        raise _fail(exc) from exc
    out.print(f"{record.family.value}: rolled back; champion is now {record.version} (published)")


def register(app: typer.Typer) -> None:
    """Add `trainer`, `check` and the `models` sub-app to the `retrainer` command."""
    app.command("trainer")(trainer)
    app.command("check")(check)
    app.add_typer(models_app, name="models")
