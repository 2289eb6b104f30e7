"""The `retrainer publish` command: simulate upstream traffic, or backfill exports, into Kafka."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retrainer.simulator.formats import FileFormat

_err = Console(stderr=True)


def _end_time(text: str) -> datetime:
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"expected 'now' or an ISO 8601 time, got {text!r}") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _overrides(specs: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for spec in specs:
        default, sep, name = spec.partition("=")
        if not sep or not default or not name:
            raise typer.BadParameter(f"expected DEFAULT=NAME, got {spec!r}", param_hint="--topic")
        pairs[default] = name
    return pairs


def _check_sources(specs: list[str]) -> None:
    """Each --from-file names a topic and a readable file; else one line that says which."""
    from retrainer.simulator.errors import SimulatorError
    from retrainer.simulator.files import parse_source

    for spec in specs:
        if "=" not in spec and not Path(spec).exists():
            raise SimulatorError(f"--from-file {spec}: no such file")
        _, path = parse_source(spec)
        if not path.is_file():
            what = "a directory, not a file" if path.is_dir() else "no such file"
            raise SimulatorError(f"--from-file {spec}: {path} is {what}")


# The options of `retrainer publish`, named so that its signature reads as a list.
_Customers = Annotated[int, typer.Option(min=0, help="customers to simulate")]
_Sheets = Annotated[int, typer.Option(min=0, help="expense sheets to simulate")]
_StatementsPerCustomer = Annotated[int, typer.Option(min=0, help="monthly statements per customer")]
_Seed = Annotated[int, typer.Option(min=0, help="same seed, same bytes")]
_Rate = Annotated[
    float | None, typer.Option(min=0.001, help="messages per second (default: no limit)")
]
_BadRate = Annotated[float, typer.Option(min=0.0, max=1.0, help="fraction of malformed messages")]
_FraudRate = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="fraction of fraudulent expense lines")
]
_LabelFraction = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="fraction of expenses auditors label")
]
_DriftAt = Annotated[
    float | None,
    typer.Option(min=0.0, max=1.0, help="drift from this fraction of the timeline on"),
]
_End = Annotated[
    str | None,
    typer.Option(help="'now' or an ISO time the scenario ends by (default: fixed, 2026)"),
]
_Out = Annotated[
    Path | None, typer.Option("--out", help="write files to this directory, not Kafka")
]
_Format = Annotated[
    FileFormat, typer.Option("--format", help="file mode: sheets as jsonl or upload csv")
]
_FromFile = Annotated[
    list[str] | None,
    typer.Option(
        "--from-file",
        help="publish this export (PATH or TOPIC=PATH; repeatable) instead of simulating",
    ),
]
_Bootstrap = Annotated[
    str | None,
    typer.Option(help="Kafka bootstrap (default: $RETRAINER_KAFKA_BOOTSTRAP or local)"),
]
_TopicPrefix = Annotated[str, typer.Option(help="prepended to every topic name")]
_Topic = Annotated[
    list[str] | None,
    typer.Option("--topic", help="DEFAULT=NAME: publish a topic under NAME (repeatable)"),
]
_AsJson = Annotated[bool, typer.Option("--json", help="the summary as JSON on stdout")]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar")]


def publish(
    customers: _Customers = 500,
    sheets: _Sheets = 200,
    statements_per_customer: _StatementsPerCustomer = 12,
    seed: _Seed = 0,
    rate: _Rate = None,
    bad_rate: _BadRate = 0.0,
    fraud_rate: _FraudRate = 0.05,
    label_fraction: _LabelFraction = 0.3,
    drift_at: _DriftAt = None,
    end: _End = None,
    out: _Out = None,
    file_format: _Format = FileFormat.JSONL,
    from_file: _FromFile = None,
    bootstrap: _Bootstrap = None,
    topic_prefix: _TopicPrefix = "",
    topic: _Topic = None,
    as_json: _AsJson = False,
    quiet: _Quiet = False,
) -> None:
    """Publish simulated upstream events (or exported files) with known ground truth."""
    from retrainer.simulator.config import ScenarioConfig
    from retrainer.simulator.errors import SimulatorError
    from retrainer.simulator.publish import PublishOptions, default_bootstrap, run_publish

    try:
        _check_sources(from_file or [])
        scenario = ScenarioConfig.of(
            seed=seed,
            customers=customers,
            statements_per_customer=statements_per_customer,
            sheets=sheets,
            fraud_rate=fraud_rate,
            label_fraction=label_fraction,
            drift_at=drift_at,
            bad_rate=bad_rate,
        )
        if end is not None:
            from dataclasses import replace

            scenario = replace(scenario, start=scenario.latest_start(_end_time(end)))
        options = PublishOptions(
            scenario=scenario,
            bootstrap=bootstrap or default_bootstrap(),
            topic_prefix=topic_prefix,
            topic_overrides=_overrides(topic or []),
            rate=rate,
            out_dir=out,
            file_format=file_format,
            from_files=tuple(from_file or ()),
        )
        summary = run_publish(options, progress=not quiet and not as_json)
    except SimulatorError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(code=2) from exc
    if as_json:
        sys.stdout.write(json.dumps(summary.as_dict()) + "\n")
    else:
        _print_summary(summary.as_dict())
    if not summary.ok:
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Add the `publish` command to the retrainer CLI."""
    app.command("publish")(publish)


def _print_summary(summary: dict[str, object]) -> None:
    table = Table(title=f"published ({summary['mode']}) to {summary['destination']}")
    table.add_column("topic / file")
    table.add_column("messages", justify="right")
    sent = summary["sent"]
    assert isinstance(sent, dict)  # noqa: S101 - as_dict's shape, for the type checker
    for name, count in sorted(sent.items()):
        table.add_row(name, str(count))
    _err.print(table)
    _err.print(
        f"{summary['total_sent']} messages in {summary['seconds']}s ({summary['rate']} msg/s)"
    )
    for key, label, style in (
        ("malformed", "malformed on purpose", "cyan"),
        ("rejected", "rejected by the codec (not published)", "yellow"),
    ):
        counts = summary[key]
        if isinstance(counts, dict) and counts:
            detail = ", ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))
            _err.print(f"[{style}]{label}:[/] {detail}")
    for sample in summary["reject_samples"] or []:  # type: ignore[attr-defined]
        _err.print(f"  [yellow]{sample}[/]")
    if summary["skipped"]:
        _err.print(f"[cyan]skipped[/] {summary['skipped']} malformed message(s) a file cannot hold")
    for warning in summary["warnings"] or []:  # type: ignore[attr-defined]
        _err.print(f"[yellow]kafka:[/] {warning}")
    if summary["total_sent"] == 0 and summary["total_rejected"]:
        _err.print("[bold red]every record was refused: nothing was published[/]")
    if summary["delivery_failures"]:
        _err.print(f"[bold red]delivery failures:[/] {summary['delivery_failures']}")
        for sample in summary["failure_samples"] or []:  # type: ignore[attr-defined]
            _err.print(f"  [red]{sample}[/]")
