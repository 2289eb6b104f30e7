"""The simulated upstream traffic of every phase, made up front (same seed, same bytes), and how
it is published."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrainer.demo.common import UPSTREAM, DemoError, demo_policy

if TYPE_CHECKING:
    from retrainer.simulator.config import FraudKind
    from retrainer.simulator.scenario import Scenario, SimMessage

# The data of each phase. The worker and trainer run with every policy default but one (see common);
# these numbers are chosen so that the defaults fire, each trigger on its own.
CUSTOMERS = 60
"""Phase 1 simulates these, with their statements, and publishes them up to the 50th
well-formed one: the count trigger fires on it, and the request's data cutoff holds every customer
published, so the manual retraining of phase 4 learns from the same data and passes the gate."""
STATEMENTS_PER_CUSTOMER = 24
"""Two years of monthly statements: enough delinquencies among 50 customers to learn from."""
BAD_RATE = 0.01
"""Phase 1: about 1 % of its messages are malformed on purpose, to be dead-lettered."""
SHEETS_BEFORE_DRIFT = 10
"""Phase 2: the 10 new sheets the count trigger needs, no more (a sheet stored after the
request's data cutoff would count toward phase 3); each has 5+ lines (the trainer's minimum)."""
LABEL_FRACTION = 0.25
"""Phase 2: audit labels for a quarter of the lines: too few for the RandomForest (50), so
expense-fraud scores with its IsolationForest, whose flags make the anomaly rate."""
DRIFT_SHEET_POOL = 400
"""Sheets simulated over the scenario; phase 3 takes the largest ones after the drift."""
DRIFT_EMPLOYEES = 8
"""Few employees, so phase 3's sheets come from people whose habits phase 2 showed."""
DRIFT_AT = 0.15
"""The drift switch, as a fraction of the scenario's time span."""
DRIFTED_FRAUD_RATE = 0.9
"""Phase 3: heavy fraud after the drift (see drifted_fraud_mix for its kinds)."""
DRIFT_LINES = 220
"""Phase 3: enough lines for the anomaly rate's minimum sample (200) in under 10 sheets."""


@dataclass(frozen=True)
class Traffic:
    """The messages of every phase, simulated up front (same seed, same bytes)."""

    statements: list[SimMessage]
    """Phase 1, first: the customers' statement history, which the model learns from."""
    customers: list[SimMessage]
    """Phase 1, then: the customer records, which the trigger counts."""
    labels: list[SimMessage]
    """Phase 2, first: the auditors' labels of the phase's expense lines."""
    sheets: list[SimMessage]
    """Phase 2, then: sheets from before the drift."""
    drifted: list[SimMessage]
    """Phase 3 picks from these: sheets after the drift, in time order."""


def drifted_fraud_mix() -> dict[FraudKind, float]:
    """After the drift a ring files round amounts just under the approval limit."""
    from retrainer.simulator.config import FraudKind

    mix = dict.fromkeys(FraudKind, 0.5)
    mix.update({FraudKind.JUST_UNDER_LIMIT: 3.0, FraudKind.ROUND_AMOUNT: 3.0})
    mix[FraudKind.DUPLICATE_RECEIPT] = 1.0
    return mix


def _people(seed: int, id_prefix: str) -> list[SimMessage]:
    """Phase 1's customers with their statement history (a few messages malformed)."""
    from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
    from retrainer.simulator.scenario import Scenario

    people = Scenario(
        ScenarioConfig(
            seed=seed,
            id_prefix=id_prefix,
            customers=CustomerConfig(
                customers=CUSTOMERS, statements_per_customer=STATEMENTS_PER_CUSTOMER
            ),
            expenses=ExpenseConfig(sheets=0),
            bad_rate=BAD_RATE,
        )
    )
    return list(people.messages())


def _office(seed: int, id_prefix: str) -> Scenario:
    """Phases 2 and 3: a few employees' sheets and labels, with a drift early in the span."""
    from retrainer.simulator.config import (
        CustomerConfig,
        DriftConfig,
        ExpenseConfig,
        ScenarioConfig,
    )
    from retrainer.simulator.scenario import Scenario

    return Scenario(
        ScenarioConfig(
            seed=seed,
            id_prefix=id_prefix,
            customers=CustomerConfig(customers=0),
            expenses=ExpenseConfig(
                sheets=DRIFT_SHEET_POOL,
                employees=DRIFT_EMPLOYEES,
                label_fraction=LABEL_FRACTION,
            ),
            drift=DriftConfig(
                at=DRIFT_AT, fraud_rate=DRIFTED_FRAUD_RATE, fraud_mix=drifted_fraud_mix()
            ),
        )
    )


