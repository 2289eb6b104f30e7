"""The message stream: interleaved in time, valid where it should be, refused for known reasons."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrainer.simulator import malformed
from retrainer.simulator.events import UPSTREAM_TOPICS
from retrainer.simulator.scenario import Scenario
from schemas import Codec, DecodeError, ExpenseLabelled, ExpenseSheetSubmitted, RejectReason
from tests.unit.simulator.factories import config, noisy, small


def test_messages_come_in_time_order_with_the_topics_interleaved() -> None:
    messages = list(small().messages())
    times = [m.at for m in messages]
    assert times == sorted(times)
    topics = [m.topic for m in messages]
    assert set(topics) == set(UPSTREAM_TOPICS)
    # Interleaved: each topic's messages are spread over the stream, not bunched in one block.
    for topic in UPSTREAM_TOPICS:
        positions = [i for i, t in enumerate(topics) if t == topic]
        assert positions[-1] - positions[0] > len(messages) / 2


def test_keys_are_the_spec_key_fields() -> None:
    for message in small().messages():
        event = message.event
        assert event is not None
        expected = {
            "expense-sheet": "sheet_id",
            "customer-created": "customer_id",
            "customer-activity": "customer_id",
            "expense-label": "expense_id",
        }[message.topic]
        assert message.key == str(getattr(event, expected)).encode()


def test_valid_messages_decode_to_their_events() -> None:
    codec = Codec()
    for message in noisy().messages():
        if message.expected_reject is None:
            assert codec.decode(message.topic, message.value) == message.event


def test_bad_messages_are_refused_for_the_reason_in_the_bookkeeping() -> None:
    codec = Codec()
    scenario = noisy()
    verdicts: Counter[RejectReason] = Counter()
    for message in scenario.messages():
        if message.expected_reject is None:
            continue
        assert message.event is None
        with pytest.raises(DecodeError) as refused:
            codec.decode(message.topic, message.value)
        assert refused.value.reason == message.expected_reject, refused.value
        verdicts[refused.value.reason] += 1
    assert set(verdicts) == set(RejectReason), "every reason the codec knows shows up"
    bookkept = Counter(bad.reason for bad in scenario.bad_messages)
    assert bookkept == verdicts


def test_bookkeeping_names_the_replaced_events() -> None:
    scenario = noisy()
    events = {event.event_id for event in scenario.events()}
    delivered = {m.event.event_id for m in scenario.messages() if m.event is not None}
    replaced = {bad.replaced_event_id for bad in scenario.bad_messages}
    assert replaced <= events
    assert replaced == events - delivered


def test_legacy_sheets_upcast_to_the_same_event() -> None:
    codec = Codec()
    legacy = 0
    for message in noisy().messages():
        if message.topic == "expense-sheet" and message.event is not None:
            if b'"schema_version":1' in message.value:
                legacy += 1
            assert codec.decode(message.topic, message.value) == message.event
    assert legacy > 20


@pytest.mark.parametrize("topic", UPSTREAM_TOPICS)
def test_every_topic_has_a_way_to_fail_for_the_general_reasons(topic: str) -> None:
    general = {
        RejectReason.PAYLOAD_TOO_LARGE,
        RejectReason.INVALID_JSON,
        RejectReason.NOT_AN_OBJECT,
        RejectReason.MISSING_FIELD,
        RejectReason.WRONG_TYPE,
        RejectReason.INVALID_VALUE,
        RejectReason.UNKNOWN_SCHEMA_VERSION,
        RejectReason.STRING_TOO_LONG,
        RejectReason.UNKNOWN_FIELD,
    }
    assert general <= set(malformed.reasons_for(topic))


def test_sheets_can_fail_for_every_reason() -> None:
    assert set(malformed.reasons_for("expense-sheet")) == set(RejectReason)


def test_labels_refer_to_published_expenses() -> None:
    expense_ids: set[str] = set()
    for event in small().events():
        if isinstance(event, ExpenseSheetSubmitted):
            expense_ids.update(line.expense_id for line in event.lines)
        elif isinstance(event, ExpenseLabelled):
            assert event.expense_id in expense_ids


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    customers=st.integers(min_value=0, max_value=30),
    statements=st.integers(min_value=0, max_value=4),
    sheets=st.integers(min_value=0, max_value=30),
    bad_rate=st.sampled_from([0.0, 0.2, 1.0]),
)
def test_any_small_scenario_is_consistent(
    seed: int, customers: int, statements: int, sheets: int, bad_rate: float
) -> None:
    scenario = Scenario(
        config(
            seed=seed,
            customers=customers,
            statements=statements,
            sheets=sheets,
            bad_rate=bad_rate,
        )
    )
    codec = Codec()
    messages = list(scenario.messages())
    assert len(messages) == len(scenario)
    counts = Counter(m.topic for m in messages)
    assert counts["customer-created"] == customers
    assert counts["customer-activity"] == customers * statements
    assert counts["expense-sheet"] == sheets
    for message in messages:
        if message.expected_reject is not None:
            with pytest.raises(DecodeError) as refused:
                codec.decode(message.topic, message.value)
            assert refused.value.reason == message.expected_reject
            continue
        decoded = codec.decode(message.topic, message.value)
        assert decoded == message.event
        if isinstance(decoded, ExpenseSheetSubmitted):
            assert 1 <= len(decoded.lines) <= 30
