"""Admission rules: no data cutoff from the future, one request per request id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import KafkaError

from edge.producer import DeliveryFailed, FailedMessage
from schemas.base import ModelFamily
from schemas.retrain_requested import RetrainReason, RetrainRequested
from trainer.admission import (
    CUTOFF_IN_FUTURE,
    REQUEST_ID_REUSED,
    RequestIdentity,
    RequestRefused,
    check_cutoff,
    check_identity,
)
from trainer.errors import DependencyUnavailable
from trainer.publisher import MessageRejected, _failure
from trainer.settings import TrainerSettings

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def request(**changes: object) -> RetrainRequested:
    base = RetrainRequested(
        occurred_at=NOW,
        request_id=uuid.UUID("0b6f3a52-52a8-4f55-9b1e-5d1f6a3e9c11"),
        family=ModelFamily.DELINQUENCY,
        reason=RetrainReason.NEW_CUSTOMERS,
        reason_text="New customers: 75",
        counters={"new_customers": 75.0},
        data_cutoff=NOW - timedelta(minutes=1),
        force=False,
        requested_by="policy",
    )
    return base.model_copy(update=changes)


def test_the_default_skew_is_five_minutes_and_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TrainerSettings().max_cutoff_skew_s == 300
    monkeypatch.setenv("RETRAINER_MAX_CUTOFF_SKEW_S", "30")
    assert TrainerSettings().max_cutoff_skew_s == 30


@pytest.mark.parametrize(
    "cutoff", [NOW - timedelta(days=400), NOW, NOW + SKEW], ids=["past", "now", "skew"]
)
def test_a_cutoff_up_to_now_plus_the_skew_is_admitted(cutoff: datetime) -> None:
    check_cutoff(request(data_cutoff=cutoff), NOW, SKEW)


@pytest.mark.parametrize(
    "cutoff",
    [NOW + SKEW + timedelta(microseconds=1), datetime(2999, 1, 1, tzinfo=UTC)],
    ids=["just-after", "2999"],
)
def test_a_cutoff_from_the_future_is_refused(cutoff: datetime) -> None:
    with pytest.raises(RequestRefused) as refused:
        check_cutoff(request(data_cutoff=cutoff), NOW, SKEW)
    assert refused.value.reason == CUTOFF_IN_FUTURE
    assert cutoff.isoformat() in refused.value.detail


def test_a_resent_request_is_the_same_request() -> None:
    """A redelivery or a policy re-emit: new envelope and fresh counters, same request."""
    first = RequestIdentity.of(request())
    again = RequestIdentity.of(
        request(
            event_id=uuid.uuid4(),
            occurred_at=NOW + timedelta(hours=1),
            counters={"new_customers": 90.0},
            data_cutoff=(NOW - timedelta(minutes=1)).astimezone(datetime.now().astimezone().tzinfo),
        )
    )
    assert first.differences(again) == []
    check_identity(first, again)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"family": ModelFamily.EXPENSE_FRAUD}, "family expense-fraud (first delinquency)"),
        ({"data_cutoff": NOW - timedelta(days=1)}, "data_cutoff"),
        ({"force": True}, "force True (first False)"),
        ({"reason_text": "New customers: 76"}, "reason, reason_text or requested_by"),
        ({"reason": RetrainReason.MANUAL}, "reason, reason_text or requested_by"),
        ({"requested_by": "api"}, "reason, reason_text or requested_by"),
    ],
)
def test_the_same_id_asking_for_something_else_is_refused(
    change: dict[str, object], named: str
) -> None:
    first = RequestIdentity.of(request())
    other = RequestIdentity.of(request(**change))
    with pytest.raises(RequestRefused) as refused:
        check_identity(first, other)
    assert refused.value.reason == REQUEST_ID_REUSED
    assert named in refused.value.detail
    assert str(first.request_id) in refused.value.detail


def test_an_id_known_only_from_the_log_compares_what_the_log_kept() -> None:
    logged = RequestIdentity(
        request_id=request().request_id,
        family=ModelFamily.DELINQUENCY,
        data_cutoff=request().data_cutoff,
        force=False,
        content_sha256=None,
    )
    check_identity(logged, RequestIdentity.of(request(reason_text="worded otherwise")))
    with pytest.raises(RequestRefused):
        check_identity(logged, RequestIdentity.of(request(family=ModelFamily.EXPENSE_FRAUD)))


def test_kafka_refusing_a_message_is_told_apart_from_kafka_being_unavailable() -> None:
    def failed(*codes: int) -> DeliveryFailed:
        return DeliveryFailed(
            [FailedMessage("t", i, None, KafkaError(c)) for i, c in enumerate(codes)], 2
        )

    assert isinstance(_failure(failed(KafkaError.MSG_SIZE_TOO_LARGE)), MessageRejected)
    assert isinstance(_failure(failed(KafkaError.INVALID_RECORD)), MessageRejected)
    assert isinstance(_failure(failed(KafkaError._MSG_TIMED_OUT)), DependencyUnavailable)
    assert isinstance(
        _failure(failed(KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT)), DependencyUnavailable
    )
