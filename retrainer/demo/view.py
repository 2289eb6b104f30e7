"""The screen: a Live dashboard of the run on a terminal, plain timestamped lines anywhere else,
and the tables both show."""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from retrainer.demo.common import DELINQUENCY, EXPENSE_FRAUD, UPSTREAM
from retrainer.demo.observe import Snapshot


class View:
    """A Live dashboard refreshed twice a second on a terminal; plain lines anywhere else."""

    def __init__(self, console: Console, run_id: str, started: float) -> None:
        self.console = console
        self.run_id = run_id
        self.started = started
        self.interactive = console.is_terminal
        self.snapshot = Snapshot(taken_at=time.time())
        self.published: Counter[str] = Counter()
        self.phase_text = "starting"
        self.lines: list[Text] = []
        self.live: Live | None = None
        self.reloaded_at: dict[tuple[str, str], float] = {}
        """(family, version) → when the worker's /models first showed it scoring."""

    def elapsed(self, at: float | None = None) -> float:
        return (at if at is not None else time.time()) - self.started

    def log(self, text: str, style: str = "") -> None:
        stamp = f"[{self.elapsed():6.1f}s] "
        if self.interactive:
            self.lines.append(Text(stamp + text, style=style))
            del self.lines[:-12]
        else:
            self.console.print(stamp + text, markup=False, highlight=False, soft_wrap=True)

    def phase(self, text: str) -> None:
        self.phase_text = text
        self.log(f"── {text}", "bold")

    def __enter__(self) -> View:
        if self.interactive:
            self.live = Live(
                console=self.console,
                get_renderable=self.render,
                refresh_per_second=2,
                transient=False,
            )
            self.live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None

    def render(self) -> RenderableType:
        snap = self.snapshot
        header = Text.assemble(
            ("retrainer demo", "bold"),
            f" · run {self.run_id} · {self.elapsed():.0f} s · ",
            (self.phase_text, "bold cyan"),
        )
        lines = tuple(self.lines)
        return Group(
            Panel(header),
            events_table(self.published, snap),
            requests_table(snap, self.started, self.reloaded_at),
            scorers_table(snap),
            Panel(Group(*lines) if lines else Text(""), title="what happened"),
        )


def events_table(published: Counter[str], snap: Snapshot) -> Table:
    table = Table(title="events per topic", title_justify="left", expand=False)
    for column in ("topic", "published", "consumed", "stored (new)", "dead-lettered"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    for topic in UPSTREAM:
        table.add_row(
            topic,
            str(published.get(topic, 0)),
            f"{snap.consumed.get(topic, 0):.0f}",
            f"{snap.stored.get(topic, 0):.0f}",
            f"{snap.dead.get(topic, 0):.0f}",
        )
    return table


def requests_table(
    snap: Snapshot, started: float, reloaded_at: dict[tuple[str, str], float]
) -> Table:
    table = Table(
        title="retraining: requests, trainings, promotions, reloads", title_justify="left"
    )
    for column in ("at", "family", "reason", "by", "outcome", "metrics", "version", "scoring"):
        table.add_column(column, overflow="fold")
    for r in snap.requests:
        scoring = reloaded_at.get((r.family, r.version or ""))
        table.add_row(
            f"{r.requested_at - started:.1f}s",
            r.family,
            f"{r.reason}: {r.reason_text}",
            r.requested_by,
            r.status or "training…",
            r.metrics_text() if r.status else "",
            r.version or "",
            f"since {scoring - started:.1f}s" if scoring is not None else "",
        )
    return table


def scorers_table(snap: Snapshot) -> Table:
    table = Table(
        title="scorers (the worker's /models, the score tables) and policy", title_justify="left"
    )
    for column in ("family", "scores with", "scored, by model version", "policy now"):
        table.add_column(column, overflow="fold")
    for family in (DELINQUENCY, EXPENSE_FRAUD):
        scored = [
            f"{version}: {n} ({flagged / n:.0%} flagged)" if version else f"before a model: {n}"
            for (of, version), (n, flagged) in sorted(snap.scored.items())
            if of == family and n
        ]
        policy = snap.policy.get(family)
        table.add_row(
            family,
            snap.loaded.get(family) or "no model yet",
            "\n".join(scored),
            f"{policy.decision}: {policy.reason_text}" if policy else "",
        )
    return table
