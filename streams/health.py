"""Whether the worker reaches PostgreSQL and Kafka, probed in the background and cached.

`GET /health` only reads the last result, so it answers at once however busy the loop is, and
a probe that hangs (a firewall dropping packets) never holds a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from edge.health import ClientErrors, Probe, probe_kafka
from edge.kafka import KafkaConnection
from edge.logs import RateLimitedLog, kafka_logger

log = logging.getLogger(__name__)


class Reachability:
    """Probes PostgreSQL (`SELECT 1`) and Kafka (cluster metadata) every `every_s` seconds."""

    def __init__(
        self,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        kafka: KafkaConnection,
        every_s: float = 5.0,
        timeout_s: float = 2.0,
    ) -> None:
        self._pool = pool
        self._connection = kafka
        self.every_s = every_s
        self.timeout_s = timeout_s
        self.database = Probe()
        self.kafka = Probe()
        self._admin: AdminClient | None = None
        self._errors = RateLimitedLog(log, every_s=60.0)
        self._client_errors = ClientErrors()

    @property
    def healthy(self) -> bool:
        return self.database.ok and self.kafka.ok

    def snapshot(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "degraded",
            "database": self.database.ok,
            "kafka": self.kafka.ok,
            "checks": {"database": self.database.as_dict(), "kafka": self.kafka.as_dict()},
        }

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            await self.probe()
            await asyncio.sleep(self.every_s)

    async def probe(self) -> None:
        self.database, self.kafka = await asyncio.gather(self._database(), self._kafka())

    async def _database(self) -> Probe:
        try:
            async with asyncio.timeout(self.timeout_s):
                pool = await self._pool()
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            return Probe(True, "")
        except TimeoutError:
            return Probe(False, f"PostgreSQL did not answer within {self.timeout_s:g}s")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            return Probe(False, f"PostgreSQL: {type(exc).__name__}: {exc}")

    async def _kafka(self) -> Probe:
        return await asyncio.to_thread(self._metadata)

    def _metadata(self) -> Probe:
        if self._admin is None:
            config: dict[str, Any] = self._connection.confluent(
                {
                    # librdkafka repeats connection failures many times a second: keep one line
                    # a minute per kind; /health says the rest.
                    "error_cb": self._on_error,
                    "logger": kafka_logger(every_s=60.0),
                }
            )
            self._admin = AdminClient(config)
        probe = probe_kafka(self._admin, self._connection, self.timeout_s, self._client_errors)
        return probe

    def _on_error(self, error: KafkaError) -> None:
        self._client_errors.note(error)
        self._errors.warning(f"kafka:{error.code()}", "health probe: %s", error.str())
