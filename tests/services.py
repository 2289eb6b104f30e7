"""The worker and trainer processes tests and benchmarks start, on the service harness.

`Workers` is one run: a topic prefix, consumer groups and a database private to it, and any
number of `retrainer worker` processes (one group) and `retrainer trainer` processes on them.
"""

from __future__ import annotations

import json
import signal
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any

from retrainer.harness import Scope, Service, Services, delete_topics, free_port
from retrainer.harness.settings import streams_settings
from streams.bootstrap import ensure_topics
from streams.settings import StreamsSettings
from tests.conftest import Stack
from tests.factories import API_TOKEN, ROOT, new_prefix

TEST_SETTINGS = {"RETRAINER_POLICY_TICK_S": "2"}
"""What every service a test starts runs with, beside the run's own names: the policy looks
again every 2 s (not 30), so tests that wait for its decisions stay short."""

STARTUP_S = 90.0
STOP_GRACE_S = 30.0


def delete_prefixed_topics(bootstrap: str, prefix: str) -> None:
    """Delete every topic named `<prefix>-…`, so test runs do not pile up on a shared broker."""
    problems = delete_topics(bootstrap, prefix)
    if problems:
        raise AssertionError("; ".join(problems))


@dataclass
class Workers:
    """Worker processes sharing one consumer group, topics and database (and trainers)."""

    stack: Stack
    database_url: str
    logs: Path
    prefix: str = field(default_factory=new_prefix)
    extra_env: dict[str, str] = field(default_factory=dict)
    """RETRAINER_* settings of the services started from now on."""
    ports: list[int] = field(default_factory=list)
    services: Services = field(default_factory=lambda: Services(cwd=ROOT))

    @property
    def scope(self) -> Scope:
        return Scope(
            bootstrap=self.stack.bootstrap,
            database_url=self.database_url,
            prefix=self.prefix,
            folder=self.logs,
            api_token=API_TOKEN,
            settings={**TEST_SETTINGS, **self.extra_env},
        )

    @property
    def procs(self) -> list[Popen[bytes]]:
        """Every process started, in order (stopped ones too: indices stay)."""
        return [service.proc for service in self.services.started]

    def topic(self, name: str) -> str:
        return self.scope.topic(name)

    def env(self, port: int) -> dict[str, str]:
        """The environment of a worker of this group on `port`."""
        return self.scope.env(web_port=port)

    def settings(self, **values: Any) -> StreamsSettings:
        """The workers' settings for in-process code (replay, rebuild), from explicit values."""
        return streams_settings(self.scope, **values)

    def create_topics(self) -> None:
        ensure_topics(self.settings())

    def start(
        self, port: int | None = None, env: dict[str, str] | None = None, log: Path | None = None
    ) -> int:
        """Start `retrainer worker` (with `env`, by default this group's) and wait until it
        answers /health; returns its port."""
        service = self._launch(port, env, log)
        service.wait_healthy(STARTUP_S)
        return service.port

    def start_together(self, count: int) -> list[int]:
        """Start `count` workers of this group at once and wait until each answers /health;
        returns their ports. They boot side by side, as a deployment's replicas do."""
        launched = [self._launch() for _ in range(count)]
        for service in launched:
            service.wait_healthy(STARTUP_S)
        return [service.port for service in launched]

    def _launch(
        self, port: int | None = None, env: dict[str, str] | None = None, log: Path | None = None
    ) -> Service:
        port = port or free_port()
        service = self.services.start(
            "worker",
            ["worker", "--loglevel", "warning"],
            env if env is not None else self.env(port),
            log or self.logs / f"worker-{port}.log",
            port,
        )
        self.ports.append(port)
        return service

    def start_trainer(self, **extra: str) -> int:
        """Run the trainer service on the same topics and database; returns its metrics port."""
        service = self._launch_trainer(**extra)
        service.wait_healthy(STARTUP_S)
        return service.port

    def start_with_trainer(self, workers: int = 1, **extra: str) -> tuple[list[int], int]:
        """Start `workers` workers and a trainer at once (`extra`: the trainer's own settings)
        and wait until each answers /health; returns the workers' ports and the trainer's."""
        launched = [self._launch() for _ in range(workers)]
        trainer = self._launch_trainer(**extra)
        for service in [*launched, trainer]:
            service.wait_healthy(STARTUP_S)
        return [service.port for service in launched], trainer.port

    def _launch_trainer(self, **extra: str) -> Service:
        port = free_port()
        return self.services.start(
            "trainer",
            ["trainer"],
            self.scope.env(trainer_port=port, **extra),
            self.logs / "trainer.log",
            port,
        )

    def metric(self, name: str, port: int | None = None, **labels: str) -> float:
        """The sum of a metric's samples on a worker whose labels include `labels`."""
        total = 0.0
        for line in self.get("/metrics", port).splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def assert_healthy(self, port: int) -> None:
        """The worker's /health says ok, with PostgreSQL and Kafka both reached."""
        health = self.get("/health", port)
        assert {k: health[k] for k in ("status", "database", "kafka")} == {
            "status": "ok",
            "database": True,
            "kafka": True,
        }
        assert {name: check["ok"] for name, check in health["checks"].items()} == {
            "database": True,
            "kafka": True,
        }

    def get(self, path: str, port: int | None = None) -> Any:
        url = f"http://127.0.0.1:{port or self.ports[-1]}{path}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body = resp.read()
        return json.loads(body) if path != "/metrics" else body.decode()

    def kill(self, index: int, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the `index`-th process started and wait for it to end."""
        self.services.started[index].kill(sig)

    def close(self) -> None:
        """For the fixture that owns the prefix: stop everything and delete the group's topics
        (Faust's changelogs too), so test runs do not pile up on a shared broker."""
        self.stop_all()
        delete_prefixed_topics(self.stack.bootstrap, self.prefix)

    def stop_all(self) -> None:
        """Stop every process (the topics stay: a test may start workers on them again)."""
        self.services.stop_all(STOP_GRACE_S)
