"""What one demo run owns (id, names, ports, token, folder) and its side of the stack: the
database and topics made before the services start, removed after they stop."""

from __future__ import annotations

import asyncio
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retrainer.demo.common import DEMO_MIN_TRAINING_INTERVAL_S, DemoError
from retrainer.harness import (
    Scope,
    Service,
    Services,
    create_database,
    delete_groups,
    delete_topics,
    drop_database,
    free_port,
    with_database,
)


@dataclass(frozen=True)
class DemoRun:
    """Everything private to one run: its id, topic prefix, database, ports, token, folder."""

    run_id: str
    seed: int
    admin_dsn: str
    web_port: int
    trainer_port: int
    scope: Scope

    @classmethod
    def create(cls, bootstrap: str, admin_dsn: str, seed: int) -> DemoRun:
        run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        database = "retrainer_demo_" + run_id.replace("-", "_")
        scope = Scope(
            bootstrap=bootstrap,
            database_url=with_database(admin_dsn, database),
            prefix=f"demo-{run_id}",
            folder=Path(cache) / "retrainer" / "demo" / run_id,
            api_token=secrets.token_urlsafe(18),
            # Phase 3 fires an automatic expense-fraud trigger a minute after phase 2's
            # training: the default minimum interval (10 min) would hold it past the budget.
            settings={"RETRAINER_MIN_TRAINING_INTERVAL_S": str(DEMO_MIN_TRAINING_INTERVAL_S)},
        )
        return cls(run_id, seed, admin_dsn, free_port(), free_port(), scope)

    @property
    def bootstrap(self) -> str:
        return self.scope.bootstrap

    @property
    def prefix(self) -> str:
        """Starts every topic and consumer group name of the run."""
        return self.scope.prefix

    @property
    def folder(self) -> Path:
        return self.scope.folder

    @property
    def token(self) -> str:
        return self.scope.api_token

    @property
    def database(self) -> str:
        return self.database_url.rpartition("/")[2]

    @property
    def database_url(self) -> str:
        return self.scope.database_url

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start(self, services: Services, name: str) -> Service:
        """Start `retrainer <name>` (worker or trainer) with the run's environment."""
        port = self.web_port if name == "worker" else self.trainer_port
        env = self.scope.env(web_port=self.web_port, trainer_port=self.trainer_port)
        return services.start(name, [name], env, self.folder / f"{name}.log", port)


async def create_run_database(run: DemoRun) -> None:
    await create_database(run.admin_dsn, run.database)


def create_topics(run: DemoRun) -> int:
    """The worker's own topic setup (partitions, compaction, sizes), under the run's names.

    Returns the number of partitions each topic has.
    """
    from retrainer.harness.settings import streams_settings
    from streams.bootstrap import TopicSetupError, ensure_topics

    settings = streams_settings(run.scope)  # the defaults the worker runs with
    try:
        ensure_topics(settings)
    except TopicSetupError as exc:
        raise DemoError(str(exc)) from exc
    return settings.partitions


def cleanup(run: DemoRun) -> list[str]:
    """Drop the run's database, delete its topics and consumer groups; returns the problems."""
    import asyncpg
    from confluent_kafka import KafkaException

    problems: list[str] = []
    try:
        asyncio.run(drop_database(run.admin_dsn, run.database))
    except (OSError, asyncpg.PostgresError) as exc:
        problems.append(f"database {run.database} not dropped: {exc}")
    try:
        problems.extend(delete_topics(run.bootstrap, run.prefix))
        problems.extend(delete_groups(run.bootstrap, run.scope.groups))
    except KafkaException as exc:
        problems.append(f"topics {run.prefix}-* not deleted: {exc}")
    return problems
