"""The `retrainer` command: the local stack now; workers, trainer and tools as they land."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from retrainer.stack.errors import StackError

app = typer.Typer(
    name="retrainer",
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
    err.print(f"[bold red]error:[/] {exc.message}")
    err.print(f"[yellow]what to do:[/] {exc.hint}")
    return typer.Exit(code=2)


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
        _migrate(settings.dsn)
    verbs = {True: "started", False: "already running"}
    err.print(
        f"PostgreSQL {verbs[result.postgres_started]} at {settings.dsn} · "
        f"Kafka {verbs[result.kafka_started]} at {settings.bootstrap} · "
        f"{time.monotonic() - began:.1f}s"
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
        return
    table = Table(title="retrainer stack", show_lines=False)
    for column in ("service", "state", "address", "pid", "memory", "log"):
        table.add_column(column)
    for name, svc in report["services"].items():
        rss = svc.get("rss_bytes")
        table.add_row(
            name,
            svc["state"],
            svc.get("bootstrap") or svc.get("database_url", ""),
            str(svc.get("pid", "")),
            f"{rss / 2**20:.0f} MiB" if rss else "",
            svc.get("log", ""),
        )
    out.print(table)
    if not report["healthy"]:
        raise typer.Exit(code=1)


def _migrate(dsn: str) -> None:
    import asyncio

    from retrainer.migrate import MigrationError, migrate

    try:
        applied = asyncio.run(migrate(dsn))
    except (MigrationError, OSError) as exc:
        err.print(f"[bold red]error:[/] migrating {dsn} failed: {exc}")
        raise typer.Exit(code=2) from exc
    if applied:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied)
        err.print(f"migrations applied: {names}")
    else:
        err.print("database schema is up to date")


@db_app.command("migrate")
def db_migrate(
    database_url: Annotated[
        str | None, typer.Option(help="defaults to RETRAINER_DATABASE_URL or the local stack")
    ] = None,
) -> None:
    """Apply pending SQL migrations (each once, in order; a second run changes nothing)."""
    from retrainer.stack.settings import StackSettings

    _migrate(database_url or StackSettings().dsn)


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
