"""What a benchmark receives (the stack's addresses, scratch space) and what it yields (figures).

Benchmarks that run the services take their processes, database and topics from the service
harness, through the helpers here."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from retrainer.harness import create_database, drop_database
from tests.conftest import Stack
from tests.services import Workers, delete_prefixed_topics


@dataclass(frozen=True)
class Figure:
    """One measured number, printed as `BENCH <name> <value> <unit>`."""

    name: str
    value: float
    unit: str


@dataclass
class BenchContext:
    """The running stack and a scratch area; topics made here are deleted after the run."""

    bootstrap: str
    dsn: str
    workdir: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _topics: list[str] = field(default_factory=list)

    def topic(self, name: str, partitions: int = 4) -> str:
        """Create a topic unique to this run and return its full name."""
        full = f"bench-{self.run_id}-{name}"
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        futures = admin.create_topics([NewTopic(full, partitions, 1)])
        for future in futures.values():
            future.result(timeout=30)
        self._topics.append(full)
        return full

    def cleanup(self) -> None:
        if not self._topics:
            return
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.delete_topics(self._topics).values():
            future.result(timeout=30)
        self._topics.clear()

    @contextmanager
    def database(self, name: str) -> Iterator[str]:
        """A migrated database `bench_<name>_<random>` for one benchmark, dropped afterwards."""
        database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
        url = asyncio.run(create_database(self.dsn, database))
        try:
            yield url
        finally:
            asyncio.run(drop_database(self.dsn, database))

    @contextmanager
    def services(self, name: str, database_url: str) -> Iterator[Workers]:
        """Topics (`bench-<run>-<name>-…`) made as a worker makes them, for services on
        `database_url`; every process stopped and every topic deleted afterwards."""
        logs = self.workdir / name
        logs.mkdir(parents=True, exist_ok=True)
        stack = Stack(self.bootstrap, self.dsn, self.run_id)
        workers = Workers(stack, database_url, logs, prefix=f"bench-{self.run_id}-{name}")
        try:
            workers.create_topics()
            yield workers
        finally:
            workers.stop_all()
            delete_prefixed_topics(self.bootstrap, workers.prefix)


BenchResult = Iterator[Figure]
