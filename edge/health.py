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

LOGIN_SETTINGS = (
    "RETRAINER_KAFKA_SASL_USERNAME, RETRAINER_KAFKA_SASL_PASSWORD and "
    "RETRAINER_KAFKA_SASL_MECHANISM"
)


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


class ClientErrors:
    """The client-level errors librdkafka reports through `error_cb` between two probes; a
    refused login is kept over the "all brokers down" that follows it."""

    def __init__(self) -> None:
        self._error: KafkaError | None = None

    def note(self, error: KafkaError) -> None:
        if self._error is None or self._error.code() != KafkaError._AUTHENTICATION:
            self._error = error

    def take(self) -> KafkaError | None:
        error, self._error = self._error, None
        return error


def probe_kafka(
    admin: AdminClient,
    connection: KafkaConnection,
    timeout_s: float,
    client_errors: ClientErrors | None = None,
) -> Probe:
    """Ask the cluster for its metadata (blocking): a broker must answer within `timeout_s`.

    `client_errors` holds what librdkafka reported through the admin's `error_cb`: when the
    metadata does not come, a refused login says more than the timeout it ends in.
    """
    where = f"Kafka at {connection.describe()}"
    try:
        metadata = admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: a refused login is reported there
        seen = client_errors.take() if client_errors is not None else None
        return Probe(False, f"{where}: {client_problem(exc.args[0], seen)}")
    if not metadata.brokers:
        return Probe(False, f"{where}: no broker in the metadata")
    return Probe(True, "")


def client_problem(error: KafkaError | str, client_error: KafkaError | None) -> str:
    """Why a request failed: an authentication failure seen meanwhile, else the request's error."""
    if client_error is not None and client_error.code() == KafkaError._AUTHENTICATION:
        return f"the login was refused: {client_error.str()} (check {LOGIN_SETTINGS})"
    return error.str() if isinstance(error, KafkaError) else str(error)


def kafka_problem(connection: KafkaConnection, timeout_s: float = 10.0) -> Problem | None:
    """One metadata request before a service or tool starts: None if a broker answers, else one
    line saying why not (a refused login named as such); librdkafka's own retry log muted."""
    quiet = logging.getLogger("edge.kafka-probe")
    quiet.propagate = False
    if not quiet.handlers:  # without one, logging's last-resort handler prints to stderr
        quiet.addHandler(logging.NullHandler())
    seen = ClientErrors()
    admin = AdminClient(connection.confluent({"logger": quiet, "error_cb": seen.note}))
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        admin.poll(0)  # serves error_cb: a refused login is reported there
        worst = seen.take()
        if worst is not None and worst.code() == KafkaError._AUTHENTICATION:
            return Problem(
                f"Kafka at {connection.describe()} refused the login: {worst.str()}; "
                f"fix {LOGIN_SETTINGS}"
            )
        return kafka_unreachable(connection.describe(), client_problem(exc.args[0], worst))
    return None
