"""Bring the whole local stack up, down, or report on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from retrainer.stack.errors import ServiceFailed
from retrainer.stack.kafka import LocalKafka, metadata_ok
from retrainer.stack.postgres import LocalPostgres, database_problem
from retrainer.stack.settings import StackSettings
from schemas.diagnostics import mask_dsn

Report = Callable[[str], None]


@dataclass
class UpResult:
    """What `stack up` did, with how long each step took."""

    kafka_started: bool = False
    postgres_started: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def up(settings: StackSettings, report: Report = lambda _: None) -> UpResult:
    """Start whatever is not running yet; a second call finds both running and starts nothing."""
    result = UpResult()
    began = time.monotonic()
    if settings.local_postgres:
        report("PostgreSQL: starting (or reusing) the local server")
        result.postgres_started = LocalPostgres(settings).start()
    else:
        problem = database_problem(settings.dsn, 10.0)
        if problem is not None:
            raise ServiceFailed(
                str(problem), "or unset RETRAINER_DATABASE_URL to use the local server"
            )
    result.seconds["postgres"] = time.monotonic() - began

    began = time.monotonic()
    if settings.local_kafka:
        kafka = LocalKafka(settings)
        if not kafka.jars_cached() and kafka.process() is None:
            report(
                f"Kafka: resolving Apache Kafka {settings.kafka_version} jars from Maven Central "
                f"into {kafka.libs} (first run only)"
            )
        report("Kafka: starting (or reusing) the local KRaft broker")
        result.kafka_started = kafka.start()
    elif not metadata_ok(settings.bootstrap, 10.0, external=True):
        raise ServiceFailed(
            f"RETRAINER_KAFKA_BOOTSTRAP={settings.bootstrap} does not answer metadata requests",
            "check the address and that the broker runs, or unset it to use the local broker",
        )
    result.seconds["kafka"] = time.monotonic() - began
    return result


def down(settings: StackSettings, purge: bool = False) -> dict[str, bool]:
    """Stop our processes (never external servers); `purge` also deletes their data."""
    stopped = {"kafka": False, "postgres": False}
    if settings.local_kafka:
        kafka = LocalKafka(settings)
        stopped["kafka"] = kafka.stop()
        if purge:
            kafka.purge()
    if settings.local_postgres:
        postgres = LocalPostgres(settings)
        stopped["postgres"] = postgres.stop()
        if purge:
            postgres.purge()
    return stopped


def status(settings: StackSettings) -> dict[str, Any]:
    """One JSON-ready object describing the stack, for people and scripts."""
    kafka = LocalKafka(settings).status()
    postgres = LocalPostgres(settings).status()
    return {
        "kafka_bootstrap": settings.bootstrap,
        "database_url": mask_dsn(settings.dsn),
        "home": str(settings.home),
        "healthy": kafka.state in ("running", "external")
        and postgres.state in ("running", "external"),
        "services": {"kafka": kafka.as_dict(), "postgres": postgres.as_dict()},
    }
