"""`retrainer demo`: the whole service on the local stack, driven through every retraining trigger.

A worker and a trainer run as processes on topics and a database private to the run (started
with the service harness); simulated upstream traffic arrives in phases that each fire one
trigger, and the screen shows what follows. The modules: `setup` (what the run owns), `traffic`
(the simulated messages), `observe` (polling what the services show), `view` (the screen),
`phases` (the four triggers), `summary` (the end), `run` (the command's flow).
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the `demo` command to the retrainer CLI."""

    @app.command("demo")
    def demo(
        keep: Annotated[
            bool,
            typer.Option("--keep", help="leave the worker, trainer, topics and database running"),
        ] = False,
        seed: Annotated[int, typer.Option(min=0, help="simulator seed: same seed, same data")] = 0,
    ) -> None:
        """Show the service end to end: every retraining trigger, live, in under 3 minutes."""
        from rich.console import Console

        from retrainer.demo.run import run_demo

        console = Console() if sys.stdout.isatty() else Console(width=170)
        code = run_demo(keep, seed, console)
        if code:
            raise typer.Exit(code=code)
