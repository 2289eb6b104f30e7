"""The trainer service under outages: PostgreSQL or the broker stopped ~20 s, or kill -9.

Each test runs `retrainer trainer` as a process on topics and a server of its own. Throughout an
outage the process stays alive and `/health` answers 503 naming the dependency; once it is back,
work resumes within seconds and every request ends with exactly one outcome: one row in
`model_retraining_log`, one model version, one message on the outcome topic.

A training is held at a chosen point by taking the family's registry lock (the advisory lock the
trainer takes before it writes a version) from the test: the trainer has loaded its data and
fitted, and waits to record. The outage then begins under it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from tests.conftest import Stack
from tests.factories import CODEC, wait_until
from tests.faults.conftest import PrivateKafka, PrivatePostgres
from tests.integration.streams.conftest import Workers, read_all
from tests.integration.trainer.kafka_helpers import produce, request
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames, world
from trainer.registry import family_lock_key

pytestmark = pytest.mark.integration

OUTAGE_S = 20.0
RESUME_S = 5.0
"""How soon after a dependency is back the trainer must be working again (plus MARGIN_S)."""
MARGIN_S = 5.0
"""For a machine of two cores shared by several test runs."""
FAMILY = ModelFamily.DELINQUENCY


@functools.cache
def scenario() -> Frames:
    return frames(world(seed=23, customers=400, sheets=20))


def cutoff() -> datetime:
    return datetime.fromtimestamp(scenario().end_us / 1_000_000, tz=UTC)


def _query(dsn: str, sql: str, *args: object) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn, timeout=5)
        try:
            return await conn.fetchval(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=3) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@dataclass
class Scene:
    """A trainer process with its topics, database and metrics port."""

    workers: Workers
    dsn: str
    port: int = 0

    @property
    def bootstrap(self) -> str:
        return self.workers.stack.bootstrap

    @property
    def trainer(self) -> Any:
        return self.workers.procs[-1]

    def start_trainer(self) -> None:
        self.port = self.workers.start_trainer(
            RETRAINER_RETRY_ATTEMPTS="2", RETRAINER_TRAINING_THREADS="1"
        )

    def ask(self) -> RetrainRequested:
        wanted = request(FAMILY, cutoff(), text="outage test")
        produce(self.bootstrap, self.workers.topic("retrain-requested"), CODEC, wanted)
        return wanted

    def outcomes(self, request_id: object) -> list[TrainingOutcome]:
        raw = read_all(self.bootstrap, self.workers.topic("training-outcome"))
        decoded = [CODEC.decode_as(TrainingOutcome, value) for _, value in raw]
        return [o for o in decoded if o.request_id == request_id]

    def logged(self, request_id: object) -> int:
        return int(
            _query(
                self.dsn,
                "SELECT count(*) FROM model_retraining_log WHERE request_id = $1",
                request_id,
            )
        )

    def versions(self, request_id: object) -> int:
        return int(
            _query(
                self.dsn, "SELECT count(*) FROM model_versions WHERE request_id = $1", request_id
            )
        )

    def reports(self, dependency: str, *, ok: bool) -> bool:
        status, body = _health(self.port)
        checks = body.get("checks", {})
        return (status == 200) is ok and checks.get(dependency, {}).get("ok") is ok

    def assert_alive(self) -> None:
        assert self.trainer.poll() is None, f"the trainer exited ({self.trainer.returncode})"

    def ride_out(self, down_at: float, dependency: str, word: str) -> None:
        """Wait out the rest of the outage, the trainer alive and /health naming `word`."""

        def over() -> bool:
            self.assert_alive()
            return time.monotonic() - down_at > OUTAGE_S

        wait_until(over, OUTAGE_S + 10, "the outage to last its time")
        status, body = _health(self.port)
        assert status == 503, body
        assert body["status"] == "degraded", body
        assert word in body["checks"][dependency]["reason"], body

    def exactly_one_outcome(self, request_id: object, within: float) -> TrainingOutcome:
        found = wait_until(lambda: self.outcomes(request_id), within, "the request's outcome")
        assert isinstance(found, list)
        # A second outcome, were one coming, is published right after the first.
        wait_until(lambda: self.logged(request_id) == 1, 10, "the outcome in the log")
        found = self.outcomes(request_id)
        assert len(found) == 1, [(o.status, o.reason) for o in found]
        outcome = found[0]
        assert outcome.status is OutcomeStatus.PROMOTED, outcome.reason
        assert self.versions(request_id) == 1
        return outcome


@contextmanager
def registry_held(dsn: str) -> Iterator[asyncpg.Connection]:
    """Hold the family's registry lock from a connection of our own until the block ends."""
    loop = asyncio.new_event_loop()
    conn: asyncpg.Connection = loop.run_until_complete(asyncpg.connect(dsn, timeout=5))
    try:
        loop.run_until_complete(
            conn.execute("SELECT pg_advisory_lock($1)", family_lock_key(FAMILY))
        )
        yield conn
    finally:
        conn.terminate()
        # One turn of the loop lets the transport close its socket before the loop goes.
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