def _expenses(office: Scenario) -> tuple[list[SimMessage], list[SimMessage], list[SimMessage]]:
    """The office's sheets before the drift, the labels of their lines, the sheets after it."""
    from retrainer.simulator.events import LABEL_TOPIC, SHEET_TOPIC
    from schemas import ExpenseSheetSubmitted

    drift_time = office.config.drift_time
    assert drift_time is not None  # noqa: S101 - the office scenario always drifts
    before: list[SimMessage] = []
    drifted: list[SimMessage] = []
    labels: dict[str, SimMessage] = {}
    for message in office.messages():
        event = message.event
        if message.topic == LABEL_TOPIC and event is not None:
            labels[getattr(event, "expense_id", "")] = message
        elif message.topic == SHEET_TOPIC and isinstance(event, ExpenseSheetSubmitted):
            if event.submitted_at >= drift_time:
                drifted.append(message)
            elif len(event.lines) >= 5 and len(before) < SHEETS_BEFORE_DRIFT:
                before.append(message)
    chosen_lines = {
        line.expense_id
        for m in before
        if isinstance(m.event, ExpenseSheetSubmitted)
        for line in m.event.lines
    }
    audited = [m for expense_id, m in labels.items() if expense_id in chosen_lines]
    return before, audited, drifted


def build_traffic(seed: int, id_prefix: str) -> Traffic:
    """Every phase's messages, from the simulator with `seed` (ids start with `id_prefix`)."""
    from retrainer.simulator.events import ACTIVITY_TOPIC, CUSTOMER_TOPIC

    everyone = _people(seed, id_prefix)
    sheets, labels, drifted = _expenses(_office(seed, id_prefix))
    created = [m for m in everyone if m.topic == CUSTOMER_TOPIC]
    customers = created[: nth_valid(created, demo_policy().new_customers_threshold) + 1]
    ids = {getattr(m.event, "customer_id", None) for m in customers if m.event is not None}
    return Traffic(
        statements=[
            m
            for m in everyone
            if m.topic == ACTIVITY_TOPIC
            and (m.event is None or getattr(m.event, "customer_id", None) in ids)
        ],
        customers=customers,
        labels=labels,
        sheets=sheets,
        drifted=drifted,
    )


def pick_drifted(pool: Sequence[SimMessage], budget: int, lines: int) -> list[SimMessage]:
    """The largest drifted sheets, at most `budget` of them, until they hold `lines` lines."""
    from schemas import ExpenseSheetSubmitted

    def size(message: SimMessage) -> int:
        event = message.event
        return len(event.lines) if isinstance(event, ExpenseSheetSubmitted) else 0

    chosen: list[SimMessage] = []
    total = 0
    for message in sorted(pool, key=size, reverse=True):
        if len(chosen) >= budget or total >= lines:
            break
        chosen.append(message)
        total += size(message)
    return sorted(chosen, key=lambda m: m.position)


def line_count(messages: Sequence[SimMessage]) -> int:
    from schemas import ExpenseSheetSubmitted

    return sum(len(m.event.lines) for m in messages if isinstance(m.event, ExpenseSheetSubmitted))


def nth_valid(messages: Sequence[SimMessage], n: int) -> int:
    """The index of the n-th well-formed message: the one that makes a count reach n."""
    seen = 0
    for index, message in enumerate(messages):
        seen += message.event is not None
        if seen == n:
            return index
    raise DemoError(f"the phase has only {seen} well-formed messages; its trigger needs {n}")


def nth_line(messages: Sequence[SimMessage], n: int) -> int:
    """The index of the sheet whose lines make the count of lines reach n."""
    for index in range(len(messages)):
        if line_count(messages[: index + 1]) >= n:
            return index
    raise DemoError(f"the phase has only {line_count(messages)} lines; its trigger needs {n}")


@dataclass(frozen=True)
class Published:
    """What one phase put on the topics, and when the broker had acknowledged all of it."""

    sent: dict[str, int]
    malformed: int
    acked_at: float
    seconds: float


def publish(bootstrap: str, prefix: str, messages: Sequence[SimMessage]) -> Published:
    """Send to `<prefix>-<topic>` with the simulator's producer (acks=all, idempotent) and wait
    for every ack."""
    from retrainer.simulator.publish import KafkaSink, PublishOptions

    options = PublishOptions(bootstrap=bootstrap, topic_prefix=f"{prefix}-")
    sink = KafkaSink(options)
    began = time.monotonic()
    for message in messages:
        sink.send(message)
    sink.close()
    acked_at = time.time()
    if sink.failures:
        raise DemoError(
            f"{sink.failures} message(s) were not delivered: {'; '.join(sink.failure_samples)}"
        )
    sent = {name: sink.delivered.get(options.topic_name(name), 0) for name in UPSTREAM}
    return Published(
        sent={k: v for k, v in sent.items() if v},
        malformed=sum(sink.malformed.values()),
        acked_at=acked_at,
        seconds=time.monotonic() - began,
    )
