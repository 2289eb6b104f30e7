"""Employees with spending habits, their expense sheets with injected fraud, and late audit labels.

Everything is generated column-wise with numpy; `ExpenseData.sheet(i)` materialises one sheet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from retrainer.simulator import catalog
from retrainer.simulator.config import MAX_LABEL_DELAY, ExpenseConfig, FraudKind
from retrainer.simulator.dates import (
    US_PER_DAY,
    US_PER_HOUR,
    BoolArray,
    IntArray,
    day_of,
    from_day,
    from_us,
    holidays,
    is_off_day,
    weekday,
)

FloatArray = npt.NDArray[np.float64]

FRAUD_KINDS: tuple[FraudKind, ...] = tuple(FraudKind)
LEGIT = -1
"""`fraud_kind` code of a legitimate line; frauds are indices into FRAUD_KINDS."""

_ROUND_AMOUNTS = np.array([100, 150, 200, 250, 300, 400, 450, 600, 750, 1000], dtype=np.int64)
_USUAL_MERCHANTS = 3


@dataclass(frozen=True)
class SimExpenseLine:
    """One expense line as upstream submits it, with the ground truth beside it."""

    expense_id: str
    amount: Decimal
    currency: str
    category: str
    merchant: str
    expense_date: date
    description: str
    receipt_ref: str | None
    fraud_kind: FraudKind | None

    @property
    def is_fraud(self) -> bool:
        return self.fraud_kind is not None


@dataclass(frozen=True)
class SimSheet:
    """One submitted expense sheet."""

    sheet_id: str
    employee_id: str
    submitted_at: datetime
    lines: tuple[SimExpenseLine, ...]


@dataclass(frozen=True)
class SimLabel:
    """An auditor's verdict on one expense, given `labelled_at` (after the sheet), maybe wrong."""

    expense_id: str
    sheet_id: str
    is_fraud: bool
    labelled_at: datetime
    source: str


@dataclass(frozen=True)
class Employees:
    """Each employee's habits: what, where, when and how much they usually spend."""

    ids: list[str]
    role: IntArray
    home_currency: IntArray
    category_cdf: FloatArray  # (employees, categories), rows end at 1
    median_amount: FloatArray  # (employees, categories), in home currency
    usual_merchants: IntArray  # (employees, categories, 3) indices into the merchant table
    usual_weekdays: BoolArray  # (employees, 7); weekends are never usual


@dataclass(frozen=True)
class ExpenseData:
    """All sheets, lines and labels of a scenario, as columns; lines are grouped by sheet."""

    employees: Employees
    merchants: list[str]
    sheet_ids: list[str]
    sheet_employee: IntArray
    sheet_submitted_us: IntArray
    sheet_line_start: IntArray  # len = sheets + 1; sheet i owns lines [start[i], start[i+1])
    expense_ids: list[str]
    line_sheet: IntArray
    amount_cents: IntArray
    currency: IntArray
    category: IntArray
    merchant: IntArray
    expense_day: IntArray
    description: list[str]
    receipt_ref: list[str | None]
    fraud_kind: IntArray  # LEGIT or an index into FRAUD_KINDS
    label_line: IntArray  # which lines got an audit label, ordered by line
    label_us: IntArray
    label_is_fraud: BoolArray

    @property
    def sheet_count(self) -> int:
        return len(self.sheet_ids)

    @property
    def line_count(self) -> int:
        return len(self.expense_ids)

    @property
    def is_fraud(self) -> BoolArray:
        return np.asarray(self.fraud_kind != LEGIT, dtype=np.bool_)

    def line(self, i: int) -> SimExpenseLine:
        kind = int(self.fraud_kind[i])
        return SimExpenseLine(
            expense_id=self.expense_ids[i],
            amount=Decimal(int(self.amount_cents[i])).scaleb(-2),
            currency=catalog.CURRENCIES[int(self.currency[i])],
            category=catalog.CATEGORIES[int(self.category[i])].name,
            merchant=self.merchants[int(self.merchant[i])],
            expense_date=from_day(int(self.expense_day[i])),
            description=self.description[i],
            receipt_ref=self.receipt_ref[i],
            fraud_kind=None if kind == LEGIT else FRAUD_KINDS[kind],
        )

    def sheet(self, i: int) -> SimSheet:
        first, last = int(self.sheet_line_start[i]), int(self.sheet_line_start[i + 1])
        return SimSheet(
            sheet_id=self.sheet_ids[i],
            employee_id=self.employees.ids[int(self.sheet_employee[i])],
            submitted_at=from_us(int(self.sheet_submitted_us[i])),
            lines=tuple(self.line(j) for j in range(first, last)),
        )

    def label(self, i: int) -> SimLabel:
        line = int(self.label_line[i])
        return SimLabel(
            expense_id=self.expense_ids[line],
            sheet_id=self.sheet_ids[int(self.line_sheet[line])],
            is_fraud=bool(self.label_is_fraud[i]),
            labelled_at=from_us(int(self.label_us[i])),
            source="auditor",
        )


