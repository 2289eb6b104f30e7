"""Scored events are built from checked values without pydantic's second look: each one must be
exactly the event the pydantic model would have made of the same values, on the wire too."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest

from schemas.base import Event, ModelFamily, new_event_ids
from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST, ModelBundle, Scores
from schemas.codec import Codec
from streams.scoring_frames import LoadedModel, customer_scores, expense_scores

# Edges of what a model gives: NaN, infinities, probabilities outside [0, 1], ordinary values.
RAW = np.array([0.25, np.nan, np.inf, -np.inf, -0.5, 1.5, 0.0, 1.0, -0.0, 0.1 + 0.2])
FLAGS = np.array([True, False] * 5)


def _model(family: ModelFamily, roles: tuple[str, ...]) -> LoadedModel:
    bundle = ModelBundle(family, dict.fromkeys(roles, object()), ("f",), 0.5)
    return LoadedModel(family, "v-7", bundle)


def _validated(event: Event) -> Event:
    """The same event made by pydantic from the built one's values (fields set alike)."""
    values = {name: getattr(event, name) for name in event.model_fields_set}
    values["event_id"] = event.event_id
    made = type(event)(**values)
    assert made.model_fields_set == event.model_fields_set | {"event_id"}
    return made


def _same(built: list[Any], count: int) -> None:
    codec = Codec()
    assert len(built) == count
    assert len({event.event_id for event in built}) == count
    for event in built:
        made = _validated(event)
        assert event == made
        assert list(event.__dict__) == list(made.__dict__)
        assert event.model_fields_set == made.model_fields_set - {"event_id"}
        assert codec.encode(event) == codec.encode(made)
        assert codec.decode_as(type(event), codec.encode(event)) == event
        assert repr(event) == repr(made)


@pytest.mark.parametrize(
    ("roles", "anomaly"),
    [
        ((ISOLATION_FOREST, RANDOM_FOREST), RAW[::-1].copy()),
        ((ISOLATION_FOREST,), None),
    ],
)
def test_expense_scores_are_the_events_pydantic_would_make(
    roles: tuple[str, ...], anomaly: np.ndarray | None
) -> None:
    lines = pd.DataFrame(
        {"expense_id": [f"e-{n}" for n in range(10)], "sheet_id": ["s-1"] * 5 + ["s-2"] * 5}
    )
    model = _model(ModelFamily.EXPENSE_FRAUD, roles)
    scores = Scores(RAW, FLAGS, anomaly_score=anomaly)
    for run in (None, "run-1"):
        events = expense_scores(lines, model, scores, run)
        _same(events, 10)
        assert (events[0].fraud_probability is None) is (RANDOM_FOREST not in roles)
    unscored = expense_scores(lines, None, None)
    _same(unscored, 10)
    assert {(e.model_version, e.anomaly_score, e.is_flagged) for e in unscored} == {
        (None, None, False)
    }


def test_customer_scores_are_the_events_pydantic_would_make() -> None:
    statements = pd.DataFrame(
        {"statement_id": [f"st-{n}" for n in range(10)], "customer_id": ["c-1", "c-2"] * 5}
    )
    model = _model(ModelFamily.DELINQUENCY, ("xgboost",))
    for run in (None, "run-1"):
        events = customer_scores(statements, model, Scores(RAW, FLAGS), run)
        _same(events, 10)
        assert [e.delinquency_probability for e in events][:3] == [0.25, None, None]
    _same(customer_scores(statements, model, None), 10)
    _same(customer_scores(statements, None, None), 10)
    assert customer_scores(statements.iloc[:0], model, Scores(RAW[:0], FLAGS[:0])) == []


def test_new_event_ids_are_what_uuid4_makes() -> None:
    ids = new_event_ids(2000)
    assert len(set(ids)) == 2000
    for event_id in ids:
        assert type(event_id) is uuid.UUID
        assert event_id.version == 4
        assert event_id.variant == uuid.RFC_4122
        assert event_id.is_safe is uuid.SafeUUID.unknown
        assert uuid.UUID(str(event_id)) == event_id
        assert hash(event_id) == hash(uuid.UUID(bytes=event_id.bytes))
    assert new_event_ids(0) == []
    # Every random bit is used: across many ids, each of the 122 free bits takes both values.
    ones = 0
    zeros = 0
    for event_id in ids:
        ones |= event_id.int
        zeros |= ~event_id.int
    fixed = (0xF000 << 64) | (0xC000 << 48)
    assert (ones & zeros) | fixed == (1 << 128) - 1
