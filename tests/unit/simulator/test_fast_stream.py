"""The mixed-load benchmark's fast encoding says what the simulator's own events say."""

from __future__ import annotations

from collections import defaultdict

from retrainer.simulator.scenario import Scenario
from schemas.base import Event
from schemas.codec import Codec
from tests.bench.mixed_stream import MIX, encode_world, mixed_config


def test_fast_messages_decode_to_the_simulators_events_with_the_same_keys() -> None:
    scenario = Scenario(mixed_config(2000, seed=3))
    encoded = encode_world(scenario.world)
    expected: dict[str, list[tuple[bytes, Event]]] = defaultdict(list)
    for message in scenario.messages():
        assert message.event is not None
        expected[message.topic].append((message.key, message.event))
    codec = Codec()
    assert set(encoded.messages) == set(expected) == set(MIX)
    for topic, messages in encoded.messages.items():
        assert [key for key, _ in messages] == [key for key, _ in expected[topic]], topic
        decoded = [
            codec.decode_as(type(event), value)
            for (_, value), (_, event) in zip(messages, expected[topic], strict=True)
        ]
        assert decoded == [event for _, event in expected[topic]], topic


def test_the_mix_is_the_one_asked_for() -> None:
    counts = encode_world(Scenario(mixed_config(20_000)).world).counts
    total = sum(counts.values())
    for topic, share in MIX.items():
        assert abs(counts[topic] / total - share) < 0.01, (topic, counts)
