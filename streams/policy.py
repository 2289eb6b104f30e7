"""The retraining policy: a pure function of (counters, state, config, clock) to a decision."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from schemas.base import ModelFamily
from schemas.minimums import DataCounts, DataMinimums, data_gaps
from schemas.retrain_requested import RetrainReason
from streams.quality import QualityConfig, QualityFigures


@dataclass(frozen=True)
class PolicyConfig:
    """Every number the policy uses; defaults are the two seed systems' values."""

    new_sheets_threshold: int = 10
    new_customers_threshold: int = 50
    anomaly_rate_low: float = 0.05
    anomaly_rate_high: float = 0.30
    anomaly_min_sample: int = 200
    anomaly_window: timedelta = timedelta(days=30)
    interval: timedelta = timedelta(hours=24)
    request_timeout: timedelta = timedelta(minutes=15)
    # An automatic trigger that fires sooner than this after the family's last training waits
    # (counting on) until this much time has passed. Under steady ingest the count triggers
    # would otherwise retrain every few seconds, and each new model would be replaced before it
    # had scored anything. Ten minutes caps automatic trainings at six an hour per family, gives
    # each new champion time to score (which the anomaly-rate trigger needs), and stays short
    # beside the seeds' pace (10 sheets, 50 customers) and the 24 h interval trigger.
    # Manual and forced triggers are not held; zero turns the hold off.
    min_training_interval: timedelta = timedelta(minutes=10)
    minimums: DataMinimums = field(default_factory=DataMinimums)
    """The minimum data before a training; the trainer checks the same (schemas.minimums)."""
    quality: QualityConfig = field(default_factory=QualityConfig)
    """The drift and realised-performance triggers."""


@dataclass(frozen=True)
class Counters:
    """A snapshot of what is stored, counted against the current model's data cutoff.

    "New" means stored after the cutoff; stored rows are keyed by event and natural ids, so a
    replayed or redelivered event is never counted twice.
    """

    observed_at: datetime
    new_sheets: int = 0
    new_expenses: int = 0
    new_labels: int = 0
    new_customers: int = 0
    new_statements: int = 0
    total_expenses: int = 0
    sheets_with_min_lines: int = 0
    total_customers: int = 0
    total_statements: int = 0
    # Delinquency observations whose label is known as of `observed_at`, counted in SQL the way
    # schemas.features.delinquency_labels labels them.
    labelled_observations: int = 0
    delinquent_observations: int = 0
    # … of which before the holdout and its embargo: what a fit would train on.
    train_labelled_observations: int = 0
    train_delinquent_observations: int = 0
    # Scores by the current champion inside the anomaly window.
    window_scored: int = 0
    window_flagged: int = 0
    newest_stored_at: datetime | None = None
    """When the family's newest input row (sheet or label; customer or statement) was stored."""

    @property
    def anomaly_rate(self) -> float | None:
        if self.window_scored == 0:
            return None
        return self.window_flagged / self.window_scored

    def new_data(self, family: ModelFamily) -> int:
        if family is ModelFamily.EXPENSE_FRAUD:
            return self.new_sheets + self.new_labels
        return self.new_customers + self.new_statements

    @classmethod
    def from_dict(
        cls,
        observed_at: datetime,
        counts: Mapping[str, float],
        newest_stored_at: datetime | None = None,
    ) -> Counters:
        """Counters from `as_dict`'s shape (unknown keys are ignored, missing ones are 0)."""
        known = {f.name for f in fields(cls)} - {"observed_at", "newest_stored_at"}
        values: dict[str, Any] = {n: int(v) for n, v in counts.items() if n in known}
        return replace(cls(observed_at, newest_stored_at=newest_stored_at), **values)

    def as_dict(self) -> dict[str, float]:
        return {
            "new_sheets": self.new_sheets,
            "new_expenses": self.new_expenses,
            "new_labels": self.new_labels,
            "new_customers": self.new_customers,
            "new_statements": self.new_statements,
            "total_expenses": self.total_expenses,
            "sheets_with_min_lines": self.sheets_with_min_lines,
            "total_customers": self.total_customers,
            "total_statements": self.total_statements,
            "labelled_observations": self.labelled_observations,
            "delinquent_observations": self.delinquent_observations,
            "train_labelled_observations": self.train_labelled_observations,
            "train_delinquent_observations": self.train_delinquent_observations,
            "window_scored": self.window_scored,
            "window_flagged": self.window_flagged,
        }


@dataclass(frozen=True)
class InFlight:
    """The request a family is waiting on."""

    request_id: uuid.UUID
    reason: RetrainReason
    reason_text: str
    data_cutoff: datetime
    sent_at: datetime
    force: bool = False
    emits: int = 1


