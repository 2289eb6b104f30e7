"""Hypothesis strategies that build valid events of every type, and the pinned clock they fit."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import strategies as st

from schemas import (
    Codec,
    CustomerActivityRecorded,
    CustomerCreated,
    CustomerProfile,
    CustomerScored,
    DeadLettered,
    Event,
    ExpenseLabelled,
    ExpenseLine,
    ExpenseScored,
    ExpenseSheetSubmitted,
    ModelFamily,
    ModelUpdated,
    OutcomeStatus,
    RetrainReason,
    RetrainRequested,
    TrainingOutcome,
)
from schemas.currencies import ISO_4217_CODES
from schemas.limits import (
    AMOUNT_BOUND,
    DEFAULT_LIMITS,
    EARLIEST_DATE,
    EARLIEST_INSTANT,
    MAX_AMOUNT_DECIMAL_PLACES,
    MAX_IDENTIFIER_LENGTH,
    CodecLimits,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
"""The instant the test codec believes it is."""


def pinned_clock() -> datetime:
    """The test codec's clock."""
    return NOW


def make_codec(limits: CodecLimits | None = None) -> Codec:
    """A codec whose clock is pinned at NOW."""
    return Codec(limits=limits or CodecLimits(), clock=pinned_clock)


# --- primitives ------------------------------------------------------------------------------

_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")  # no surrogates
texts = st.text(_CHARACTERS, max_size=30)
identifiers = st.text(_CHARACTERS, min_size=1, max_size=20)
currencies = st.sampled_from(sorted(ISO_4217_CODES))

_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
past_instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2025, 5, 30), timezones=_offsets
)
"""Aware datetimes in any offset, safely before NOW."""
any_instants = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_offsets
)
"""Aware datetimes for fields that may lie in the future (cut-offs, scoring times)."""
past_dates = st.dates(min_value=date(1990, 1, 1), max_value=NOW.date())


@st.composite
def amounts(draw: st.DrawFn, minimum: Decimal, maximum: Decimal) -> Decimal:
    """Amounts in [minimum, maximum] with 0 to MAX_AMOUNT_DECIMAL_PLACES places, ends included."""
    places = draw(st.integers(min_value=0, max_value=MAX_AMOUNT_DECIMAL_PLACES))
    scale = Decimal(10) ** places
    unscaled = draw(
        st.integers(
            min_value=int((minimum * scale).to_integral_value(ROUND_CEILING)),
            max_value=int((maximum * scale).to_integral_value(ROUND_FLOOR)),
        )
    )
    return Decimal(unscaled).scaleb(-places)


LARGEST_AMOUNT = AMOUNT_BOUND - Decimal(10) ** -MAX_AMOUNT_DECIMAL_PLACES
"""The largest amount the storage limits allow: eighteen nines, a point, nine nines."""

expense_amounts = st.one_of(
    st.decimals(min_value=0, max_value=1_000_000, places=2),
    amounts(Decimal(0), DEFAULT_LIMITS.max_amount),
    st.integers(min_value=0, max_value=1_000_000).map(Decimal),
)
non_negative_amounts = st.one_of(
    st.decimals(min_value=0, max_value=10**12, places=2),
    amounts(Decimal(0), Decimal(10**9)),
)
signed_amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=2)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
probabilities = st.floats(min_value=0.0, max_value=1.0)
metrics = st.dictionaries(identifiers, finite_floats, max_size=4)
counts = st.integers(min_value=0, max_value=2**31 - 1)
base64_text = st.binary(max_size=48).map(lambda raw: base64.b64encode(raw).decode())
sha256_hex = st.binary(min_size=32, max_size=32).map(bytes.hex)
topic_names = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True)


def _event_fields() -> dict[str, st.SearchStrategy[Any]]:
    return {"event_id": st.uuids(), "occurred_at": past_instants}


# --- events ----------------------------------------------------------------------------------

