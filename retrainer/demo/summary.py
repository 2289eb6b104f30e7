"""The summary printed at the end: each trigger's timeline and where to look next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from retrainer.demo.common import POLL_S, demo_policy
from retrainer.demo.view import events_table, scorers_table

if TYPE_CHECKING:
    from retrainer.demo.observe import Request
    from retrainer.demo.phases import Demo, Trigger
    from retrainer.demo.setup import DemoRun

SQL_LOG = (
    "SELECT retrain_id, retrain_date, family, trigger_reason, status, model_version, "
    "auc_score, f1_score, samples_trained, training_duration_seconds "
    "FROM model_retraining_log ORDER BY retrain_id;"
)


def _seconds(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{end - start:.1f} s"


def summary_table(triggers: Sequence[Trigger]) -> Table:
    table = Table(title="triggers: from the threshold-crossing event to the scorers")
    table.add_column("trigger", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("reason", max_width=36)
    table.add_column("outcome", no_wrap=True)
    table.add_column("version", no_wrap=True)
    for column in ("event→request", "→promoted", "→scoring", "event→scoring"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in triggers:
        r = t.request
        if r is None:
            table.add_row(t.kind, t.family, "—", "—", "—", "—", "—", "—", "—")
            continue
        table.add_row(
            t.kind,
            t.family,
            r.reason_text,
            r.status or "—",
            r.version or "—",
            _seconds(t.event_at, r.requested_at),
            _seconds(r.requested_at, r.promoted_at),
            _seconds(r.promoted_at, t.reload_at),
            _seconds(t.event_at, t.reload_at),
        )
    return table


def quality_table(requests: Sequence[Request]) -> Table | None:
    """Each trained version's holdout figures at its chosen threshold, beside the yardsticks:
    the F1 from flagging at 0.5, the best F1 any threshold reaches in hindsight, and (for
    delinquency) the F1 of flagging everyone past due."""
    trained = [r for r in requests if r.status in ("promoted", "rejected") and "f1" in r.metrics]
    if not trained:
        return None
    table = Table(title="model quality on each version's holdout (F1 at the chosen threshold)")
    for column in ("family", "version", "outcome", "threshold", "AUC", "F1"):
        table.add_column(column, no_wrap=True)
    for column in ("F1 at 0.5", "best F1 (hindsight)", "past-due rule F1"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in trained:
        m = r.metrics
        table.add_row(
            r.family,
            r.version or "—",
            r.status or "—",
            _figure(m, "threshold"),
            _figure(m, "auc"),
            _figure(m, "f1"),
            _figure(m, "f1_at_0_5"),
            _figure(m, "best_f1"),
            _figure(m, "past_due_rule_f1"),
        )
    return table


def _figure(metrics: dict[str, float], name: str) -> str:
    return f"{metrics[name]:.3f}" if name in metrics else "—"


def print_summary(console: Console, run: DemoRun, demo: Demo | None, keep: bool) -> None:
    """What the run showed (as far as it got), then where to look next."""
    if demo is not None:
        _print_results(console, demo)
    _print_where(console, run, keep)


def _print_results(console: Console, demo: Demo) -> None:
    snap = demo.observer.latest
    policy = demo_policy()
    console.print(events_table(demo.view.published, snap))
    console.print(scorers_table(snap))
    console.print(summary_table(demo.triggers))
    quality = quality_table(snap.requests)
    if quality is not None:
        console.print(quality)
    console.print(
        "event = the moment the broker acknowledged the message that crossed the threshold "
        f"(customer no. {policy.new_customers_threshold}, sheet no. "
        f"{policy.new_sheets_threshold}, the sheet bringing the lines to "
        f"{policy.anomaly_min_sample}; for the manual trigger the API's 202); "
        "scoring = the first poll (every "
        f"{POLL_S:.2f} s) on which the worker's GET /models shows the new version.",
        highlight=False,
    )
    promoted = [t for t in demo.triggers if t.request and t.request.status == "promoted"]
    reloaded = [t for t in promoted if t.reload_at is not None]
    console.print(
        f"{len(demo.triggers)} trigger kinds fired · {len(promoted)} promotions · "
        f"{len(reloaded)} reloads · dead-lettered {sum(snap.dead.values()):.0f}",
        highlight=False,
    )


def _print_where(console: Console, run: DemoRun, keep: bool) -> None:
    console.print("[bold]where to look next[/]")
    state = "still running (--keep)" if keep else "stopped; rerun with --keep to explore"
    console.print(f"  worker ({state}):", highlight=False)
    console.print(f"    status   {run.web}/retraining/status?family=delinquency", highlight=False)
    console.print(f"    status   {run.web}/retraining/status?family=expense-fraud", highlight=False)
    console.print(f"    models   {run.web}/models", highlight=False)
    console.print(f"    metrics  {run.web}/metrics", highlight=False)
    console.print(
        f"    trainer metrics http://127.0.0.1:{run.trainer_port}/metrics", highlight=False
    )
    if keep:
        console.print(
            f"    trigger  curl -X POST -H 'Authorization: Bearer {run.token}' "
            "-H 'Content-Type: application/json' "
            f'-d \'{{"family": "expense-fraud"}}\' {run.web}/retraining/trigger',
            highlight=False,
        )
    where = run.database_url if keep else f"{run.database_url} (dropped; kept with --keep)"
    console.print(f"  database: {where}", highlight=False)
    console.print(
        f"  the retraining log: psql '{run.database_url}' -c \"{SQL_LOG}\"", highlight=False
    )
    console.print(f"  logs: {run.folder}/worker.log, {run.folder}/trainer.log", highlight=False)
    console.print(
        "  not shown: the 24 h interval trigger (RETRAINER_INTERVAL_HOURS) — it needs a day.",
        highlight=False,
    )