@dataclass(frozen=True)
class FamilyState:
    """What the policy remembers per family between decisions."""

    family: ModelFamily
    cutoff: datetime | None = None
    last_trained_at: datetime | None = None
    model_version: str | None = None
    in_flight: InFlight | None = None
    rests_until_data_after: datetime | None = None
    """After a request that ended without a new champion (rejected, skipped, failed): its data
    cutoff. Automatic triggers rest until a row stored after it arrives, since the same data
    would give the same answer; None = not resting."""


@dataclass(frozen=True)
class ManualTrigger:
    """A retraining asked for by a person or a scheduler (API, CLI, cron)."""

    request_id: uuid.UUID
    requested_by: str
    force: bool = False


class Action(enum.Enum):
    """What the worker should do after a decision."""

    NONE = "none"  # nothing is due
    REQUEST = "request"  # emit a new RetrainRequested
    REEMIT = "reemit"  # the trainer never answered: emit the same request again
    WAIT = "wait"  # a request is in flight; do not ask twice
    BLOCKED = "blocked"  # a trigger fired but the minimum data is not there yet
    HELD = "held"  # a trigger fired; its request waits for the minimum interval or the rest


@dataclass(frozen=True)
class Decision:
    """The policy's verdict, with the seed's wording for people."""

    action: Action
    family: ModelFamily
    reason_text: str
    reason: RetrainReason | None = None
    threshold: float | None = None
    force: bool = False
    held_until: datetime | None = None
    """For HELD: when the request goes out if the trigger still fires then."""

    @property
    def retraining_needed(self) -> bool:
        return self.action in (Action.REQUEST, Action.REEMIT, Action.WAIT, Action.HELD)


def minimum_data_gaps(family: ModelFamily, counters: Counters, config: PolicyConfig) -> list[str]:
    """What is missing before a model of `family` can be trained; empty when nothing is."""
    counts = DataCounts(
        expenses=counters.total_expenses,
        sheets_with_min_lines=counters.sheets_with_min_lines,
        labelled_observations=counters.labelled_observations,
        delinquent_observations=counters.delinquent_observations,
        train_labelled_observations=counters.train_labelled_observations,
        train_delinquent_observations=counters.train_delinquent_observations,
    )
    return data_gaps(family, counts, config.minimums)


def _automatic_trigger(
    family: ModelFamily, counters: Counters, state: FamilyState, config: PolicyConfig, now: datetime
) -> tuple[RetrainReason, str, float] | None:
    if family is ModelFamily.EXPENSE_FRAUD:
        if counters.new_sheets >= config.new_sheets_threshold:
            return (
                RetrainReason.NEW_SHEETS,
                f"New sheets: {counters.new_sheets}",
                config.new_sheets_threshold,
            )
        rate = counters.anomaly_rate
        if rate is not None and counters.window_scored >= config.anomaly_min_sample:
            days = config.anomaly_window.days
            if rate < config.anomaly_rate_low:
                return (
                    RetrainReason.ANOMALY_RATE_LOW,
                    f"Anomaly rate {rate:.1%} below {config.anomaly_rate_low:.0%} "
                    f"({counters.window_scored} scored in {days} days)",
                    config.anomaly_rate_low,
                )
            if rate > config.anomaly_rate_high:
                return (
                    RetrainReason.ANOMALY_RATE_HIGH,
                    f"Anomaly rate {rate:.1%} above {config.anomaly_rate_high:.0%} "
                    f"({counters.window_scored} scored in {days} days)",
                    config.anomaly_rate_high,
                )
    elif counters.new_customers >= config.new_customers_threshold:
        return (
            RetrainReason.NEW_CUSTOMERS,
            f"New customers: {counters.new_customers}",
            config.new_customers_threshold,
        )
    if (
        state.last_trained_at is not None
        and now - state.last_trained_at >= config.interval
        and counters.new_data(family) > 0
    ):
        hours = (now - state.last_trained_at).total_seconds() / 3600
        return (
            RetrainReason.INTERVAL,
            f"Last training {hours:.0f} h ago with new data since",
            config.interval.total_seconds() / 3600,
        )
    return None


