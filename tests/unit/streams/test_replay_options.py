"""The replay's plain parts: times from the command line, option checks, topic names, signals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.base import ModelFamily
from streams.rebuild import FamilyRecord
from streams.replay import ReplayError, ReplayOptions, parse_instant, resolve_topics, to_millis
from streams.settings import StreamsSettings
from streams.signals import SignalKind


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01 12:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),  # naive means UTC
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("1772366400000", datetime(2026, 3, 1, 12, tzinfo=UTC)),  # epoch milliseconds
    ],
)
def test_times_are_iso_8601_or_epoch_milliseconds_in_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected
    assert to_millis(parse_instant(text)) == int(expected.timestamp() * 1000)


@pytest.mark.parametrize("text", ["yesterday", "", "2026-13-01", "-5"])
def test_other_times_are_refused(text: str) -> None:
    with pytest.raises(ReplayError, match="ISO 8601"):
        parse_instant(text)


def test_options_refuse_an_empty_range_and_a_group_commit_after_a_start_time() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(ReplayError, match="after --from"):
        ReplayOptions(from_time=at, to_time=at)
    with pytest.raises(ReplayError, match="--from-beginning"):
        ReplayOptions(from_time=at, commit_group="retrainer-worker")
    with pytest.raises(ReplayError, match="at least 1"):
        ReplayOptions(batch_size=0)
    assert ReplayOptions(to_time=at, commit_group="retrainer-worker").commit_group


def test_topics_are_named_by_default_or_configured_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINER_TOPICS__EXPENSE_SHEET", "prod-sheets")
    settings = StreamsSettings()
    assert resolve_topics(settings, []) == {
        "expense-sheet": "prod-sheets",
        "customer-created": "customer-created",
        "customer-activity": "customer-activity",
        "expense-label": "expense-label",
    }
    assert resolve_topics(settings, ["prod-sheets", "expense-label"]) == {
        "expense-sheet": "prod-sheets",
        "expense-label": "expense-label",
    }
    with pytest.raises(ReplayError, match="not an upstream topic"):
        resolve_topics(settings, ["retrain-requested"])


def test_a_champion_becomes_a_promoted_signal_and_no_model_none() -> None:
    cutoff = datetime(2026, 3, 1, tzinfo=UTC)
    trained = cutoff + timedelta(minutes=5)
    record = FamilyRecord(ModelFamily.DELINQUENCY, "dq-7", cutoff, trained)
    signal = record.signal()
    assert signal is not None
    assert (signal.kind, signal.version, signal.data_cutoff, signal.sent_at) == (
        SignalKind.PROMOTED,
        "dq-7",
        cutoff,
        trained,
    )
    state = record.state()
    assert (state.model_version, state.cutoff, state.last_trained_at) == ("dq-7", cutoff, trained)
    nothing = FamilyRecord(ModelFamily.EXPENSE_FRAUD, None, None, None)
    assert nothing.signal() is None
    assert nothing.state().cutoff is None
