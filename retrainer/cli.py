"""The `retrainer` command: the local stack, the database schema, and every service's commands."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from edge.tables import print_table
from retrainer.stack.errors import StackError
from schemas.diagnostics import DATABASE_SETTING, database_problem, mask_dsn, settings_problem


class _Commands(TyperGroup):
    """The root group: a RETRAINER_* variable that a settings class refuses, whichever command
    read it, ends in one line naming the variable (never its value) and exit code 2."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click; its Context is private
        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            problem = settings_problem(exc)
            if problem is None:
                raise
            raise _error(str(problem)) from exc


app = typer.Typer(
    name="retrainer",
    cls=_Commands,
    help="Keep fraud and delinquency models fresh from Kafka events.",
    no_args_is_help=True,
    add_completion=False,
)
stack_app = typer.Typer(help="The local stack: Apache Kafka (KRaft) and PostgreSQL, no Docker.")
app.add_typer(stack_app, name="stack")
db_app = typer.Typer(help="The PostgreSQL schema.")
app.add_typer(db_app, name="db")

err = Console(stderr=True)
out = Console()


def _fail(exc: StackError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    err.print(f"[yellow]what to do:[/] {escape(exc.hint)}", soft_wrap=True)
    return typer.Exit(code=2)


def _error(text: str) -> typer.Exit:
    """Print one line (never wrapped, never read as markup) and give the exit to raise."""
    err.print(f"[bold red]error:[/] {escape(text)}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"retrainer {version('retrainer')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Keep fraud and delinquency models fresh from Kafka events."""


@stack_app.command("up")
def stack_up(
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="do not apply the SQL migrations")
    ] = False,
) -> None:
    """Start the local broker and database, or reuse the ones already running; migrate."""
    from retrainer.stack import manager
    from retrainer.stack.settings import StackSettings

    settings = StackSettings()
    began = time.monotonic()
    try:
        with err.status("starting the stack…") as spinner:
            result = manager.up(settings, report=lambda text: spinner.update(text))
    except StackError as exc:
        raise _fail(exc) from exc
    if not no_migrate:
        _migrate(settings.dsn, DATABASE_SETTING)
    verbs = {True: "started", False: "already running"}
    err.print(
        f"PostgreSQL {verbs[result.postgres_started]} at {mask_dsn(settings.dsn)} · "
        f"Kafka {verbs[result.kafka_started]} at {settings.bootstrap} · "
        f"{time.monotonic() - began:.1f}s",
        soft_wrap=True,
    )


@stack_app.command("down")
def stack_down(
    purge: Annotated[
        bool, typer.Option(help="also delete the broker's and database's data")
    ] = False,
) -> None:
    """Stop the local broker and database; nothing of ours keeps running."""
    from retrainer.stack import manager
    from retrainer.stack.settings import StackSettings

    try:
        stopped = manager.down(StackSettings(), purge=purge)
    except StackError as exc:
        raise _fail(exc) from exc
    for name, was_running in stopped.items():
        err.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@stack_app.command("status")
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object on stdout")] = False,
) -> None:
    """Show where the broker and database are and whether they answer."""

    from retrainer.stack import manager
    from retrainer.stack.settings import StackSettings

    report = manager.status(StackSettings())
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        if not report["healthy"]:
            raise typer.Exit(code=1)
        return
    rows = []
    for name, svc in report["services"].items():
        rss = svc.get("rss_bytes")
        rows.append(
            (
                name,
                svc["state"],
                mask_dsn(svc.get("bootstrap") or svc.get("database_url", "")),
                str(svc.get("pid", "")),
                f"{rss / 2**20:.0f} MiB" if rss else "",
                svc.get("log", ""),
            )
        )
    for name, svc in report["services"].items():
        if svc.get("problem"):
            err.print(f"[yellow]{name}:[/] {escape(svc['problem'])}", soft_wrap=True)
    print_table(
        out, "retrainer stack", ("service", "state", "address", "pid", "memory", "log"), rows
    )
    if not report["healthy"]:
        raise typer.Exit(code=1)


def _migrate(dsn: str, setting: str) -> list[str]:
    """Apply pending migrations to `dsn`; a failure is one line naming `setting`."""
    import asyncio

    from edge.migrations import MigrationError, migrate

    try:
        applied = asyncio.run(migrate(dsn))
    except MigrationError as exc:
        raise _error(f"migrating {mask_dsn(dsn)} failed: {exc}") from exc
    except Exception as exc:
        problem = database_problem(exc, dsn, setting)
        if problem is None:
            raise
        raise _error(str(problem)) from exc
    names = [f"{m.version:04d}_{m.name}" for m in applied]
    if names:
        err.print(f"migrations applied: {', '.join(names)}", soft_wrap=True)
    else:
        err.print("database schema is up to date")
    return names


@db_app.command("migrate")
def db_migrate(
    database_url: Annotated[
        str | None, typer.Option(help="defaults to RETRAINER_DATABASE_URL or the local stack")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="what was applied, as one JSON object on stdout")
    ] = False,
) -> None:
    """Apply pending SQL migrations (each once, in order; a second run changes nothing)."""
    from retrainer.stack.settings import StackSettings

    dsn = database_url or StackSettings().dsn
    applied = _migrate(dsn, "--database-url" if database_url else DATABASE_SETTING)
    if as_json:
        sys.stdout.write(json.dumps({"database_url": mask_dsn(dsn), "applied": applied}) + "\n")


def _register_services() -> None:
    # Each service adds its own commands; they import their heavy dependencies lazily.
    import importlib

    for module in ("streams.cli", "trainer.cli", "retrainer.simulator.cli", "retrainer.demo"):
        try:
            registrar = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        registrar.register(app)


_register_services()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
