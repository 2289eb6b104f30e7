"""decode(encode(x)) == x for every event type, and what encode's bytes look like."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import EVENT_TYPES, TOPICS, Event
from tests.unit.schemas.strategies import EVENTS, make_codec

CODEC = make_codec()
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_decode_inverts_encode(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])
    decoded = CODEC.decode(event_type.TOPIC, CODEC.encode(event))
    assert decoded == event
    assert type(decoded) is event_type


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_encoding_is_compact_json_in_field_order(
    event_type: type[Event], data: st.DataObject
) -> None:
    event = data.draw(EVENTS[event_type])
    encoded = CODEC.encode(event)
    document = json.loads(encoded.decode("utf-8"))
    assert list(document) == list(event_type.model_fields)
    outside_strings = _JSON_STRING.sub('""', encoded.decode("utf-8"))
    assert not any(character.isspace() for character in outside_strings)
    assert CODEC.encode(CODEC.decode(event_type.TOPIC, encoded)) == encoded


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_key_is_the_topic_key_field(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(EVENTS[event_type])
    key_field = TOPICS[event_type.TOPIC].key_field
    document = json.loads(CODEC.encode(event))
    key = CODEC.key_of(event)
    if key_field == "key_b64":
        expected = base64.b64decode(document[key_field]) if document[key_field] else b""
        assert key == expected
    else:
        assert key == str(document[key_field]).encode()
