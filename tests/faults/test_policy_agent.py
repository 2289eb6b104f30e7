"""The policy agent under odd input: triggers in one debounce window, signals it cannot use.

Two triggers within the debounce are one training, so both callers must be given that training's
id; a signal whose trigger cannot become a request is dead-lettered and the agent goes on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.base import ModelFamily
from schemas.dead_letter import DeadLettered
from schemas.retrain_requested import RetrainRequested
from streams.signals import PolicySignal, SignalKind
from tests.factories import CODEC, publish, wait_until
from tests.faults.conftest import call
from tests.integration.streams.conftest import Workers, read_all


def _trigger(port: int, body: dict[str, Any]) -> tuple[int, Any]:
    return call(port, "/retraining/trigger", body)


def _requests(workers: Workers) -> list[RetrainRequested]:
    raw = read_all(workers.stack.bootstrap, workers.topic("retrain-requested"))
    return [CODEC.decode_as(RetrainRequested, value) for _, value in raw]


def test_two_triggers_in_one_window_are_told_the_id_that_is_trained(workers: Workers) -> None:
    workers.extra_env["RETRAINER_POLICY_DEBOUNCE_S"] = "3"
    workers.create_topics()
    port = workers.start()
    first = _trigger(port, {"family": "delinquency", "force": True, "requested_by": "alice"})
    second = _trigger(port, {"family": "delinquency", "force": True, "requested_by": "bob"})
    assert first[0] == second[0] == 202, (first, second)
    assert first[1]["request_id"] == second[1]["request_id"]
    wanted = first[1]["request_id"]
    wait_until(lambda: _requests(workers), 60, "the request to be sent")
    requests = _requests(workers)
    assert {str(r.request_id) for r in requests} == {wanted}

    # A third caller while it is in flight is told the same id.
    def in_flight() -> bool:
        status, answer = _trigger(port, {"family": "delinquency", "force": True})
        return status == 202 and answer["status"] == "already_in_flight"

    wait_until(in_flight, 30, "the mirror to show the request in flight")
    assert _trigger(port, {"family": "delinquency"})[1]["request_id"] == wanted


def test_a_signal_that_cannot_become_a_request_is_dead_lettered(workers: Workers) -> None:
    workers.create_topics()
    port = workers.start()
    # Straight onto the internal topic, past the HTTP checks: a NUL PostgreSQL refuses.
    bad = PolicySignal(
        kind=SignalKind.MANUAL,
        family=ModelFamily.DELINQUENCY,
        sent_at=datetime.now(UTC),
        request_id=uuid.UUID(int=7),
        requested_by="eve\x00",
        force=True,
    )
    publish(
        workers.stack.bootstrap, workers.topic("policy-signals"), [(b"delinquency", bad.encode())]
    )

    def dead_lettered() -> list[DeadLettered]:
        raw = read_all(workers.stack.bootstrap, workers.topic("dead-letter"))
        letters = [CODEC.decode_as(DeadLettered, value) for _, value in raw]
        return [x for x in letters if x.stage == "policy"]

    letters = wait_until(dead_lettered, 60, "the bad signal in dead-letter")
    assert isinstance(letters, list)
    assert letters[0].source_topic == workers.topic("policy-signals")
    # The agent lives: a proper trigger still becomes a request.
    status, answer = _trigger(port, {"family": "delinquency", "force": True})
    assert status == 202, answer
    wait_until(
        lambda: answer["request_id"] in {str(r.request_id) for r in _requests(workers)},
        60,
        "the next trigger to be sent",
    )
    assert workers.procs[0].poll() is None
