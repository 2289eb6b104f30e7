"""The retraining policy, table-driven: every trigger and edge, debounce, re-emit, cutoff."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from schemas.base import ModelFamily
from schemas.minimums import DataMinimums
from schemas.retrain_requested import RetrainReason
from streams.policy import (
    Action,
    Counters,
    FamilyState,
    InFlight,
    ManualTrigger,
    PolicyConfig,
    decide,
    finish_flight,
    minimum_data_gaps,
    model_promoted,
    reemit_flight,
    start_flight,
)
from streams.settings import StreamsSettings

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CONFIG = PolicyConfig()
FRAUD = ModelFamily.EXPENSE_FRAUD
DELINQ = ModelFamily.DELINQUENCY

# Enough stored data that the minimum-data gate is open.
PLENTY = Counters(
    observed_at=NOW,
    total_expenses=500,
    sheets_with_min_lines=20,
    total_customers=500,
    total_statements=3000,
    labelled_observations=2000,
    delinquent_observations=150,
    train_labelled_observations=1200,
    train_delinquent_observations=90,
)


def counters(**changes: int | datetime) -> Counters:
    return replace(PLENTY, **changes)  # type: ignore[arg-type]


CASES = [
    # (id, family, counters, state changes, action, reason, text)
    (
        "sheets below threshold",
        FRAUD,
        counters(new_sheets=9),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "sheets at threshold",
        FRAUD,
        counters(new_sheets=10),
        {},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 10",
    ),
    (
        "sheets above threshold",
        FRAUD,
        counters(new_sheets=14),
        {},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 14",
    ),
    (
        "customers below threshold",
        DELINQ,
        counters(new_customers=49),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "customers at threshold",
        DELINQ,
        counters(new_customers=50),
        {},
        Action.REQUEST,
        RetrainReason.NEW_CUSTOMERS,
        "New customers: 50",
    ),
    (
        "customers as in the seed",
        DELINQ,
        counters(new_customers=75),
        {},
        Action.REQUEST,
        RetrainReason.NEW_CUSTOMERS,
        "New customers: 75",
    ),
    (
        "sheets do not trigger delinquency",
        DELINQ,
        counters(new_sheets=99),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "customers do not trigger fraud",
        FRAUD,
        counters(new_customers=99),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "anomaly rate inside band",
        FRAUD,
        counters(window_scored=1000, window_flagged=100),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "anomaly rate at low edge",
        FRAUD,
        counters(window_scored=1000, window_flagged=50),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "anomaly rate below band",
        FRAUD,
        counters(window_scored=1000, window_flagged=49),
        {},
        Action.REQUEST,
        RetrainReason.ANOMALY_RATE_LOW,
        "Anomaly rate 4.9% below 5%",
    ),
    (
        "anomaly rate at high edge",
        FRAUD,
        counters(window_scored=1000, window_flagged=300),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "anomaly rate above band",
        FRAUD,
        counters(window_scored=1000, window_flagged=301),
        {},
        Action.REQUEST,
        RetrainReason.ANOMALY_RATE_HIGH,
        "Anomaly rate 30.1% above 30%",
    ),
    (
        "anomaly rate below minimum sample",
        FRAUD,
        counters(window_scored=199, window_flagged=0),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "anomaly rate at minimum sample",
        FRAUD,
        counters(window_scored=200, window_flagged=0),
        {},
        Action.REQUEST,
        RetrainReason.ANOMALY_RATE_LOW,
        "Anomaly rate 0.0% below 5%",
    ),
    (
        "interval with new data",
        DELINQ,
        counters(new_statements=3),
        {"last_trained_at": NOW - timedelta(hours=24)},
        Action.REQUEST,
        RetrainReason.INTERVAL,
        "Last training 24 h ago",
    ),
    (
        "interval just short",
        DELINQ,
        counters(new_statements=3),
        {"last_trained_at": NOW - timedelta(hours=23, minutes=59)},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "interval without new data",
        FRAUD,
        counters(),
        {"last_trained_at": NOW - timedelta(days=3)},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "interval for fraud counts labels",
        FRAUD,
        counters(new_labels=1),
        {"last_trained_at": NOW - timedelta(days=3)},
        Action.REQUEST,
        RetrainReason.INTERVAL,
        "Last training 72 h ago",
    ),
    (
        "never trained: no interval trigger",
        FRAUD,
        counters(new_sheets=3),
        {},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "threshold wins over interval",
        FRAUD,
        counters(new_sheets=10),
        {"last_trained_at": NOW - timedelta(days=3)},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 10",
    ),
    (
        "minimum data blocks fraud",
        FRAUD,
        counters(new_sheets=10, total_expenses=49),
        {},
        Action.BLOCKED,
        RetrainReason.NEW_SHEETS,
        "at least 50 expenses; found 49",
    ),
    (
        "minimum sheets block fraud",
        FRAUD,
        counters(new_sheets=10, sheets_with_min_lines=1),
        {},
        Action.BLOCKED,
        RetrainReason.NEW_SHEETS,
        "at least 2 sheets with 5+ expenses each; found 1",
    ),
    (
        "minimum data exactly met",
        FRAUD,
        counters(new_sheets=10, total_expenses=50, sheets_with_min_lines=2),
        {},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 10",
    ),
    (
        "minimum labelled observations block delinquency",
        DELINQ,
        counters(new_customers=60, labelled_observations=99),
        {},
        Action.BLOCKED,
        RetrainReason.NEW_CUSTOMERS,
        "at least 100 labelled observations (statements whose 92-day horizon ended by the "
        "cutoff); found 99",
    ),
    (
        "too few delinquent observations block delinquency",
        DELINQ,
        counters(new_customers=60, labelled_observations=500, delinquent_observations=9),
        {},
        Action.BLOCKED,
        RetrainReason.NEW_CUSTOMERS,
        "at least 10 delinquent and 1 sound observation; found 9 delinquent of 500",
    ),
    (
        "only delinquent observations block delinquency",
        DELINQ,
        counters(new_customers=60, labelled_observations=120, delinquent_observations=120),
        {},
        Action.BLOCKED,
        RetrainReason.NEW_CUSTOMERS,
        "at least 10 delinquent and 1 sound observation; found 120 delinquent of 120",
    ),
    (
        "rest after a request without a new model: nothing stored since its cutoff",
        FRAUD,
        counters(new_sheets=12, newest_stored_at=NOW - timedelta(minutes=5)),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.HELD,
        RetrainReason.NEW_SHEETS,
        "New sheets: 12; resting until data stored after 2026-11-21T11:59:00+00:00 arrives "
        "(the last request saw everything before and ended without a new model)",
    ),
    (
        "rest with nothing stored at all",
        DELINQ,
        counters(new_customers=60),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.HELD,
        RetrainReason.NEW_CUSTOMERS,
        "New customers: 60; resting until data stored after",
    ),
    (
        "rest with the newest row stored exactly at the cutoff",
        FRAUD,
        counters(new_sheets=12, newest_stored_at=NOW - timedelta(minutes=1)),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.HELD,
        RetrainReason.NEW_SHEETS,
        "resting until data stored after",
    ),
    (
        "rest over once a row is stored after the cutoff, however soon",
        FRAUD,
        counters(new_sheets=12, newest_stored_at=NOW - timedelta(seconds=59)),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 12",
    ),
    (
        "a rejection rests the anomaly-rate trigger on identical data",
        FRAUD,
        counters(window_scored=400, window_flagged=200, newest_stored_at=NOW - timedelta(hours=1)),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.HELD,
        RetrainReason.ANOMALY_RATE_HIGH,
        "Anomaly rate 50.0% above 30% (400 scored in 30 days); resting until data stored",
    ),
    (
        "the anomaly-rate trigger asks again once new data is stored",
        FRAUD,
        counters(window_scored=400, window_flagged=200, newest_stored_at=NOW),
        {"rests_until_data_after": NOW - timedelta(minutes=1)},
        Action.REQUEST,
        RetrainReason.ANOMALY_RATE_HIGH,
        "Anomaly rate 50.0% above 30% (400 scored in 30 days)",
    ),
    (
        "the rest is no timer: it still holds a day later",
        DELINQ,
        counters(new_customers=60, newest_stored_at=NOW - timedelta(days=1)),
        {"rests_until_data_after": NOW - timedelta(days=1)},
        Action.HELD,
        RetrainReason.NEW_CUSTOMERS,
        "resting until data stored after",
    ),
    (
        "sheets held by the minimum interval",
        FRAUD,
        counters(new_sheets=10),
        {"last_trained_at": NOW - timedelta(minutes=3)},
        Action.HELD,
        RetrainReason.NEW_SHEETS,
        "New sheets: 10; held until 2026-11-21T12:07:00+00:00 by the minimum interval between "
        "automatic trainings (10 min after the last training, 2026-11-21T11:57:00+00:00)",
    ),
    (
        "customers held by the minimum interval",
        DELINQ,
        counters(new_customers=80),
        {"last_trained_at": NOW - timedelta(seconds=1)},
        Action.HELD,
        RetrainReason.NEW_CUSTOMERS,
        "New customers: 80; held until 2026-11-21T12:09:59+00:00",
    ),
    (
        "anomaly rate held by the minimum interval",
        FRAUD,
        counters(window_scored=1000, window_flagged=400),
        {"last_trained_at": NOW - timedelta(minutes=9, seconds=59)},
        Action.HELD,
        RetrainReason.ANOMALY_RATE_HIGH,
        "Anomaly rate 40.0% above 30% (1000 scored in 30 days); held until "
        "2026-11-21T12:00:01+00:00",
    ),
    (
        "minimum interval just over",
        FRAUD,
        counters(new_sheets=37),
        {"last_trained_at": NOW - timedelta(minutes=10)},
        Action.REQUEST,
        RetrainReason.NEW_SHEETS,
        "New sheets: 37",
    ),
    (
        "nothing due: nothing held",
        FRAUD,
        counters(new_sheets=9),
        {"last_trained_at": NOW - timedelta(minutes=1)},
        Action.NONE,
        None,
        "No training needed",
    ),
    (
        "never trained: nothing to hold",
        DELINQ,
        counters(new_customers=50),
        {"last_trained_at": None},
        Action.REQUEST,
        RetrainReason.NEW_CUSTOMERS,
        "New customers: 50",
    ),
    (
        "the rest holds past the interval until new data",
        FRAUD,
        counters(new_sheets=10, newest_stored_at=NOW - timedelta(minutes=20)),
        {
            "last_trained_at": NOW - timedelta(minutes=19),
            "rests_until_data_after": NOW - timedelta(minutes=20),
        },
        Action.HELD,
        RetrainReason.NEW_SHEETS,
        "resting until data stored after 2026-11-21T11:40:00+00:00 arrives",
    ),
    (
        "new data ends the rest; the interval still holds",
        FRAUD,
        counters(new_sheets=10, newest_stored_at=NOW),
        {
            "last_trained_at": NOW - timedelta(minutes=2),
            "rests_until_data_after": NOW - timedelta(minutes=2),
        },
        Action.HELD,
        RetrainReason.NEW_SHEETS,
        "held until 2026-11-21T12:08:00+00:00 by the minimum interval",
    ),
    (
        "missing data is told before a hold",
        FRAUD,
        counters(new_sheets=10, total_expenses=49),
        {"last_trained_at": NOW - timedelta(minutes=1)},
        Action.BLOCKED,
        RetrainReason.NEW_SHEETS,
        "at least 50 expenses; found 49",
    ),
]


@pytest.mark.parametrize(
    ("family", "snapshot", "state_changes", "action", "reason", "text"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decision_table(
    family: ModelFamily,
    snapshot: Counters,
    state_changes: dict[str, object],
    action: Action,
    reason: RetrainReason | None,
    text: str,
) -> None:
    state = replace(FamilyState(family), **state_changes)  # type: ignore[arg-type]
    decision = decide(family, snapshot, state, CONFIG, NOW)
    assert decision.action is action
    assert decision.reason is reason
    assert text in decision.reason_text


def _in_flight(family: ModelFamily, sent_at: datetime) -> FamilyState:
    decision = decide(
        family, counters(new_customers=60, new_sheets=10), FamilyState(family), CONFIG, sent_at
    )
    assert decision.action is Action.REQUEST
    return start_flight(FamilyState(family), decision, uuid.uuid4(), sent_at, sent_at)


def test_in_flight_request_debounces_every_trigger() -> None:
    state = _in_flight(DELINQ, NOW)
    busy = counters(new_customers=500)
    assert decide(DELINQ, busy, state, CONFIG, NOW + timedelta(minutes=14)).action is Action.WAIT
    manual = ManualTrigger(uuid.uuid4(), "ops", force=True)
    assert decide(DELINQ, busy, state, CONFIG, NOW, manual).action is Action.WAIT


def test_timeout_reemits_the_same_request() -> None:
    state = _in_flight(DELINQ, NOW)
    assert state.in_flight is not None
    late = NOW + CONFIG.request_timeout
    decision = decide(DELINQ, counters(new_customers=60), state, CONFIG, late)
    assert decision.action is Action.REEMIT
    assert "New customers: 60" in decision.reason_text
    again = reemit_flight(state, late)
    assert again.in_flight is not None
    assert again.in_flight.request_id == state.in_flight.request_id
    assert again.in_flight.emits == 2
    assert (
        decide(
            DELINQ, counters(new_customers=60), again, CONFIG, late + timedelta(minutes=1)
        ).action
        is Action.WAIT
    )


def test_cutoff_moves_to_the_request_so_events_during_training_still_count() -> None:
    requested_at = NOW
    state = _in_flight(DELINQ, requested_at)
    assert state.in_flight is not None
    finished = finish_flight(
        state,
        state.in_flight.request_id,
        trained=True,
        data_cutoff=requested_at,
        model_version="auto_retrain_20261121_120500",
        now=NOW + timedelta(minutes=5),
    )
    # The cutoff is the request's data cutoff, not the moment the answer came back: the 12
    # customers stored while the model trained are counted against it.
    assert finished.cutoff == requested_at
    assert finished.in_flight is None
    assert finished.last_trained_at == NOW + timedelta(minutes=5)
    assert finished.model_version == "auto_retrain_20261121_120500"


def test_a_stale_answer_does_not_clear_the_current_request() -> None:
    state = _in_flight(DELINQ, NOW)
    after = finish_flight(state, uuid.uuid4(), True, NOW, "v", NOW)
    assert after == state


@pytest.mark.parametrize(
    ("trained", "version", "cutoff_moves", "rests"),
    [
        (False, None, False, True),  # skipped or failed
        (True, None, True, True),  # rejected by the gate
        (True, "v2", True, False),  # promoted
    ],
    ids=["skipped", "rejected", "promoted"],
)
def test_an_answer_without_a_new_champion_rests_until_data_after_its_cutoff(
    trained: bool, version: str | None, cutoff_moves: bool, rests: bool
) -> None:
    data_cutoff = NOW - timedelta(minutes=3)
    state = replace(_in_flight(FRAUD, data_cutoff), cutoff=NOW - timedelta(days=1))
    assert state.in_flight is not None
    after = finish_flight(state, state.in_flight.request_id, trained, data_cutoff, version, NOW)
    assert after.cutoff == (data_cutoff if cutoff_moves else NOW - timedelta(days=1))
    assert after.rests_until_data_after == (data_cutoff if rests else None)
    # Much later, with the same data, automatic triggers still rest (no timer ends the rest).
    later = NOW + timedelta(hours=3)
    same_data = replace(
        counters(new_sheets=30, window_scored=400, window_flagged=200),
        newest_stored_at=data_cutoff - timedelta(seconds=1),
    )
    resting = decide(FRAUD, same_data, after, CONFIG, later)
    assert resting.action is (Action.HELD if rests else Action.REQUEST)
    fresh = replace(same_data, newest_stored_at=data_cutoff + timedelta(seconds=1))
    assert decide(FRAUD, fresh, after, CONFIG, later).action is Action.REQUEST


def test_a_promotion_ends_a_rest() -> None:
    state = FamilyState(FRAUD, rests_until_data_after=NOW)
    promoted = model_promoted(state, "v3", NOW, NOW)
    assert promoted.rests_until_data_after is None


def test_manual_trigger_respects_minimum_data_unless_forced() -> None:
    thin = Counters(observed_at=NOW, total_expenses=3)
    manual = ManualTrigger(uuid.uuid4(), "api")
    blocked = decide(FRAUD, thin, FamilyState(FRAUD), CONFIG, NOW, manual)
    assert blocked.action is Action.BLOCKED
    assert "at least 50 expenses; found 3" in blocked.reason_text
    forced = decide(FRAUD, thin, FamilyState(FRAUD), CONFIG, NOW, replace(manual, force=True))
    assert forced.action is Action.REQUEST
    assert forced.force
    assert forced.reason is RetrainReason.MANUAL
    plain = decide(FRAUD, PLENTY, FamilyState(FRAUD), CONFIG, NOW, manual)
    assert plain.action is Action.REQUEST
    assert "Manual retraining requested by api" in plain.reason_text


def test_rollback_never_moves_the_cutoff_back() -> None:
    state = FamilyState(DELINQ, cutoff=NOW, last_trained_at=NOW)
    rolled = model_promoted(state, "old", NOW - timedelta(days=7), NOW + timedelta(minutes=1))
    assert rolled.cutoff == NOW
    assert rolled.model_version == "old"


def test_minimum_data_gaps_are_all_listed() -> None:
    gaps = minimum_data_gaps(FRAUD, Counters(observed_at=NOW), CONFIG)
    assert len(gaps) == 2
    assert minimum_data_gaps(DELINQ, PLENTY, CONFIG) == []


def test_every_number_is_configurable() -> None:
    config = PolicyConfig(
        new_customers_threshold=5,
        minimums=DataMinimums(min_observations=2, min_positive_observations=1),
    )
    decision = decide(
        DELINQ,
        Counters(
            observed_at=NOW,
            new_customers=5,
            labelled_observations=3,
            delinquent_observations=1,
            train_labelled_observations=2,
            train_delinquent_observations=1,
        ),
        FamilyState(DELINQ),
        config,
        NOW,
    )
    assert decision.action is Action.REQUEST
    assert decision.reason_text == "New customers: 5"


JUST_TRAINED = {"last_trained_at": NOW - timedelta(minutes=1)}
"""A family whose last training ended a minute ago: automatic triggers are held until 12:09."""

HOLD_CASES = [
    # (id, family, counters, state changes, manual trigger, action, reason)
    (
        "automatic trigger is held",
        FRAUD,
        counters(new_sheets=40),
        JUST_TRAINED,
        None,
        Action.HELD,
        RetrainReason.NEW_SHEETS,
    ),
    (
        "manual trigger is not held",
        FRAUD,
        counters(new_sheets=40),
        JUST_TRAINED,
        ManualTrigger(uuid.UUID(int=1), "api"),
        Action.REQUEST,
        RetrainReason.MANUAL,
    ),
    (
        "forced trigger is not held",
        DELINQ,
        counters(),
        JUST_TRAINED,
        ManualTrigger(uuid.UUID(int=2), "ops", force=True),
        Action.REQUEST,
        RetrainReason.MANUAL,
    ),
    (
        "manual trigger is not held by the rest either",
        DELINQ,
        counters(new_customers=70),
        {"rests_until_data_after": NOW + timedelta(minutes=5)},
        ManualTrigger(uuid.UUID(int=3), "scheduled-training"),
        Action.REQUEST,
        RetrainReason.MANUAL,
    ),
    (
        "a manual trigger still waits for the request in flight",
        FRAUD,
        counters(new_sheets=40),
        {
            **JUST_TRAINED,
            "in_flight": InFlight(
                uuid.UUID(int=4), RetrainReason.MANUAL, "Manual", NOW, NOW - timedelta(minutes=1)
            ),
        },
        ManualTrigger(uuid.UUID(int=5), "api", force=True),
        Action.WAIT,
        RetrainReason.MANUAL,
    ),
    (
        "the timeout re-sends whatever the hold",
        FRAUD,
        counters(new_sheets=40),
        {
            **JUST_TRAINED,
            "in_flight": InFlight(
                uuid.UUID(int=6),
                RetrainReason.NEW_SHEETS,
                "New sheets: 10",
                NOW,
                NOW - CONFIG.request_timeout,
            ),
        },
        None,
        Action.REEMIT,
        RetrainReason.NEW_SHEETS,
    ),
]


@pytest.mark.parametrize(
    ("family", "snapshot", "state_changes", "manual", "action", "reason"),
    [case[1:] for case in HOLD_CASES],
    ids=[case[0] for case in HOLD_CASES],
)
def test_what_the_minimum_interval_holds(
    family: ModelFamily,
    snapshot: Counters,
    state_changes: dict[str, object],
    manual: ManualTrigger | None,
    action: Action,
    reason: RetrainReason,
) -> None:
    state = replace(FamilyState(family), **state_changes)  # type: ignore[arg-type]
    decision = decide(family, snapshot, state, CONFIG, NOW, manual)
    assert decision.action is action
    assert decision.reason is reason


def test_a_held_trigger_is_needed_and_says_until_when() -> None:
    state = FamilyState(FRAUD, cutoff=NOW - timedelta(hours=1), **JUST_TRAINED)  # type: ignore[arg-type]
    decision = decide(FRAUD, counters(new_sheets=25), state, CONFIG, NOW)
    assert decision.action is Action.HELD
    assert decision.retraining_needed
    assert decision.held_until == NOW + timedelta(minutes=9)
    assert decision.reason_text.startswith("New sheets: 25; held until 2026-11-21T12:09:00+00:00")
    assert decision.threshold == CONFIG.new_sheets_threshold


def test_zero_turns_the_minimum_interval_off() -> None:
    config = PolicyConfig(min_training_interval=timedelta(0))
    state = FamilyState(FRAUD, last_trained_at=NOW)
    assert decide(FRAUD, counters(new_sheets=10), state, config, NOW).action is Action.REQUEST


def test_the_minimum_interval_is_a_setting_with_a_ten_minute_default() -> None:
    assert PolicyConfig().min_training_interval == timedelta(minutes=10)
    assert StreamsSettings().policy().min_training_interval == timedelta(minutes=10)
    short = StreamsSettings(min_training_interval_s=2.5).policy()
    assert short.min_training_interval == timedelta(seconds=2.5)


def test_steady_ingest_trains_once_per_interval_and_counts_everything() -> None:
    """Sheets keep arriving (3 per 30 s tick); the trainer answers each request a minute later.

    Without the hold this asked for a training every fourth tick. With it, automatic requests
    are at least the interval apart, each goes out on the first tick once its hold has ended,
    and every sheet is counted by exactly one request.
    """
    tick = timedelta(seconds=30)
    training = timedelta(minutes=1)
    state = FamilyState(FRAUD, cutoff=NOW, last_trained_at=NOW)
    stored: list[datetime] = []  # when each sheet was stored
    sent: list[tuple[datetime, int]] = []  # (request time, new sheets it carried)
    clock = NOW
    answer_at: datetime | None = None
    while clock < NOW + timedelta(hours=2):
        clock += tick
        stored += [clock - timedelta(seconds=s) for s in (5, 15, 25)]
        if state.in_flight is not None and answer_at is not None and clock >= answer_at:
            flight = state.in_flight
            state = finish_flight(
                state, flight.request_id, True, flight.data_cutoff, "v", answer_at
            )
        assert state.cutoff is not None
        new = sum(1 for at in stored if at > state.cutoff)
        snapshot = counters(new_sheets=new)
        snapshot = replace(snapshot, observed_at=clock)
        decision = decide(FRAUD, snapshot, state, CONFIG, clock)
        if decision.action is Action.HELD:
            assert decision.held_until is not None
            assert clock < decision.held_until
        if decision.action is Action.REQUEST:
            assert state.last_trained_at is not None
            hold_ended = state.last_trained_at + CONFIG.min_training_interval
            # Sent on the first tick after the hold, not later.
            assert hold_ended <= clock < hold_ended + tick
            state = start_flight(state, decision, uuid.uuid4(), clock, clock)
            sent.append((clock, new))
            answer_at = clock + training
    gaps = {later - earlier for (earlier, _), (later, _) in itertools.pairwise(sent)}
    assert len(sent) >= 8
    assert min(gaps) >= CONFIG.min_training_interval + training
    # 11 minutes of sheets per request (the interval plus the training), not 10 sheets.
    assert all(count >= 60 for _, count in sent[1:])
    # The last request's data cutoff is the moment it was sent.
    counted = sum(count for _, count in sent)
    assert counted == sum(1 for at in stored if at <= sent[-1][0])


def test_a_stored_state_from_before_the_rest_until_new_data_still_loads() -> None:
    from streams.services.policy import PolicyState

    older = {
        "family": "delinquency",
        "cutoff": NOW.isoformat(),
        "last_trained_at": NOW.isoformat(),
        "model_version": "v1",
        "quiet_until": (NOW + timedelta(minutes=10)).isoformat(),
        "finished": 3,
        "last_requested_by": "policy",
        "in_flight": None,
    }
    loaded = PolicyState.from_json(DELINQ, older)
    assert loaded.family_state == FamilyState(
        DELINQ, cutoff=NOW, last_trained_at=NOW, model_version="v1"
    )
    assert loaded.finished == 3
    resting = replace(loaded.family_state, rests_until_data_after=NOW)
    again = PolicyState.from_json(DELINQ, PolicyState(resting, 3).to_json())
    assert again.family_state.rests_until_data_after == NOW