@dataclass(frozen=True)
class FraudRegime:
    """How much fraud and of which kinds, from `since_us` on."""

    since_us: int
    rate: float
    mix: Mapping[FraudKind, float]


@dataclass(frozen=True)
class _MerchantTable:
    """Every merchant name: each category's merchants in a block, then the personal ones."""

    names: list[str]
    offsets: IntArray  # per category: where its block starts
    counts: IntArray  # per category: how many merchants its block holds
    personal_offset: int

    def pick(self, category: IntArray, u: FloatArray) -> IntArray:
        """One merchant of each line's category, chosen by the uniform `u`."""
        chosen = self.offsets[category] + np.floor(u * self.counts[category]).astype(np.int64)
        return np.asarray(chosen, dtype=np.int64)


@dataclass(frozen=True)
class _Sheets:
    """Who submitted each sheet and when, and which lines each sheet owns."""

    employee: IntArray
    submitted_us: IntArray
    line_start: IntArray  # len = sheets + 1, as in ExpenseData.sheet_line_start
    line_sheet: IntArray  # per line: its sheet


@dataclass(frozen=True)
class _Lines:
    """What each line bought: columns that fraud and duplicates later rewrite in place."""

    emp: IntArray  # per line: its employee
    category: IntArray
    merchant: IntArray
    cents: IntArray
    currency: IntArray


def _merchant_table() -> _MerchantTable:
    names: list[str] = []
    offsets: list[int] = []
    for category in catalog.CATEGORIES:
        offsets.append(len(names))
        names.extend(category.merchants)
    personal_offset = len(names)
    names.extend(catalog.PERSONAL_MERCHANTS)
    counts = [len(c.merchants) for c in catalog.CATEGORIES]
    return _MerchantTable(
        names=names,
        offsets=np.array(offsets, dtype=np.int64),
        counts=np.array(counts, dtype=np.int64),
        personal_offset=personal_offset,
    )


def _pick(cdf: FloatArray, u: FloatArray) -> IntArray:
    """Row-wise inverse-CDF sampling: one category per row of `cdf` for each uniform in `u`."""
    picked = (u[:, None] > cdf).sum(axis=1)
    return np.asarray(np.minimum(picked, cdf.shape[1] - 1), dtype=np.int64)


def _make_employees(
    config: ExpenseConfig,
    prefix: str,
    rng: np.random.Generator,
    table: _MerchantTable,
) -> Employees:
    n = config.employees
    n_cat = len(catalog.CATEGORIES)
    role = rng.integers(0, len(catalog.ROLES), size=n)
    alpha = np.array([weights for _, weights in catalog.ROLES])[role]
    # Gamma draws normalised per row are Dirichlet draws, without a Python loop per employee.
    gammas = rng.gamma(alpha)
    weights = gammas / gammas.sum(axis=1, keepdims=True)
    cdf = np.cumsum(weights, axis=1)
    cdf[:, -1] = 1.0
    medians = np.array([c.median for c in catalog.CATEGORIES])
    median_amount = medians[None, :] * np.exp(rng.normal(0.0, 0.25, size=(n, n_cat)))
    u = rng.random((n, n_cat, _USUAL_MERCHANTS))
    usual = table.offsets[None, :, None] + np.floor(u * table.counts[None, :, None]).astype(
        np.int64
    )
    workdays = rng.random((n, 5)) < 0.8
    workdays[np.arange(n), rng.integers(0, 5, size=n)] = True
    usual_weekdays = np.concatenate([workdays, np.zeros((n, 2), dtype=np.bool_)], axis=1)
    home_p = np.array(catalog.HOME_CURRENCY_WEIGHTS) / sum(catalog.HOME_CURRENCY_WEIGHTS)
    home = rng.choice(len(catalog.CURRENCIES), size=n, p=home_p).astype(np.int64)
    return Employees(
        ids=[f"EMP-{prefix}-{i:04d}" for i in range(n)],
        role=role.astype(np.int64),
        home_currency=home,
        category_cdf=cdf,
        median_amount=median_amount,
        usual_merchants=usual,
        usual_weekdays=usual_weekdays,
    )


