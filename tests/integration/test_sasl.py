"""Both services over SASL: the local broker's SASL_PLAINTEXT listener (PLAIN, its one user).

A worker given only the SASL settings stores an upstream event and says it is healthy; a trainer
given them answers a retrain request; wrong credentials are named as a refused login, never
with the password.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Consumer
from pydantic import SecretStr

from edge.kafka import KafkaConnection, SecurityProtocol
from edge.producer import DeliveringProducer
from retrainer.harness.scope import Scope
from retrainer.stack import procs
from retrainer.stack.settings import StackSettings
from schemas.base import ModelFamily
from schemas.training_outcome import TrainingOutcome
from streams.health import Reachability
from tests.conftest import Stack
from tests.factories import API_TOKEN, CODEC, ROOT, customer, wait_until
from tests.integration.streams.conftest import Workers, free_port
from tests.integration.trainer.kafka_helpers import request

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-password-4711"


def sasl_environment(kafka: KafkaConnection) -> dict[str, str]:
    assert kafka.sasl_password is not None
    return {
        "RETRAINER_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "RETRAINER_KAFKA_SECURITY_PROTOCOL": kafka.security_protocol.value,
        "RETRAINER_KAFKA_SASL_MECHANISM": kafka.sasl_mechanism.value,
        "RETRAINER_KAFKA_SASL_USERNAME": kafka.sasl_username or "",
        "RETRAINER_KAFKA_SASL_PASSWORD": kafka.sasl_password.get_secret_value(),
    }


@pytest.fixture(scope="module")
def sasl(stack: Stack) -> KafkaConnection:
    """The local broker's SASL listener with its user (a broker started before the listener
    existed lacks it: `retrainer stack down` and `up` once)."""
    settings = StackSettings()
    if not procs.port_open(settings.host, settings.kafka_sasl_port):
        pytest.fail(
            f"the local broker has no SASL listener on {settings.sasl_bootstrap}; restart it "
            "(`retrainer stack down && retrainer stack up`)",
            pytrace=False,
        )
    return KafkaConnection(
        settings.sasl_bootstrap,
        SecurityProtocol.SASL_PLAINTEXT,
        sasl_username=settings.kafka_local_username,
        sasl_password=settings.kafka_local_password,
    )


@pytest.fixture
def sasl_workers(
    stack: Stack, sasl: KafkaConnection, fresh_database_url: str, tmp_path: Path
) -> Iterator[Workers]:
    """Workers (and a trainer) that know the broker only by its SASL listener."""
    group = Workers(
        Stack(sasl.bootstrap, stack.dsn, stack.session_id),
        fresh_database_url,
        tmp_path,
        extra_env=sasl_environment(sasl),
    )
    yield group
    group.stop_all()
    delete_topics(sasl, group.prefix)


def delete_topics(kafka: KafkaConnection, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(kafka.confluent())
    names = [t for t in admin.list_topics(timeout=15).topics if t.startswith(f"{prefix}-")]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)


def read_values(
    kafka: KafkaConnection, topic: str, wanted: int, timeout: float = 120
) -> list[bytes]:
    """The first `wanted` values of `topic`, read over `kafka`."""
    consumer = Consumer(
        kafka.confluent({"group.id": f"reader-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    try:

        def read() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value() or b"")
            return len(values) >= wanted

        wait_until(read, timeout, f"{wanted} message(s) on {topic}")
    finally:
        consumer.close()
    return values


async def stored_customers(database_url: str, customer_id: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM customers WHERE customer_id = $1", customer_id
            )
        )
    finally:
        await conn.close()


def test_a_worker_over_sasl_stores_an_upstream_event_and_is_healthy(
    sasl_workers: Workers, sasl: KafkaConnection
) -> None:
    sasl_workers.create_topics()
    port = sasl_workers.start()
    event = customer(1, prefix=sasl_workers.prefix)
    producer = DeliveringProducer(sasl)
    producer.deliver(
        sasl_workers.topic("customer-created"), [(CODEC.key_of(event), CODEC.encode(event))]
    )
    producer.close()
    wait_until(
        lambda: asyncio.run(stored_customers(sasl_workers.database_url, event.customer_id)) == 1,
        90,
        "the customer sent over SASL to be stored",
    )
    sasl_workers.assert_healthy(port)


def test_a_trainer_over_sasl_answers_a_request_with_its_outcome(
    sasl_workers: Workers, sasl: KafkaConnection
) -> None:
    sasl_workers.create_topics()
    sasl_workers.start_trainer()
    wanted = request(ModelFamily.DELINQUENCY, datetime.now(UTC))
    producer = DeliveringProducer(sasl)
    producer.deliver(
        sasl_workers.topic("retrain-requested"), [(CODEC.key_of(wanted), CODEC.encode(wanted))]
    )
    producer.close()
    raw = read_values(sasl, sasl_workers.topic("training-outcome"), 1)
    outcome = CODEC.decode_as(TrainingOutcome, raw[0])
    assert outcome.request_id == wanted.request_id
    # An empty database: too little data to train, said as an outcome.
    assert outcome.status.value == "skipped"


@pytest.mark.parametrize("command", ["worker", "trainer"])
def test_wrong_credentials_are_refused_at_start_as_a_login_problem(
    sasl: KafkaConnection, fresh_database_url: str, tmp_path: Path, command: str
) -> None:
    scope = Scope(
        bootstrap=sasl.bootstrap,
        database_url=fresh_database_url,
        prefix=f"w{uuid.uuid4().hex[:8]}",
        folder=tmp_path,
        api_token=API_TOKEN,
    )
    env = scope.env(
        free_port(), **{**sasl_environment(sasl), "RETRAINER_KAFKA_SASL_PASSWORD": WRONG_PASSWORD}
    )
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "retrainer.cli", command],
        env={**env, "RETRAINER_TRAINER_METRICS_PORT": "0"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "refused the login" in done.stderr
    assert "RETRAINER_KAFKA_SASL_PASSWORD" in done.stderr
    assert WRONG_PASSWORD not in done.stdout + done.stderr
    assert time.monotonic() - began < 60


async def test_the_health_probe_names_a_refused_login(sasl: KafkaConnection) -> None:
    wrong = KafkaConnection(
        sasl.bootstrap,
        SecurityProtocol.SASL_PLAINTEXT,
        sasl_username=sasl.sasl_username,
        sasl_password=SecretStr(WRONG_PASSWORD),
    )

    async def no_pool() -> asyncpg.Pool:
        raise OSError("not asked here")

    reachability = Reachability(no_pool, wrong, timeout_s=5.0)
    await reachability.probe()
    assert not reachability.kafka.ok
    assert "login was refused" in reachability.kafka.reason
    assert WRONG_PASSWORD not in reachability.kafka.reason
    assert reachability.snapshot()["status"] == "degraded"