def quality_trigger(
    state: FamilyState, quality: QualityFigures | None, config: QualityConfig
) -> tuple[RetrainReason, str, float] | None:
    """Drift or realised performance of the champion, from figures the engine computed.

    Only figures of the family's current champion count, and only on their minimum sample:
    drift when a feature's or the score's PSI reaches the threshold; performance when the
    realised AUC (labelled sample with both classes) is under the floor, or more than the margin
    under the version's holdout AUC.
    """
    if quality is None or state.model_version is None:
        return None
    if quality.model_version != state.model_version:
        return None  # figures of an earlier champion
    drift = quality.drift
    if drift is not None and drift.samples >= config.drift_min_sample:
        largest = drift.largest()
        if largest is not None and largest[1] >= config.drift_psi_threshold:
            name, value = largest
            return (
                RetrainReason.DRIFT,
                f"Drift: PSI {value:.2f} on {name} (threshold {config.drift_psi_threshold:g}; "
                f"{drift.samples} scored)",
                config.drift_psi_threshold,
            )
    realised = quality.champion_performance
    if (
        realised is None
        or realised.auc is None
        or realised.samples < config.performance_min_sample
        or not 0 < realised.positives < realised.samples
    ):
        return None
    sample = f"{realised.samples} labelled, {realised.positives} positive"
    if realised.auc < config.performance_auc_floor:
        return (
            RetrainReason.PERFORMANCE,
            f"Realised AUC {realised.auc:.2f} under the floor {config.performance_auc_floor:g} "
            f"({sample})",
            config.performance_auc_floor,
        )
    if realised.holdout_auc is not None:
        bar = realised.holdout_auc - config.performance_auc_margin
        # Exactly the margin under the holdout AUC does not fire, floating-point noise apart.
        if realised.auc < bar - 1e-9:
            return (
                RetrainReason.PERFORMANCE,
                f"Realised AUC {realised.auc:.2f} more than {config.performance_auc_margin:g} "
                f"under the holdout AUC {realised.holdout_auc:.2f} ({sample})",
                bar,
            )
    return None


def automatic_hold(state: FamilyState, config: PolicyConfig) -> tuple[datetime, str] | None:
    """Until when automatic triggers of the family wait, and why; None when nothing holds them.

    The minimum interval after the last training (promoted or rejected by the gate, whatever
    asked for it). The rest after a request without a new champion is `resting`: it ends with
    new data, not at a time.
    """
    if state.last_trained_at is None or config.min_training_interval <= timedelta(0):
        return None
    return (
        state.last_trained_at + config.min_training_interval,
        f"the minimum interval between automatic trainings "
        f"({_duration(config.min_training_interval)} after the last training, "
        f"{_instant(state.last_trained_at)})",
    )


def resting(state: FamilyState, counters: Counters) -> str | None:
    """Why automatic triggers rest until new data arrives; None when they do not.

    The last request ended without a new champion and nothing was stored after its data cutoff:
    asking again now would train on the same data and end the same way.
    """
    after = state.rests_until_data_after
    if after is None:
        return None
    if counters.newest_stored_at is not None and counters.newest_stored_at > after:
        return None
    return (
        f"resting until data stored after {_instant(after)} arrives (the last request saw "
        "everything before and ended without a new model)"
    )


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _duration(span: timedelta) -> str:
    seconds = span.total_seconds()
    if seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def _threshold(family: ModelFamily, config: PolicyConfig) -> float:
    if family is ModelFamily.EXPENSE_FRAUD:
        return config.new_sheets_threshold
    return config.new_customers_threshold


def decide(
    family: ModelFamily,
    counters: Counters,
    state: FamilyState,
    config: PolicyConfig,
    now: datetime,
    manual: ManualTrigger | None = None,
    quality: QualityFigures | None = None,
) -> Decision:
    """Decide whether `family` needs a retraining now, and why.

    Order: a request in flight is waited on (or re-sent after the timeout); a manual trigger
    goes out unless data is missing and it is not forced; an automatic trigger is blocked while
    data is missing, held while the minimum interval or the rest after a failure runs, and sent
    otherwise. `quality` holds the drift and realised-performance figures the engine computed
    (None when it has none). A held trigger moves nothing: the cutoff stays, so the counts keep
    growing, and the decision is made again from the counters of the moment the hold ends (the
    policy timer re-evaluates every `policy_tick_s` even when no event arrives).
    """
    if state.in_flight is not None:
        return _in_flight_decision(family, state.in_flight, config, now)
    gaps = minimum_data_gaps(family, counters, config)
    if manual is not None:
        return _manual_decision(family, manual, gaps)

    trigger = _automatic_trigger(family, counters, state, config, now)
    if trigger is None or trigger[0] is RetrainReason.INTERVAL:
        # Drift and performance say more than the time since the last training.
        trigger = quality_trigger(state, quality, config.quality) or trigger
    if trigger is None:
        return Decision(
            Action.NONE, family, "No training needed", threshold=_threshold(family, config)
        )
    reason, text, threshold = trigger
    if gaps:
        return Decision(
            Action.BLOCKED,
            family,
            f"{text}; insufficient data: need " + "; ".join(gaps),
            reason,
            threshold,
        )
    rest = resting(state, counters)
    if rest is not None:
        return Decision(Action.HELD, family, f"{text}; {rest}", reason, threshold)
    hold = automatic_hold(state, config)
    if hold is not None and now < hold[0]:
        until, why = hold
        return Decision(
            Action.HELD,
            family,
            f"{text}; held until {_instant(until)} by {why}",
            reason,
            threshold,
            held_until=until,
        )
    return Decision(Action.REQUEST, family, text, reason, threshold)


