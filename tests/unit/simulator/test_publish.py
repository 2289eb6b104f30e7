"""The publisher's own logic: pacing, topic names, failure accounting (no broker needed)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from retrainer.simulator.config import ScenarioConfig
from retrainer.simulator.errors import SimulatorError
from retrainer.simulator.publish import (
    DEFAULT_BOOTSTRAP,
    KafkaSink,
    PublishOptions,
    TokenBucket,
    default_bootstrap,
)
from retrainer.simulator.scenario import SimMessage
from tests.unit.simulator.factories import config


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_paces_to_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100.0, burst=5, clock=clock)
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.01)
    assert bucket.take() == pytest.approx(0.02)
    clock.now += 0.03  # the caller waited: the debt is paid and one more token accrued
    assert bucket.take() == pytest.approx(0.0)


def test_token_bucket_sustains_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=250.0, clock=clock)
    began = clock.now
    for _ in range(1000):
        clock.now += bucket.take()
    # 1000 messages at 250/s, less the initial burst of 25, take 3.9 s.
    assert clock.now - began == pytest.approx((1000 - 25) / 250.0, rel=0.01)


def test_token_bucket_refuses_a_non_positive_rate() -> None:
    with pytest.raises(SimulatorError):
        TokenBucket(rate=0)


def test_topic_names_take_overrides_then_prefix() -> None:
    options = PublishOptions(
        topic_prefix="demo-", topic_overrides={"expense-label": "audit.labels"}
    )
    assert options.topic_name("expense-sheet") == "demo-expense-sheet"
    assert options.topic_name("expense-label") == "audit.labels"
    assert PublishOptions().topic_name("customer-created") == "customer-created"


def test_bootstrap_defaults_to_the_environment_then_the_local_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RETRAINER_KAFKA_BOOTSTRAP", raising=False)
    assert default_bootstrap() == DEFAULT_BOOTSTRAP == "127.0.0.1:19092"
    monkeypatch.setenv("RETRAINER_KAFKA_BOOTSTRAP", "kafka:9092")
    assert default_bootstrap() == "kafka:9092"
    assert PublishOptions().bootstrap == "kafka:9092"


def test_options_refuse_a_non_positive_rate() -> None:
    with pytest.raises(SimulatorError):
        PublishOptions(rate=0.0)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nobody listens on: connections to it are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


def _message(i: int) -> SimMessage:
    return SimMessage(
        position=i,
        topic="expense-label",
        key=f"EXP-{i}".encode(),
        value=b"{}",
        at=datetime(2025, 1, 1, tzinfo=UTC),
        event=None,
        expected_reject=None,
    )


def test_undeliverable_messages_are_counted_never_ignored(closed_port: int) -> None:
    sink = KafkaSink(PublishOptions(bootstrap=f"127.0.0.1:{closed_port}", delivery_timeout_s=1.0))
    for i in range(3):
        sink.send(_message(i))
    sink.close()
    assert sink.failures == 3
    assert sum(sink.delivered.values()) == 0
    assert sink.failure_samples
    assert "expense-label" in sink.failure_samples[0]
    assert sink.client_errors, "the reason (no broker) is kept for the summary"


def test_an_unreachable_broker_is_reported_with_what_to_do(closed_port: int) -> None:
    sink = KafkaSink(PublishOptions(bootstrap=f"127.0.0.1:{closed_port}"))
    with pytest.raises(SimulatorError, match="stack up"):
        sink.check_reachable(timeout_s=1.0)
    sink.close()


def test_scenario_end_can_be_anchored() -> None:
    settings = config(customers=5, statements=2, sheets=3)
    end = datetime(2026, 6, 1, tzinfo=UTC)
    anchored = replace(settings, start=settings.latest_start(end))
    assert anchored.origin + anchored.span <= end
    assert ScenarioConfig().origin + ScenarioConfig().span <= datetime(2026, 1, 1, tzinfo=UTC)
