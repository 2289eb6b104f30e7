"""What one run owns (topic prefix, consumer groups, database, folder, token) and the services'
environment that points them at it."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TOPICS: tuple[str, ...] = (
    "expense-sheet",
    "customer-created",
    "customer-activity",
    "expense-label",
    "retrain-requested",
    "model-updated",
    "training-outcome",
    "expense-scored",
    "customer-scored",
    "dead-letter",
    "policy-signals",
)
"""Every topic the services read or write, by its key in the settings (`policy-signals` is the
worker's internal one)."""


def topic_env(prefix: str | None = None, /, **renamed: str) -> dict[str, str]:
    """The environment variables that rename topics for a service started with them.

    With `prefix` every topic of TOPICS becomes `<prefix>-<name>`; keyword arguments (a topic's
    settings key with underscores, e.g. `model_updated="x"`) rename single topics. This is the
    one place that knows the variables' names.
    """
    names = {name.replace("-", "_"): f"{prefix}-{name}" for name in TOPICS} if prefix else {}
    unknown = set(renamed) - {name.replace("-", "_") for name in TOPICS}
    if unknown:
        raise ValueError(f"no such topic: {', '.join(sorted(unknown))}")
    names.update(renamed)
    return {f"RETRAINER_TOPICS__{key.upper()}": value for key, value in names.items()}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def without_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any RETRAINER_* variable: the services see only what the run sets."""
    return {k: v for k, v in environ.items() if not k.startswith("RETRAINER_")}


@dataclass(frozen=True)
class Scope:
    """The names private to one run, and the environment its services are started with."""

    bootstrap: str
    database_url: str
    prefix: str
    folder: Path
    """Logs and the workers' data directories."""
    api_token: str
    settings: Mapping[str, str] = field(default_factory=dict)
    """RETRAINER_* variables every service of the run gets on top of the run's own."""

    def topic(self, name: str) -> str:
        """The run's name of the topic whose default name is `name`."""
        return f"{self.prefix}-{name}"

    @property
    def app_id(self) -> str:
        return f"{self.prefix}-worker"

    @property
    def trainer_group(self) -> str:
        return f"{self.prefix}-trainer"

    @property
    def groups(self) -> tuple[str, ...]:
        """The consumer groups the run's services join (the worker's upstream group too)."""
        return (self.app_id, f"{self.app_id}-upstream", self.trainer_group)

    def data_dir(self, web_port: int) -> Path:
        """A worker's own data directory: workers of one group never share one."""
        return self.folder / f"worker-data-{web_port}"

    def env(self, web_port: int = 0, trainer_port: int = 0, **overrides: str) -> dict[str, str]:
        """The environment of a worker on `web_port` / a trainer serving metrics on
        `trainer_port`: this process's variables but RETRAINER_*, then the run's settings,
        then `overrides` (full variable names)."""
        env = without_settings(os.environ)
        env.update(
            {
                "RETRAINER_KAFKA_BOOTSTRAP": self.bootstrap,
                "RETRAINER_DATABASE_URL": self.database_url,
                "RETRAINER_APP_ID": self.app_id,
                "RETRAINER_WORKER_DATA_DIR": str(self.data_dir(web_port)),
                "RETRAINER_WEB_PORT": str(web_port),
                "RETRAINER_API_TOKEN": self.api_token,
                "RETRAINER_TRAINER_GROUP_ID": self.trainer_group,
                "RETRAINER_TRAINER_METRICS_PORT": str(trainer_port),
            }
        )
        env.update(topic_env(self.prefix))
        env.update(self.settings)
        env.update(overrides)
        return env