def _in_flight_decision(
    family: ModelFamily, flight: InFlight, config: PolicyConfig, now: datetime
) -> Decision:
    """Wait for the answer to the request in flight, or send it again once it timed out."""
    if now - flight.sent_at >= config.request_timeout:
        return Decision(
            Action.REEMIT,
            family,
            f"{flight.reason_text} (re-sent: no answer for "
            f"{(now - flight.sent_at).total_seconds():.0f} s)",
            flight.reason,
            force=flight.force,
        )
    return Decision(
        Action.WAIT,
        family,
        f"Training in progress: {flight.reason_text}",
        flight.reason,
        force=flight.force,
    )


def _manual_decision(family: ModelFamily, manual: ManualTrigger, gaps: list[str]) -> Decision:
    """A manual trigger goes out, unless data is missing and it is not forced."""
    if gaps and not manual.force:
        return Decision(
            Action.BLOCKED,
            family,
            "Insufficient data: need " + "; ".join(gaps),
            RetrainReason.MANUAL,
        )
    text = f"Manual retraining requested by {manual.requested_by}"
    return Decision(
        Action.REQUEST,
        family,
        text + (" (forced)" if manual.force else ""),
        RetrainReason.MANUAL,
        force=manual.force,
    )


def start_flight(
    state: FamilyState, decision: Decision, request_id: uuid.UUID, cutoff: datetime, now: datetime
) -> FamilyState:
    """The state once a new request has been sent."""
    if decision.reason is None:
        raise ValueError("a request needs a reason")
    return replace(
        state,
        in_flight=InFlight(
            request_id=request_id,
            reason=decision.reason,
            reason_text=decision.reason_text,
            data_cutoff=cutoff,
            sent_at=now,
            force=decision.force,
        ),
    )


def reemit_flight(state: FamilyState, now: datetime) -> FamilyState:
    """The state once the in-flight request has been sent again."""
    if state.in_flight is None:
        return state
    flight = replace(state.in_flight, sent_at=now, emits=state.in_flight.emits + 1)
    return replace(state, in_flight=flight)


def finish_flight(
    state: FamilyState,
    request_id: uuid.UUID,
    trained: bool,
    data_cutoff: datetime,
    model_version: str | None,
    now: datetime,
) -> FamilyState:
    """The state once the trainer answered `request_id`.

    A request that trained a model (promoted or rejected by the gate) moves the cutoff to the
    request's data cutoff, so events stored while it trained still count toward the next one.
    One that ended without a model (skipped, failed) keeps the cutoff. Every request that ended
    without a new champion (`model_version` None: rejected, skipped, failed) rests the automatic
    triggers until data stored after its data cutoff arrives; a promotion ends any rest.
    """
    if state.in_flight is not None and state.in_flight.request_id != request_id:
        return state  # an answer to an older request; the current one is still awaited
    rest = None if model_version is not None else data_cutoff
    if trained:
        cutoff = data_cutoff if state.cutoff is None else max(state.cutoff, data_cutoff)
        return replace(
            state,
            in_flight=None,
            cutoff=cutoff,
            last_trained_at=now,
            model_version=model_version or state.model_version,
            rests_until_data_after=rest,
        )
    return replace(state, in_flight=None, rests_until_data_after=rest)


def model_promoted(
    state: FamilyState, version: str, data_cutoff: datetime, promoted_at: datetime
) -> FamilyState:
    """The state once a model is promoted (by the trainer, a rollback, or a manual promote)."""
    cutoff = data_cutoff if state.cutoff is None else max(state.cutoff, data_cutoff)
    last = promoted_at if state.last_trained_at is None else max(state.last_trained_at, promoted_at)
    return replace(
        state,
        cutoff=cutoff,
        model_version=version,
        last_trained_at=last,
        rests_until_data_after=None,
    )
