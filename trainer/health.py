"""Whether the trainer reaches PostgreSQL, Kafka and (when it has one) its Dask scheduler,
probed from a thread of its own and cached.

`/health` (served from trainer.metrics' thread) reads the last probe, so it answers at once
even while a training holds the event loop, and a probe that hangs never holds a request.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from edge.health import ClientErrors, Probe, probe_kafka
from edge.logs import RateLimitedLog, kafka_logger
from trainer.retry import DATABASE_ERRORS
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)


class Reachability:
    """Probes PostgreSQL (`SELECT 1`) and Kafka (cluster metadata) every `every_s` seconds."""

    def __init__(
        self, settings: TrainerSettings, every_s: float = 5.0, timeout_s: float = 2.0
    ) -> None:
        self._settings = settings
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.database = Probe()
        self.kafka = Probe()
        self.dask: Probe | None = Probe() if settings.dask_scheduler else None
        self._admin: AdminClient | None = None
        self._errors = RateLimitedLog(log, every_s=60.0)
        self._client_errors = ClientErrors()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def healthy(self) -> bool:
        return self.database.ok and self.kafka.ok and (self.dask is None or self.dask.ok)

    def checks(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "database": self.database.ok,
            "kafka": self.kafka.ok,
            "checks": {"database": self.database.as_dict(), "kafka": self.kafka.as_dict()},
        }
        if self.dask is not None:
            answer["dask"] = self.dask.ok
            answer["checks"]["dask"] = self.dask.as_dict()
        return answer

    def start(self) -> None:
        """Probe now, then every `every_s` seconds from a daemon thread until `stop`."""
        self.probe()
        self._thread = threading.Thread(target=self._run, name="trainer-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.probe()

    def probe(self) -> None:
        self.database = asyncio.run(self._database())
        self.kafka = self._kafka()
        if self.dask is not None:
            self.dask = self._dask()

    def _dask(self) -> Probe:
        """Whether the scheduler's port accepts a connection (what a training needs first)."""
        address = self._settings.dask_scheduler or ""
        parts = urlsplit(address if "://" in address else f"tcp://{address}")
        try:
            with socket.create_connection(
                (parts.hostname or "", parts.port or 8786), timeout=self.timeout_s
            ):
                return Probe(True, "")
        except OSError as exc:
            return Probe(False, f"Dask scheduler {address} unreachable: {exc}")

    async def _database(self) -> Probe:
        try:
            conn = await asyncpg.connect(
                self._settings.dsn,
                timeout=self.timeout_s,
                server_settings={"application_name": "retrainer-trainer-health"},
            )
        except TimeoutError:
            return Probe(False, f"PostgreSQL did not answer within {self.timeout_s:g}s")
        except DATABASE_ERRORS as exc:
            return Probe(False, f"PostgreSQL: {type(exc).__name__}: {exc}")
        try:
            await conn.fetchval("SELECT 1", timeout=self.timeout_s)
            return Probe(True, "")
        except TimeoutError:
            return Probe(False, f"PostgreSQL did not answer within {self.timeout_s:g}s")
        except DATABASE_ERRORS as exc:
            return Probe(False, f"PostgreSQL: {type(exc).__name__}: {exc}")
        finally:
            conn.terminate()

    def _kafka(self) -> Probe:
        if self._admin is None:
            config: dict[str, Any] = self._settings.kafka.confluent(
                {
                    # librdkafka repeats a broker's absence many times a second: one line a
                    # minute per kind; /health says the rest.
                    "error_cb": self._on_error,
                    "logger": kafka_logger("trainer.kafka", every_s=60.0),
                }
            )
            self._admin = AdminClient(config)
        connection = self._settings.kafka
        probe = probe_kafka(self._admin, connection, self.timeout_s, self._client_errors)
        return probe

    def _on_error(self, error: KafkaError) -> None:
        self._client_errors.note(error)
        self._errors.warning(f"kafka:{error.code()}", "health probe: %s", error.str())