def trainer_waits_on_registry(dsn: str) -> bool:
    return bool(
        _query(dsn, "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    )


@pytest.fixture
def on_private_db(workers_on_private_db: Workers, private_postgres: PrivatePostgres) -> Scene:
    asyncio.run(seed(private_postgres.dsn, scenario()))
    workers_on_private_db.create_topics()
    scene = Scene(workers_on_private_db, private_postgres.dsn)
    scene.start_trainer()
    return scene


def test_trainer_rides_out_postgres_outage_while_idle_and_consuming(
    on_private_db: Scene, private_postgres: PrivatePostgres
) -> None:
    scene = on_private_db
    private_postgres.stop()
    down_at = time.monotonic()
    wait_until(lambda: scene.reports("database", ok=False), 15, "/health to report PostgreSQL")
    # A request arrives while the database is down: it waits, it does not fail.
    asked = scene.ask()
    scene.ride_out(down_at, "database", "PostgreSQL")
    assert scene.outcomes(asked.request_id) == [], "an outcome was published during the outage"

    private_postgres.start()
    back_at = time.monotonic()
    wait_until(
        lambda: _query(
            scene.dsn,
            "SELECT count(*) FROM request_identities WHERE request_id = $1",
            asked.request_id,
        ),
        RESUME_S + MARGIN_S,
        "the trainer to take the request up again",
    )
    resumed_s = time.monotonic() - back_at
    scene.exactly_one_outcome(asked.request_id, within=60)
    done_s = time.monotonic() - back_at
    wait_until(lambda: scene.reports("database", ok=True), 15, "/health to be ok again")
    scene.assert_alive()
    print(
        f"FAULT postgres-outage trainer idle+consuming: requests=1 lost=0 duplicated=0 "
        f"resumed_s={resumed_s:.1f} outcome_s={done_s:.1f}"
    )


def test_trainer_rides_out_postgres_outage_during_training(
    on_private_db: Scene, private_postgres: PrivatePostgres
) -> None:
    scene = on_private_db
    with registry_held(scene.dsn):
        asked = scene.ask()
        wait_until(
            lambda: trainer_waits_on_registry(scene.dsn), 60, "the training to reach the registry"
        )
        private_postgres.stop()
    down_at = time.monotonic()
    wait_until(lambda: scene.reports("database", ok=False), 15, "/health to report PostgreSQL")
    scene.ride_out(down_at, "database", "PostgreSQL")
    assert scene.outcomes(asked.request_id) == [], "an outcome was published during the outage"

    private_postgres.start()
    back_at = time.monotonic()
    wait_until(
        lambda: scene.outcomes(asked.request_id), RESUME_S + MARGIN_S, "the outcome after recovery"
    )
    resumed_s = time.monotonic() - back_at
    scene.exactly_one_outcome(asked.request_id, within=10)
    wait_until(lambda: scene.reports("database", ok=True), 15, "/health to be ok again")
    scene.assert_alive()
    # The fit made before the outage is recorded; the data is not loaded and fitted again.
    trainer_log = (scene.workers.logs / "trainer.log").read_text()
    assert "recording the fit made before the outage" in trainer_log, trainer_log[-4000:]
    print(
        f"FAULT postgres-outage trainer during-training: requests=1 lost=0 duplicated=0 "
        f"resumed_s={resumed_s:.1f}"
    )


def test_trainer_rides_out_broker_outage(
    stack: Stack, private_kafka: PrivateKafka, fresh_database_url: str, tmp_path: Path
) -> None:
    asyncio.run(seed(fresh_database_url, scenario()))
    workers = Workers(
        Stack(private_kafka.bootstrap, stack.dsn, stack.session_id), fresh_database_url, tmp_path
    )
    scene = Scene(workers, fresh_database_url)
    log = tmp_path / "trainer.log"
    try:
        workers.create_topics()
        scene.start_trainer()
        # The training records its outcome while the broker is down, then has to publish it.
        with registry_held(scene.dsn):
            asked = scene.ask()
            wait_until(
                lambda: trainer_waits_on_registry(scene.dsn),
                60,
                "the training to reach the registry",
            )
            private_kafka.stop()
        down_at = time.monotonic()
        wait_until(lambda: scene.reports("kafka", ok=False), 15, "/health to report Kafka")
        wait_until(lambda: scene.logged(asked.request_id) == 1, 30, "the outcome in the log")
        lines_at = len(log.read_bytes().splitlines())
        quiet_from = time.monotonic()
        scene.ride_out(down_at, "kafka", "Kafka")
        logged_lines = len(log.read_bytes().splitlines()) - lines_at
        per_second = logged_lines / (time.monotonic() - quiet_from)
        assert per_second < 1.0, log.read_text()[-4000:]

        private_kafka.start()
        back_at = time.monotonic()
        wait_until(lambda: scene.reports("kafka", ok=True), 30, "/health to be ok again")
        scene.exactly_one_outcome(asked.request_id, within=60)
        resumed_s = time.monotonic() - back_at
        scene.assert_alive()
        # And it still takes new requests.
        again = scene.ask()
        scene.exactly_one_outcome(again.request_id, within=60)
        print(
            f"FAULT broker-outage trainer: requests=2 lost=0 duplicated=0 "
            f"log_lines_per_s={per_second:.2f} outcome_s_after_restart={resumed_s:.1f}"
        )
    finally:
        # Its topics go with the private broker; deleting them would fail while it is down.
        workers.stop_all()


def test_trainer_killed_mid_training_trains_again(
    workers: Workers, fresh_database_url: str
) -> None:
    asyncio.run(seed(fresh_database_url, scenario()))
    workers.create_topics()
    scene = Scene(workers, fresh_database_url)
    scene.start_trainer()
    with registry_held(scene.dsn):
        asked = scene.ask()
        wait_until(
            lambda: trainer_waits_on_registry(scene.dsn), 60, "the training to reach the registry"
        )
        workers.kill(len(workers.procs) - 1)
    killed_at = time.monotonic()
    assert scene.logged(asked.request_id) == 0
    scene.start_trainer()
    outcome = scene.exactly_one_outcome(asked.request_id, within=120)
    recovered_s = time.monotonic() - killed_at
    print(
        f"FAULT trainer-kill-9 mid-training: requests=1 lost=0 duplicated=0 "
        f"outcome={outcome.status.value} outcome_s_after_kill={recovered_s:.1f}"
    )
