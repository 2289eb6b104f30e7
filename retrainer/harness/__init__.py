"""Run the worker and the trainer as their users do, on topics and a database private to one run.

The demo, the tests and the benchmarks all start services through this package: `scope` names
what a run owns and builds the services' environment, `processes` starts, health-checks and stops
them, `resources` creates and removes the run's database and topics, and `settings` builds the
worker's settings for code that runs in-process. Only `settings` imports the worker's code.
"""

from __future__ import annotations

from retrainer.harness.processes import Service, ServiceError, Services
from retrainer.harness.resources import (
    create_database,
    delete_groups,
    delete_topics,
    drop_database,
    with_database,
)
from retrainer.harness.scope import TOPICS, Scope, free_port, topic_env

__all__ = [
    "TOPICS",
    "Scope",
    "Service",
    "ServiceError",
    "Services",
    "create_database",
    "delete_groups",
    "delete_topics",
    "drop_database",
    "free_port",
    "topic_env",
    "with_database",
]