expense_lines = st.builds(
    ExpenseLine,
    expense_id=identifiers,
    amount=expense_amounts,
    currency=currencies,
    category=texts,
    merchant=texts,
    expense_date=past_dates,
    description=texts,
    receipt_ref=st.none() | texts,
)


def expense_sheets(max_lines: int = 6) -> st.SearchStrategy[ExpenseSheetSubmitted]:
    """Valid sheets of 1..max_lines lines with distinct expense ids."""
    return st.builds(
        ExpenseSheetSubmitted,
        **_event_fields(),
        sheet_id=identifiers,
        employee_id=identifiers,
        submitted_at=past_instants,
        lines=st.lists(
            expense_lines, min_size=1, max_size=max_lines, unique_by=lambda line: line.expense_id
        ).map(tuple),
    )


customer_profiles = st.builds(
    CustomerProfile,
    age=st.integers(min_value=18, max_value=120),
    annual_income=non_negative_amounts,
    credit_limit=non_negative_amounts,
    region=texts,
    product=texts,
    tenure_months=counts,
    employment_status=texts,
)

EVENTS: Mapping[type[Event], st.SearchStrategy[Any]] = {
    ExpenseSheetSubmitted: expense_sheets(),
    CustomerCreated: st.builds(
        CustomerCreated,
        **_event_fields(),
        customer_id=identifiers,
        created_at=past_instants,
        profile=customer_profiles,
    ),
    CustomerActivityRecorded: st.builds(
        CustomerActivityRecorded,
        **_event_fields(),
        statement_id=identifiers,
        customer_id=identifiers,
        statement_date=past_dates,
        balance=signed_amounts,
        credit_limit=non_negative_amounts,
        payment_amount=non_negative_amounts,
        minimum_due=non_negative_amounts,
        purchase_amount=non_negative_amounts,
        cash_advance_amount=non_negative_amounts,
        days_past_due=counts,
    ),
    ExpenseLabelled: st.builds(
        ExpenseLabelled,
        **_event_fields(),
        expense_id=identifiers,
        sheet_id=st.none() | identifiers,
        is_fraud=st.booleans(),
        labelled_at=past_instants,
        source=texts,
    ),
    RetrainRequested: st.builds(
        RetrainRequested,
        **_event_fields(),
        request_id=st.uuids(),
        family=st.sampled_from(ModelFamily),
        reason=st.sampled_from(RetrainReason),
        reason_text=texts,
        counters=metrics,
        data_cutoff=any_instants,
        force=st.booleans(),
        requested_by=identifiers,
    ),
    ModelUpdated: st.builds(
        ModelUpdated,
        **_event_fields(),
        family=st.sampled_from(ModelFamily),
        version=identifiers,
        artifact_id=identifiers,
        sha256=sha256_hex,
        metrics=metrics,
        samples=counts,
        data_cutoff=any_instants,
        request_id=st.none() | st.uuids(),
        promoted_at=any_instants,
    ),
    TrainingOutcome: st.builds(
        TrainingOutcome,
        **_event_fields(),
        request_id=st.uuids(),
        family=st.sampled_from(ModelFamily),
        status=st.sampled_from(OutcomeStatus),
        version=st.none() | identifiers,
        reason=texts,
        metrics=metrics,
        samples=counts,
        data_cutoff=any_instants,
        duration_seconds=st.floats(min_value=0.0, allow_infinity=False),
    ),
    ExpenseScored: st.builds(
        ExpenseScored,
        **_event_fields(),
        expense_id=identifiers,
        sheet_id=identifiers,
        model_version=st.none() | identifiers,
        anomaly_score=st.none() | finite_floats,
        fraud_probability=st.none() | probabilities,
        is_flagged=st.booleans(),
        scored_at=any_instants,
        scoring_run=st.none() | texts,
    ),
    CustomerScored: st.builds(
        CustomerScored,
        **_event_fields(),
        customer_id=identifiers,
        statement_id=identifiers,
        model_version=st.none() | identifiers,
        delinquency_probability=st.none() | probabilities,
        is_flagged=st.booleans(),
        scored_at=any_instants,
        scoring_run=st.none() | texts,
    ),
    DeadLettered: st.builds(
        DeadLettered,
        **_event_fields(),
        source_topic=topic_names,
        partition=counts,
        offset=st.integers(min_value=0, max_value=2**63 - 1),
        key_b64=st.none() | base64_text,
        value_b64=base64_text,
        stage=identifiers,
        reason=identifiers,
        error=texts,
        failed_at=any_instants,
    ),
}
"""A strategy of valid events for every event type."""

