"""What both services' `/health` report of a dependency: the last probe's answer and its age."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient


@dataclass
class Probe:
    """The last answer of one dependency."""

    ok: bool = False
    reason: str = "not probed yet"
    checked_at: float = field(default_factory=time.monotonic)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": None if self.ok else self.reason,
            "age_s": round(time.monotonic() - self.checked_at, 1),
        }


def probe_kafka(admin: AdminClient, bootstrap: str, timeout_s: float) -> Probe:
    """Ask the cluster for its metadata (blocking): a broker must answer within `timeout_s`."""
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return Probe(False, f"Kafka at {bootstrap}: {exc.args[0] if exc.args else exc}")
    if not metadata.brokers:
        return Probe(False, f"Kafka at {bootstrap}: no broker in the metadata")
    return Probe(True, "")
