"""What both services' `/health` report of a dependency: the last probe's answer and its age."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from edge.kafka import KafkaConnection
from schemas.diagnostics import Problem, kafka_unreachable


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


def probe_kafka(
    admin: AdminClient,
    connection: KafkaConnection,
    timeout_s: float,
    client_error: KafkaError | None = None,
) -> Probe:
    """Ask the cluster for its metadata (blocking): a broker must answer within `timeout_s`.

    `client_error` is the last error librdkafka reported through `error_cb`: when the metadata
    does not come, a refused login says more than the timeout it ends in.
    """
    where = f"Kafka at {connection.describe()}"
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        return Probe(False, f"{where}: {client_problem(exc.args[0], client_error)}")
    if not metadata.brokers:
        return Probe(False, f"{where}: no broker in the metadata")
    return Probe(True, "")


def client_problem(error: KafkaError | str, client_error: KafkaError | None) -> str:
    """Why a request failed: an authentication failure seen meanwhile, else the request's error."""
    if client_error is not None and client_error.code() == KafkaError._AUTHENTICATION:
        return (
            f"{client_error.str()} (check RETRAINER_KAFKA_SASL_USERNAME, "
            "RETRAINER_KAFKA_SASL_PASSWORD and RETRAINER_KAFKA_SASL_MECHANISM)"
        )
    return error.str() if isinstance(error, KafkaError) else str(error)


def kafka_problem(connection: KafkaConnection, timeout_s: float = 10.0) -> Problem | None:
    """One metadata request before a service or tool starts: None if a broker answers, else one
    line saying why not (a refused login named as such); librdkafka's own retry log muted."""
    quiet = logging.getLogger("edge.kafka-probe")
    quiet.propagate = False
    if not quiet.handlers:  # without one, logging's last-resort handler prints to stderr
        quiet.addHandler(logging.NullHandler())
    seen: list[KafkaError] = []
    admin = AdminClient(connection.confluent({"logger": quiet, "error_cb": seen.append}))
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        reason = client_problem(exc.args[0], _worst(seen))
        return kafka_unreachable(connection.describe(), reason)
    return None


def _worst(errors: list[KafkaError]) -> KafkaError | None:
    """The authentication failure among client errors if there is one, else the last."""
    for error in errors:
        if error.code() == KafkaError._AUTHENTICATION:
            return error
    return errors[-1] if errors else None
