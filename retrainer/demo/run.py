"""The `retrainer demo` command's run: set up, start the services, play the phases, clean up and
print the summary, within the budget, on every way out (Ctrl-C and SIGTERM included)."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass

from rich.console import Console

from retrainer.demo.common import DELINQUENCY, EXPENSE_FRAUD, POLL_S, DemoError
from retrainer.demo.observe import Observer, Snapshot
from retrainer.demo.phases import Demo
from retrainer.demo.setup import DemoRun, cleanup, create_run_database, create_topics
from retrainer.demo.summary import print_summary
from retrainer.demo.traffic import build_traffic
from retrainer.demo.view import View
from retrainer.harness import TOPICS, Service, ServiceError, Services

BUDGET_S = 180.0
"""What the demo promises: everything, setup and cleanup included, within three minutes."""
STARTUP_S = 90.0
STOP_GRACE_S = 20.0


async def _wait_ready(observer: Observer, trainer: Service) -> None:
    def worker_ready(snap: Snapshot) -> bool:
        # The policy agent has run its first step for both families (so the worker holds its
        # partitions), and the model follower has read model-updated to its end.
        return snap.follower_ready and {DELINQUENCY, EXPENSE_FRAUD} <= set(snap.policy)

    await observer.until(worker_ready, STARTUP_S, "the worker to join its group and answer")
    deadline = time.monotonic() + STARTUP_S
    while not await asyncio.to_thread(trainer.answers):
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {STARTUP_S:.0f} s waiting for the trainer")
        await asyncio.sleep(POLL_S)


@dataclass
class DemoProgress:
    """What the run got to, kept outside the event loop so a failed run can still report it."""

    demo: Demo | None = None
    interrupted: bool = False


async def _main(run: DemoRun, view: View, services: Services, progress: DemoProgress) -> None:
    import asyncpg

    view.phase("setting up: database, topics, worker, trainer")
    await create_run_database(run)
    view.log(f"database {run.database} created and migrated")
    partitions = await asyncio.to_thread(create_topics, run)
    view.log(f"topics {run.prefix}-* created ({len(TOPICS)}, {partitions} partitions each)")
    traffic = await asyncio.to_thread(build_traffic, run.seed, run.run_id)
    worker = run.start(services, "worker")
    trainer = run.start(services, "trainer")
    view.log(f"worker pid {worker.pid} (:{run.web_port}), trainer pid {trainer.pid}")
    conn = await asyncpg.connect(run.database_url, timeout=15)
    observer = Observer(run.web, conn, services, view)
    demo = progress.demo = Demo(run, view, observer, traffic)
    observer.start()
    try:
        await _wait_ready(observer, trainer)
        view.log("worker and trainer ready")
        await demo.new_customers()
        await demo.new_sheets()
        await demo.drift()
        await demo.manual()
        view.phase("done")
    finally:
        await observer.stop()
        await conn.close()


async def _guarded(run: DemoRun, view: View, services: Services, progress: DemoProgress) -> None:
    """Run the demo, turning SIGTERM into a cancellation so that cleanup still happens."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(_main(run, view, services, progress))
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_demo(keep: bool, seed: int, console: Console) -> int:
    """Run the demo; returns the exit code (0 when every phase did what it should)."""
    import asyncpg
    import psutil

    from retrainer.stack import manager
    from retrainer.stack.errors import StackError
    from retrainer.stack.settings import StackSettings

    # From the moment the command started: the CLI's own imports count too.
    started = psutil.Process().create_time()
    settings = StackSettings()
    try:
        manager.up(settings)
    except StackError as exc:
        console.print(f"[bold red]error:[/] the local stack is not available: {exc.message}")
        console.print(f"[yellow]what to do:[/] {exc.hint}")
        return 2
    run = DemoRun.create(settings.bootstrap, settings.dsn, seed)
    run.folder.mkdir(parents=True, exist_ok=True)
    console.print(f"run {run.run_id} · seed {seed} · logs in {run.folder}", highlight=False)
    services = Services()
    view = View(console, run.run_id, started)
    progress = DemoProgress()
    failure: str | None = None
    code = 0
    try:
        with view:
            asyncio.run(_guarded(run, view, services, progress))
    except (DemoError, ServiceError) as exc:
        failure, code = str(exc), 1
    except (OSError, asyncpg.PostgresError) as exc:
        failure, code = f"{type(exc).__name__}: {exc}", 1
    except KeyboardInterrupt:
        failure, code, progress.interrupted = "interrupted (Ctrl-C)", 130, True
    except asyncio.CancelledError:
        failure, code, progress.interrupted = "terminated (SIGTERM)", 143, True
    finally:
        # --keep leaves everything for a look around, but an interrupted run is never kept.
        if not keep or progress.interrupted:
            for note in services.stop_all(STOP_GRACE_S):
                console.print(f"stopped: {note}", highlight=False)
            for problem in cleanup(run):
                console.print(f"[yellow]cleanup:[/] {problem}", highlight=False)
    kept = keep and not progress.interrupted
    print_summary(console, run, progress.demo, kept)
    if kept:
        groups = " ".join(f"-{s.pid}" for s in services.running())
        console.print(
            f"  kept: worker and trainer (stop them: kill -TERM -- {groups}), "
            f"topics {run.prefix}-*, database {run.database}",
            highlight=False,
        )
    wall = time.time() - started
    verdict = "within" if wall < BUDGET_S else "OVER"
    console.print(
        f"wall time {wall:.1f} s ({verdict} the {BUDGET_S:.0f} s budget)", highlight=False
    )
    if failure is not None:
        console.print(f"[bold red]demo failed:[/] {failure}", highlight=False)
    return code
