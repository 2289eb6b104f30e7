"""What a benchmark receives (the stack's addresses, scratch space) and what it yields (figures)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic


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


BenchResult = Iterator[Figure]
