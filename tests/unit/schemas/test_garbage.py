"""Garbage in, DecodeError out: bytes and JSON of any shape never raise anything else."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import TOPICS, DecodeError, Event, RejectReason
from tests.unit.schemas.strategies import EVENTS, json_values, make_codec

CODEC = make_codec()
TOPIC_NAMES = sorted(TOPICS)


def decode_or_reason(topic: str, data: bytes) -> Event | RejectReason:
    """The event, or the reason it was rejected; any other exception fails the test."""
    try:
        return CODEC.decode(topic, data)
    except DecodeError as error:
        rejection = error
    assert isinstance(rejection.reason, RejectReason)
    assert rejection.detail
    return rejection.reason


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(TOPIC_NAMES), data=st.binary(max_size=512))
def test_arbitrary_bytes_raise_only_decode_error(topic: str, data: bytes) -> None:
    assert isinstance(decode_or_reason(topic, data), RejectReason)


@settings(max_examples=300, deadline=None)
@given(topic=st.sampled_from(TOPIC_NAMES), value=json_values)
def test_arbitrary_json_raises_only_decode_error(topic: str, value: Any) -> None:
    outcome = decode_or_reason(topic, json.dumps(value).encode())
    if not isinstance(value, dict):
        assert outcome is RejectReason.NOT_AN_OBJECT


@pytest.mark.parametrize("topic", TOPIC_NAMES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_valid_shapes_with_arbitrary_values_raise_only_decode_error(
    topic: str, data: st.DataObject
) -> None:
    """Every field of a valid message, replaced by any JSON value, at any depth."""
    event = data.draw(EVENTS[TOPICS[topic].event_type])
    document = json.loads(CODEC.encode(event))
    _scramble(document, data)
    decode_or_reason(topic, json.dumps(document).encode())


def _scramble(node: Any, data: st.DataObject) -> None:
    if isinstance(node, dict):
        for name in list(node):
            if data.draw(st.booleans()):
                node[name] = data.draw(json_values)
            else:
                _scramble(node[name], data)
    elif isinstance(node, list):
        for item in node:
            _scramble(item, data)


_V1_KEYS = ("event_id", "occurred_at", "sheet_id", "employee", "currency", "items")


@settings(max_examples=200, deadline=None)
@given(
    fields=st.dictionaries(st.sampled_from(_V1_KEYS), json_values),
    items=st.none() | st.lists(st.dictionaries(st.text(max_size=12), json_values), max_size=3),
)
def test_v1_payloads_of_any_shape_raise_only_decode_error(
    fields: dict[str, Any], items: list[Any] | None
) -> None:
    """The upcaster sees whatever claims to be v1 and must never crash the codec."""
    payload: dict[str, Any] = {**fields, "schema_version": 1}
    if items is not None:
        payload["items"] = items
    decode_or_reason("expense-sheet", json.dumps(payload).encode())
