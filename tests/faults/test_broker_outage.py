"""The Kafka broker stopped for ~20 s under a running worker mid-stream, then started again.

The worker must stay alive, say on `/health` that Kafka is unreachable, keep answering what
needs only PostgreSQL, and afterwards store everything (nothing lost, nothing twice) and still
turn a trigger into a retrain request: no agent may have died with the broker.
"""

from __future__ import annotations

import time
from pathlib import Path

from schemas.retrain_requested import RetrainRequested
from tests.conftest import Stack
from tests.factories import CODEC, customer, publish, wait_until
from tests.faults.conftest import PrivateKafka, call, customers_in
from tests.integration.streams.conftest import Workers, read_all

OUTAGE_S = 20.0
BEFORE = 20_000
AFTER = 2_000


def test_worker_rides_out_a_broker_outage(
    stack: Stack, private_kafka: PrivateKafka, fresh_database_url: str, tmp_path: Path
) -> None:
    workers = Workers(
        Stack(private_kafka.bootstrap, stack.dsn, stack.session_id), fresh_database_url, tmp_path
    )
    try:
        workers.create_topics()
        port = workers.start()
        bootstrap = private_kafka.bootstrap
        publish(
            bootstrap,
            workers.topic("customer-created"),
            [customer(n, workers.prefix) for n in range(BEFORE)],
        )
        wait_until(lambda: customers_in(fresh_database_url) > 1000, 60, "the worker to be storing")
        private_kafka.stop()
        down_at = time.monotonic()
        stored_at_stop = customers_in(fresh_database_url)

        def reports_outage() -> bool:
            status, body = call(port, "/health")
            return status == 503 and body["kafka"] is False and body["database"] is True

        wait_until(reports_outage, 30, "/health to report Kafka down")
        assert "Kafka" in call(port, "/health")[1]["checks"]["kafka"]["reason"]
        # What needs only PostgreSQL still answers.
        assert call(port, "/retraining/status")[0] == 200
        wait_until(
            lambda: workers.procs[0].poll() is None and time.monotonic() - down_at > OUTAGE_S,
            OUTAGE_S + 10,
            "the outage to last its time",
        )
        assert workers.procs[0].poll() is None, "the worker died during the outage"

        private_kafka.start()
        back_at = time.monotonic()
        wait_until(lambda: call(port, "/health")[0] == 200, 60, "/health to be ok again")
        publish(
            bootstrap,
            workers.topic("customer-created"),
            [customer(n, workers.prefix) for n in range(BEFORE, BEFORE + AFTER)],
        )
        wait_until(
            lambda: customers_in(fresh_database_url) == BEFORE + AFTER,
            120,
            "every event stored",
        )
        resumed_s = time.monotonic() - back_at
        assert workers.procs[0].poll() is None

        # Every agent survived: a forced trigger still becomes a retrain request.
        status, answer = call(port, "/retraining/trigger", {"family": "delinquency", "force": True})
        assert status == 202, answer

        def requested() -> bool:
            raw = read_all(bootstrap, workers.topic("retrain-requested"))
            ids = {str(CODEC.decode_as(RetrainRequested, v).request_id) for _, v in raw}
            return answer["request_id"] in ids

        wait_until(requested, 60, "the trigger to reach the retrain-requested topic")
        print(
            f"FAULT broker-outage worker: produced={BEFORE + AFTER} stored_at_stop="
            f"{stored_at_stop} lost=0 duplicated=0 all_stored_s_after_restart={resumed_s:.1f}"
        )
    finally:
        workers.close()
