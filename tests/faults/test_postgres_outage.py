"""PostgreSQL stopped for ~20 s under a running worker: it waits, says so, and resumes.

While the database is down the worker stays alive, `/health` answers 503 naming PostgreSQL, the
status endpoint answers 503 with a reason (not 500); once it is back, storing resumes within
seconds and every event produced during the outage is stored exactly once.
"""

from __future__ import annotations

import threading
import time

from tests.factories import customer, publish, wait_until
from tests.faults.conftest import PrivatePostgres, call, customers_in
from tests.integration.streams.conftest import Workers

OUTAGE_S = 20.0
PER_TICK = 25


def test_worker_rides_out_a_postgres_outage(
    workers_on_private_db: Workers, private_postgres: PrivatePostgres
) -> None:
    workers = workers_on_private_db
    workers.create_topics()
    port = workers.start()
    made = 0
    stop = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        nonlocal made
        try:
            while not stop.is_set():
                chunk = [customer(made + i, workers.prefix) for i in range(PER_TICK)]
                publish(workers.stack.bootstrap, workers.topic("customer-created"), chunk)
                made += PER_TICK
                stop.wait(0.2)  # the stream's pace
        except (RuntimeError, OSError) as exc:
            errors.append(exc)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        wait_until(lambda: customers_in(private_postgres.dsn) > 200, 60, "the worker to be storing")
        private_postgres.stop()
        down_at = time.monotonic()

        def reports_outage() -> bool:
            status, body = call(port, "/health")
            return status == 503 and body["database"] is False and body["kafka"] is True

        wait_until(reports_outage, 20, "/health to report PostgreSQL down")
        _, health = call(port, "/health")
        assert "PostgreSQL" in health["checks"]["database"]["reason"]
        status, body = call(port, "/retraining/status")
        assert status == 503, body
        assert body["reason"] == "dependency_unavailable"
        assert "PostgreSQL" in body["error"]
        # The outage lasts OUTAGE_S in all; the worker must stay up throughout.
        wait_until(
            lambda: workers.procs[0].poll() is None and time.monotonic() - down_at > OUTAGE_S,
            OUTAGE_S + 10,
            "the outage to last its time",
        )
        assert workers.procs[0].poll() is None, "the worker died during the outage"

        private_postgres.start()
        back_at = time.monotonic()
        at_restart = customers_in(private_postgres.dsn)
        # Back-off is capped at 5 s (RETRAINER_SINK_RETRY_MAX_S): well within this deadline; the
        # old 30 s cap would miss it.
        wait_until(lambda: customers_in(private_postgres.dsn) > at_restart, 15, "storing to resume")
        resumed_s = time.monotonic() - back_at
        wait_until(lambda: call(port, "/health")[0] == 200, 30, "/health to be ok again")
    finally:
        stop.set()
        producer.join(timeout=60)
    assert not errors, errors
    wait_until(lambda: customers_in(private_postgres.dsn) == made, 90, "every event stored")
    assert workers.procs[0].poll() is None
    status, _ = call(port, "/retraining/status")
    assert status == 200
    print(
        f"FAULT postgres-outage worker: produced={made} lost=0 duplicated=0 "
        f"resumed_s={resumed_s:.1f}"
    )