events = st.one_of(*EVENTS.values())
"""Valid events of any type."""


# --- payloads --------------------------------------------------------------------------------


def as_v1_payload(sheet: ExpenseSheetSubmitted, currency: str) -> dict[str, Any]:
    """The v1 (old upload) shape of `sheet`, whose lines must all be in `currency`."""
    document = json.loads(make_codec().encode(sheet))
    items = []
    for line in document["lines"]:
        assert line.pop("currency") == currency
        items.append(line)
    return {
        "event_id": document["event_id"],
        "occurred_at": document["occurred_at"],
        "schema_version": 1,
        "sheet_id": document["sheet_id"],
        "employee": document["employee_id"],
        "currency": currency,
        "items": items,
    }


@st.composite
def single_currency_sheets(draw: st.DrawFn) -> tuple[ExpenseSheetSubmitted, str]:
    """A valid sheet whose lines share one currency and whose submitted_at is occurred_at."""
    sheet = draw(expense_sheets())
    currency = draw(currencies)
    lines = tuple(line.model_copy(update={"currency": currency}) for line in sheet.lines)
    return sheet.model_copy(update={"lines": lines, "submitted_at": sheet.occurred_at}), currency


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON value (no NaN, which plain JSON cannot carry)."""


# --- the whole accepted range of the upstream events -----------------------------------------
#
# Every value these strategies draw is one the test codec accepts, and together they reach the
# ends of each accepted range: the storage limits of schemas.limits, the text limits, the
# earliest date and the latest one the pinned clock allows.

LATEST_ACCEPTED = NOW + DEFAULT_LIMITS.max_future
"""The latest instant the test codec accepts for a field that may not lie in the future."""

_UTF8_WIDTHS = ((0x01, 0x7F), (0x80, 0xFFFF), (0x10000, 0x10FFFF))
"""Code point ranges of 1-byte, 2/3-byte and 4-byte UTF-8 characters (NUL excluded)."""


def spread_text(seed: int, length: int, width: tuple[int, int]) -> str:
    """`length` code points spread over `width` by `seed`, never NUL nor a surrogate.

    Built from two drawn numbers rather than drawn character by character, so strings of the
    longest accepted length cost hypothesis almost nothing; they hardly repeat, so PostgreSQL
    cannot compress them into a small index entry either.
    """
    low, high = width
    span = high - low + 1
    characters = []
    for index in range(length):
        code = low + (seed + index * 2_654_435_761) % span
        if 0xD800 <= code <= 0xDFFF:
            code -= 0x800
        characters.append(chr(code))
    return "".join(characters)


def accepted_text(max_length: int, min_length: int = 0) -> st.SearchStrategy[str]:
    """Short text of any storable characters, or text of (nearly) `max_length` characters."""
    longest = st.builds(
        spread_text,
        st.integers(min_value=0, max_value=2**32),
        st.integers(min_value=max(min_length, max_length - 3), max_value=max_length),
        st.sampled_from(_UTF8_WIDTHS),
    )
    return st.one_of(st.text(_CHARACTERS, min_size=min_length, max_size=24), longest)


accepted_texts = accepted_text(DEFAULT_LIMITS.max_string_length)
accepted_identifiers = accepted_text(MAX_IDENTIFIER_LENGTH, min_length=1)

_AMOUNT_ENDS = (LARGEST_AMOUNT, Decimal("0.000000001"), Decimal("0.000000000"), Decimal(0))
accepted_signed_amounts = st.one_of(
    amounts(-LARGEST_AMOUNT, LARGEST_AMOUNT),
    st.sampled_from([*_AMOUNT_ENDS, -LARGEST_AMOUNT, Decimal("-0.000000001")]),
)
accepted_non_negative_amounts = st.one_of(
    amounts(Decimal(0), LARGEST_AMOUNT), st.sampled_from(_AMOUNT_ENDS)
)
accepted_expense_amounts = st.one_of(
    amounts(Decimal(0), DEFAULT_LIMITS.max_amount),
    st.sampled_from([DEFAULT_LIMITS.max_amount, Decimal("999999.999999999"), Decimal(0)]),
)
# The ends are drawn on purpose: a wide range alone seldom gives hypothesis its first day.
accepted_dates = st.one_of(
    st.sampled_from([EARLIEST_DATE, LATEST_ACCEPTED.date()]),
    st.dates(min_value=EARLIEST_DATE, max_value=LATEST_ACCEPTED.date()),
)
accepted_instants = st.tuples(
    st.one_of(
        st.sampled_from([EARLIEST_INSTANT, LATEST_ACCEPTED]),
        st.datetimes(
            min_value=EARLIEST_INSTANT.replace(tzinfo=None),
            max_value=LATEST_ACCEPTED.replace(tzinfo=None),
            timezones=st.just(UTC),
        ),
    ),
    _offsets,
).map(lambda instant_and_offset: instant_and_offset[0].astimezone(instant_and_offset[1]))
"""Instants from EARLIEST_INSTANT to LATEST_ACCEPTED (in UTC), written in any offset."""


def _accepted_envelope() -> dict[str, st.SearchStrategy[Any]]:
    return {"event_id": st.uuids(), "occurred_at": accepted_instants}


accepted_lines = st.builds(
    ExpenseLine,
    expense_id=accepted_identifiers,
    amount=accepted_expense_amounts,
    currency=currencies,
    category=accepted_texts,
    merchant=accepted_texts,
    expense_date=accepted_dates,
    description=accepted_texts,
    receipt_ref=st.none() | accepted_texts,
)

ACCEPTED_UPSTREAM: Mapping[type[Event], st.SearchStrategy[Any]] = {
    ExpenseSheetSubmitted: st.builds(
        ExpenseSheetSubmitted,
        **_accepted_envelope(),
        sheet_id=accepted_identifiers,
        employee_id=accepted_identifiers,
        submitted_at=accepted_instants,
        lines=st.lists(
            accepted_lines, min_size=1, max_size=4, unique_by=lambda line: line.expense_id
        ).map(tuple),
    ),
    CustomerCreated: st.builds(
        CustomerCreated,
        **_accepted_envelope(),
        customer_id=accepted_identifiers,
        created_at=accepted_instants,
        profile=st.builds(
            CustomerProfile,
            age=st.integers(min_value=18, max_value=120),
            annual_income=accepted_non_negative_amounts,
            credit_limit=accepted_non_negative_amounts,
            region=accepted_texts,
            product=accepted_texts,
            tenure_months=counts,
            employment_status=accepted_texts,
        ),
    ),
    CustomerActivityRecorded: st.builds(
        CustomerActivityRecorded,
        **_accepted_envelope(),
        statement_id=accepted_identifiers,
        customer_id=accepted_identifiers,
        statement_date=accepted_dates,
        balance=accepted_signed_amounts,
        credit_limit=accepted_non_negative_amounts,
        payment_amount=accepted_non_negative_amounts,
        minimum_due=accepted_non_negative_amounts,
        purchase_amount=accepted_non_negative_amounts,
        cash_advance_amount=accepted_non_negative_amounts,
        days_past_due=counts,
    ),
    ExpenseLabelled: st.builds(
        ExpenseLabelled,
        **_accepted_envelope(),
        expense_id=accepted_identifiers,
        sheet_id=st.none() | accepted_identifiers,
        is_fraud=st.booleans(),
        labelled_at=accepted_instants,
        source=accepted_texts,
    ),
}
"""Valid upstream events drawn from the whole accepted range of every field."""