def _submission_times(n: int, start_us: int, span_us: int, rng: np.random.Generator) -> IntArray:
    """Sheets go in on working days, during office hours, spread over the whole span."""
    days = day_of(np.array([start_us], dtype=np.int64))[0] + rng.integers(
        0, max(1, span_us // US_PER_DAY), size=n
    )
    wd = weekday(days)
    days = days + np.where(wd >= 5, 7 - wd, 0)  # a weekend submission waits for Monday
    seconds = rng.integers(8 * 3600, 19 * 3600, size=n)
    return np.sort(days * US_PER_DAY + seconds * 1_000_000)


def _line_counts(n: int, max_lines: int, rng: np.random.Generator) -> IntArray:
    sizes = np.arange(1, max_lines + 1)
    p = np.exp(-sizes / 7.0)
    return rng.choice(sizes, size=n, p=p / p.sum()).astype(np.int64)


def _usual_days(
    last_day: IntArray,
    period: IntArray,
    usual_weekdays: BoolArray,
    holiday_days: IntArray,
    rng: np.random.Generator,
) -> IntArray:
    """A day within each line's period on one of its employee's usual weekdays, not a holiday."""
    days = last_day - np.floor(rng.random(len(last_day)) * period).astype(np.int64)
    for _ in range(30):
        bad = ~usual_weekdays[np.arange(len(days)), weekday(days)] | np.isin(days, holiday_days)
        if not bad.any():
            return days
        days[bad] = last_day[bad] - np.floor(rng.random(int(bad.sum())) * period[bad]).astype(
            np.int64
        )
    # Rare leftovers (tiny periods, few usual weekdays): walk back to the nearest acceptable day.
    for i in np.flatnonzero(bad):
        while not usual_weekdays[i, weekday(days[i : i + 1])[0]] or days[i] in holiday_days:
            days[i] -= 1
    return days


def _fraud_kinds(
    line_us: IntArray, regimes: tuple[FraudRegime, ...], rng: np.random.Generator
) -> IntArray:
    """LEGIT or a FRAUD_KINDS index per line, under the regime in force when its sheet went in."""
    u_rate = rng.random(len(line_us))
    u_kind = rng.random(len(line_us))
    kinds = np.full(len(line_us), LEGIT, dtype=np.int64)
    for regime_index, regime in enumerate(regimes):
        until = regimes[regime_index + 1].since_us if regime_index + 1 < len(regimes) else None
        in_force = line_us >= regime.since_us
        if until is not None:
            in_force &= line_us < until
        weights = np.array([regime.mix.get(kind, 0.0) for kind in FRAUD_KINDS])
        cdf = np.cumsum(weights / weights.sum())
        chosen = in_force & (u_rate < regime.rate)
        picked = np.minimum(np.searchsorted(cdf, u_kind[chosen], side="right"), len(cdf) - 1)
        kinds[chosen] = picked
    return kinds


def _sheets(
    config: ExpenseConfig, start_us: int, span_us: int, rng: np.random.Generator
) -> _Sheets:
    """`config.sheets` sheets of random employees over the span, with their number of lines."""
    n_sheets = config.sheets
    sheet_employee = rng.integers(0, config.employees, size=n_sheets).astype(np.int64)
    submitted = _submission_times(n_sheets, start_us, span_us, rng)
    sizes = _line_counts(n_sheets, config.max_lines, rng)
    return _Sheets(
        employee=sheet_employee,
        submitted_us=submitted,
        line_start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        line_sheet=np.repeat(np.arange(n_sheets, dtype=np.int64), sizes),
    )


def _purchases(
    employees: Employees, emp: IntArray, table: _MerchantTable, rng: np.random.Generator
) -> _Lines:
    """What was bought, where, for how much: the employee's habits plus ordinary noise."""
    n = len(emp)
    category = _pick(employees.category_cdf[emp], rng.random(n))
    usual_pick = employees.usual_merchants[emp, category, rng.integers(0, _USUAL_MERCHANTS, n)]
    any_pick = table.pick(category, rng.random(n))
    merchant = np.where(rng.random(n) < 0.9, usual_pick, any_pick)
    spread = np.array([c.spread for c in catalog.CATEGORIES])[category]
    amount = employees.median_amount[emp, category] * np.exp(spread * rng.normal(size=n))
    whole = np.array([c.whole_units for c in catalog.CATEGORIES])[category]
    amount = np.where(whole, np.round(amount), amount)
    currency = employees.home_currency[emp].copy()
    abroad = _is_travel(category) & (rng.random(n) < 0.08)
    foreign = rng.integers(0, len(catalog.CURRENCIES), size=n)
    abroad &= foreign != currency
    rates = np.array(catalog.UNITS_PER_EUR)
    amount = np.where(abroad, amount * rates[foreign] / rates[currency], amount)
    currency = np.where(abroad, foreign, currency)
    # Honest lines are not all typical: flat fees and per diems are round, a long trip costs a
    # multiple of the usual, and a hotel's restaurant is a lodging merchant on a meals line.
    flat_fee = rng.random(n) < 0.03
    amount = np.where(flat_fee, np.maximum(50.0, np.round(amount / 50.0) * 50.0), amount)
    long_trip = rng.random(n) < 0.015
    amount = np.where(long_trip, amount * rng.uniform(2.5, 6.0, size=n), amount)
    cents = np.maximum(100, np.round(amount * 100)).astype(np.int64)
    elsewhere = rng.integers(1, len(catalog.CATEGORIES), size=n)
    cross_category = (category + elsewhere) % len(catalog.CATEGORIES)
    cross_merchant = table.pick(cross_category, rng.random(n))
    merchant = np.where(rng.random(n) < 0.03, cross_merchant, merchant)
    return _Lines(
        emp=emp,
        category=category,
        merchant=merchant,
        cents=cents,
        currency=currency,
    )


def _is_travel(category: IntArray) -> BoolArray:
    """Whether each line's category is travel, where trips abroad and weekends are ordinary."""
    return np.asarray(np.array([c.travel for c in catalog.CATEGORIES])[category], dtype=np.bool_)


def _expense_days(
    lines: _Lines,
    submitted_day: IntArray,
    period: IntArray,
    employees: Employees,
    holiday_days: IntArray,
    rng: np.random.Generator,
) -> IntArray:
    """Lines are dated in the weeks before submission, on the employee's usual weekdays.

    A few trips legitimately run into a weekend, so a weekend date alone is not proof of fraud.
    """
    last_day = submitted_day - 1
    usual_weekdays = employees.usual_weekdays[lines.emp]
    expense_day = _usual_days(last_day, period, usual_weekdays, holiday_days, rng)
    weekend_trip = _is_travel(lines.category) & (rng.random(len(last_day)) < 0.05)
    return np.where(
        weekend_trip,
        last_day - np.floor(rng.random(len(last_day)) * period).astype(np.int64),
        expense_day,
    )


def _descriptions(category: IntArray, rng: np.random.Generator) -> list[str]:
    """One of the category's usual descriptions per line."""
    descriptions = [c.descriptions for c in catalog.CATEGORIES]
    desc_pick = rng.integers(0, 1 << 30, size=len(category))
    return [
        descriptions[c][int(k) % len(descriptions[c])]
        for c, k in zip(category.tolist(), desc_pick, strict=True)
    ]


def _receipts(
    cents: IntArray,
    kinds: IntArray,
    line_start: IntArray,
    prefix: str,
    rng: np.random.Generator,
) -> list[str | None]:
    """Each line's receipt reference, or None when the receipt went missing."""
    n = len(cents)
    # Small receipts often go missing; fraudsters always attach one.
    no_receipt = (cents < 2500) & (rng.random(n) < 0.3) & (kinds == LEGIT)
    # One receipt sometimes covers two lines of a sheet (a hotel bill split into room and meals).
    shares_previous = (rng.random(n) < 0.03) & (kinds == LEGIT)
    shares_previous[line_start[:-1]] = False
    receipt_number = np.maximum.accumulate(np.where(shares_previous, 0, np.arange(n)))
    return [
        None if missing else f"R-{prefix}-{k:07d}"
        for k, missing in zip(receipt_number.tolist(), no_receipt.tolist(), strict=True)
    ]


def _labels(
    config: ExpenseConfig, kinds: IntArray, line_submitted_us: IntArray, rng: np.random.Generator
) -> tuple[IntArray, IntArray, BoolArray]:
    """Which lines auditors label, when (some while after the sheet) and what they say.

    Returns the labelled lines, their label times and verdicts; a verdict is sometimes wrong.
    """
    n = len(kinds)
    labelled = np.flatnonzero(rng.random(n) < config.label_fraction)
    delay_days = np.exp(np.log(config.label_delay_median_days) + 0.9 * rng.normal(size=n))
    longest = MAX_LABEL_DELAY.days * US_PER_DAY
    delay_us = np.clip(delay_days * US_PER_DAY, US_PER_HOUR, longest).astype(np.int64)
    delay_us -= delay_us % 1_000_000  # whole seconds, as upstream systems stamp them
    flipped = rng.random(n) < config.label_noise
    label_value = (kinds != LEGIT) ^ flipped
    return (
        labelled.astype(np.int64),
        (line_submitted_us + delay_us)[labelled],
        np.asarray(label_value[labelled], dtype=np.bool_),
    )


def generate_expenses(
    config: ExpenseConfig,
    *,
    prefix: str,
    start_us: int,
    span_us: int,
    regimes: tuple[FraudRegime, ...],
    rng: np.random.Generator,
) -> ExpenseData:
    """Employees, `config.sheets` sheets over the span, fraud per `regimes`, and audit labels."""
    table = _merchant_table()
    employees = _make_employees(config, prefix, rng, table)
    sheets = _sheets(config, start_us, span_us, rng)
    line_sheet = sheets.line_sheet
    line_submitted_us = sheets.submitted_us[line_sheet]
    first_year = int(from_us(start_us).year)
    holiday_days = holidays(first_year - 1, int(from_us(start_us + span_us).year) + 1)

    lines = _purchases(employees, sheets.employee[line_sheet], table, rng)
    period = rng.integers(7, 31, size=config.sheets)[line_sheet]
    submitted_day = day_of(sheets.submitted_us)[line_sheet]
    expense_day = _expense_days(lines, submitted_day, period, employees, holiday_days, rng)

    kinds = _fraud_kinds(line_submitted_us, regimes, rng)
    _inject_fraud(
        kinds,
        lines,
        expense_day,
        config=config,
        rng=rng,
        employees=employees,
        last_day=submitted_day - 1,
        period=period,
        holiday_days=holiday_days,
        table=table,
    )
    description = _descriptions(lines.category, rng)
    receipt = _receipts(lines.cents, kinds, sheets.line_start, prefix, rng)
    _copy_duplicates(
        kinds,
        rng=rng,
        emp=lines.emp,
        columns=(lines.cents, lines.currency, lines.category, lines.merchant, expense_day),
        description=description,
        receipt=receipt,
    )
    label_line, label_us, label_is_fraud = _labels(config, kinds, line_submitted_us, rng)

    return ExpenseData(
        employees=employees,
        merchants=table.names,
        sheet_ids=[f"SHEET-{prefix}-{i:06d}" for i in range(config.sheets)],
        sheet_employee=sheets.employee,
        sheet_submitted_us=sheets.submitted_us,
        sheet_line_start=sheets.line_start,
        expense_ids=[f"EXP-{prefix}-{i:07d}" for i in range(len(line_sheet))],
        line_sheet=line_sheet,
        amount_cents=lines.cents,
        currency=lines.currency.astype(np.int64),
        category=lines.category,
        merchant=lines.merchant.astype(np.int64),
        expense_day=expense_day,
        description=description,
        receipt_ref=receipt,
        fraud_kind=kinds,
        label_line=label_line,
        label_us=label_us,
        label_is_fraud=label_is_fraud,
    )


def _inject_fraud(
    kinds: IntArray,
    lines: _Lines,
    expense_day: IntArray,
    *,
    config: ExpenseConfig,
    rng: np.random.Generator,
    employees: Employees,
    last_day: IntArray,
    period: IntArray,
    holiday_days: IntArray,
    table: _MerchantTable,
) -> None:
    """Rewrite the lines chosen as fraud in place, each in the way its kind departs from habit."""
    emp, category, merchant, cents = lines.emp, lines.category, lines.merchant, lines.cents
    fraud = kinds != LEGIT
    # Fraud is claimed in the employee's own currency: that is where the limit and habits live.
    lines.currency[fraud] = employees.home_currency[emp[fraud]]

    under = np.flatnonzero(kinds == FRAUD_KINDS.index(FraudKind.JUST_UNDER_LIMIT))
    limit_cents = round(config.approval_limit * 100)
    large = np.array(catalog.LARGE_TICKET_CATEGORIES)
    category[under] = large[rng.integers(0, len(large), size=len(under))]
    merchant[under] = employees.usual_merchants[emp[under], category[under], 0]
    low = int(limit_cents * 0.96)
    cents[under] = rng.integers(low, limit_cents, size=len(under))

    rounded = np.flatnonzero(kinds == FRAUD_KINDS.index(FraudKind.ROUND_AMOUNT))
    cents[rounded] = _ROUND_AMOUNTS[rng.integers(0, len(_ROUND_AMOUNTS), len(rounded))] * 100

    spike = np.flatnonzero(kinds == FRAUD_KINDS.index(FraudKind.AMOUNT_SPIKE))
    factor = rng.uniform(4.0, 12.0, size=len(spike))
    typical = employees.median_amount[emp[spike], category[spike]]
    cents[spike] = np.round(typical * factor * 100).astype(np.int64)

    mismatch = np.flatnonzero(kinds == FRAUD_KINDS.index(FraudKind.CATEGORY_MISMATCH))
    personal = rng.random(len(mismatch)) < 0.6
    n_personal = len(catalog.PERSONAL_MERCHANTS)
    other_category = (
        category[mismatch] + rng.integers(1, len(catalog.CATEGORIES), len(mismatch))
    ) % len(catalog.CATEGORIES)
    other_merchant = table.pick(other_category, rng.random(len(mismatch)))
    merchant[mismatch] = np.where(
        personal,
        table.personal_offset + rng.integers(0, n_personal, len(mismatch)),
        other_merchant,
    )

    off = np.flatnonzero(kinds == FRAUD_KINDS.index(FraudKind.WEEKEND_OR_HOLIDAY))
    for i in off:
        first = int(last_day[i] - period[i] + 1)
        window = np.arange(first, int(last_day[i]) + 1, dtype=np.int64)
        candidates = window[is_off_day(window, holiday_days)]
        if len(candidates):
            expense_day[i] = candidates[rng.integers(0, len(candidates))]
        else:
            # A period of under a week may hold no off day: use the Saturday just before it.
            expense_day[i] = first - 1 - (int(weekday(window[:1])[0]) + 1) % 7


def _copy_duplicates(
    kinds: IntArray,
    *,
    rng: np.random.Generator,
    emp: IntArray,
    columns: tuple[IntArray, ...],
    description: list[str],
    receipt: list[str | None],
) -> None:
    """Turn each duplicate-receipt line into a copy of an earlier genuine line of its employee.

    A duplicate with nothing earlier to copy (the employee's very first line) becomes a
    round-amount fraud instead, so the truth never names a duplicate that is not one.
    """
    duplicate = FRAUD_KINDS.index(FraudKind.DUPLICATE_RECEIPT)
    targets = np.flatnonzero(kinds == duplicate)
    if not len(targets):
        return
    genuine = np.flatnonzero((kinds == LEGIT) & np.array([r is not None for r in receipt]))
    by_employee = {int(e): genuine[emp[genuine] == e] for e in np.unique(emp[targets])}
    for i in targets.tolist():
        sources = by_employee[int(emp[i])]
        earlier = sources[: int(np.searchsorted(sources, i))]
        if not len(earlier):
            kinds[i] = FRAUD_KINDS.index(FraudKind.ROUND_AMOUNT)
            columns[0][i] = _ROUND_AMOUNTS[rng.integers(0, len(_ROUND_AMOUNTS))] * 100
            continue
        # Fraudsters re-submit recent receipts, which reviewers are least likely to remember.
        source = int(earlier[-1 - int(rng.integers(0, min(len(earlier), 20)))])
        for column in columns:
            column[i] = column[source]
        description[i] = description[source]
        receipt[i] = receipt[source]
