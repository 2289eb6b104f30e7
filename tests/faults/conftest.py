"""Faults on purpose: a private PostgreSQL or broker that a test may stop, beside the shared stack.

Tests here stop servers. They never stop the shared broker or database (other tests use them):
a server a test stops is its own, on its own port and data directory, started by the project's
stack code like the shared one.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from edge.migrations import migrate
from retrainer.stack.kafka import LocalKafka
from retrainer.stack.postgres import LocalPostgres
from retrainer.stack.settings import StackSettings
from tests.conftest import Stack
from tests.factories import API_TOKEN
from tests.integration.streams.conftest import Workers, free_port
from tests.integration.streams.conftest import workers as workers  # the fixture, shared

PRIVATE_ROOT = Path("/var/lib/retrainer/faults")


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of one test: `stop()` and `start()` it at will."""

    server: LocalPostgres
    dsn: str

    def stop(self) -> None:
        assert self.server.stop(), "the private PostgreSQL was not running"

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def private_postgres(tmp_path: Path) -> Iterator[PrivatePostgres]:
    port = free_port()
    # As root the server runs as a system user, so its files live where that user can reach.
    home = PRIVATE_ROOT / uuid.uuid4().hex[:8]
    settings = StackSettings(
        home=tmp_path / "stack",
        postgres_port=port,
        postgres_root_home=home,
        postgres_database="retrainer",
    )
    server = LocalPostgres(settings)
    server.start()
    dsn = settings.dsn
    asyncio.run(migrate(dsn))
    try:
        yield PrivatePostgres(server, dsn)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(settings.home / "postgres", ignore_errors=True)


@pytest.fixture
def workers_on_private_db(
    stack: Stack, private_postgres: PrivatePostgres, tmp_path: Path
) -> Iterator[Workers]:
    group = Workers(stack, private_postgres.dsn, tmp_path)
    yield group
    group.close()


@dataclass
class PrivateKafka:
    """A Kafka broker of one test, sharing the stack's cached jars: stop and start it at will."""

    server: LocalKafka
    bootstrap: str

    def stop(self) -> None:
        assert self.server.stop(), "the private broker was not running"

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def private_kafka(tmp_path: Path) -> Iterator[PrivateKafka]:
    shared = LocalKafka(StackSettings())
    if not shared.jars_cached():
        shared.resolve_jars()
    settings = StackSettings(
        home=tmp_path / "stack",
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_sasl_port=free_port(),  # the shared broker's SASL listener holds the default
    )
    server = LocalKafka(settings)
    server.root.mkdir(parents=True, exist_ok=True)
    server.libs.symlink_to(shared.libs, target_is_directory=True)
    server.start()
    try:
        yield PrivateKafka(server, settings.bootstrap)
    finally:
        server.stop()


def customers_in(dsn: str) -> int:
    """How many customers the worker has stored in `dsn`."""

    async def run() -> int:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM customers"))
        finally:
            await conn.close()

    return asyncio.run(run())


def call(port: int, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """GET `path` of a worker (POST `body` with the token): its status and JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {API_TOKEN}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
