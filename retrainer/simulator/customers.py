"""Card customers and their monthly statements, driven by a latent risk model with a known truth.

A customer's risk of missing payments is a hidden mix of their profile (income, employment,
tenure, region, age), an unobserved personal trait and a persistent month-to-month stress. The
same risk drives what a statement shows (utilization, payments, cash advances, lateness), so the
statements carry real signal about becoming delinquent (days past due ≥ 30) within the horizon.
Customers are simulated column-wise: one numpy step per month for all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from retrainer.simulator import catalog
from retrainer.simulator.config import CustomerConfig, DriftConfig
from retrainer.simulator.dates import (
    US_PER_DAY,
    BoolArray,
    IntArray,
    day_of,
    from_day,
    from_us,
)

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SimCustomer:
    """A new customer as the onboarding system announces them."""

    customer_id: str
    created_at: datetime
    age: int
    annual_income: Decimal
    credit_limit: Decimal
    region: str
    product: str
    tenure_months: int
    employment_status: str


@dataclass(frozen=True)
class SimStatement:
    """One monthly statement, with whether the customer goes delinquent within the horizon."""

    statement_id: str
    customer_id: str
    statement_date: date
    balance: Decimal
    credit_limit: Decimal
    payment_amount: Decimal
    minimum_due: Decimal
    purchase_amount: Decimal
    cash_advance_amount: Decimal
    days_past_due: int
    delinquent_ahead: bool


@dataclass(frozen=True)
class CustomerData:
    """Profiles (one row per customer) and statements (customers × months) as columns.

    Statement columns hold `statements_per_customer` published months; the truth looks further
    ahead, into months that were simulated but are not published.
    """

    ids: list[str]
    created_us: IntArray
    age: IntArray
    income_cents: IntArray
    limit_cents: IntArray
    region: IntArray
    product: IntArray
    tenure_months: IntArray
    employment: IntArray
    statement_ids: list[list[str]]
    statement_us: IntArray  # (customers, months): when each statement is issued
    balance_cents: IntArray
    payment_cents: IntArray
    minimum_cents: IntArray
    purchase_cents: IntArray
    cash_cents: IntArray
    days_past_due: IntArray
    delinquent_ahead: BoolArray
    latent_risk: FloatArray

    @property
    def customer_count(self) -> int:
        return len(self.ids)

    @property
    def months(self) -> int:
        return int(self.statement_us.shape[1]) if self.statement_us.ndim == 2 else 0

    def customer(self, i: int) -> SimCustomer:
        return SimCustomer(
            customer_id=self.ids[i],
            created_at=from_us(int(self.created_us[i])),
            age=int(self.age[i]),
            annual_income=Decimal(int(self.income_cents[i])).scaleb(-2),
            credit_limit=Decimal(int(self.limit_cents[i])).scaleb(-2),
            region=catalog.REGIONS[int(self.region[i])],
            product=catalog.PRODUCTS[int(self.product[i])],
            tenure_months=int(self.tenure_months[i]),
            employment_status=catalog.EMPLOYMENT[int(self.employment[i])],
        )

    def statement(self, i: int, month: int) -> SimStatement:
        def money(column: IntArray) -> Decimal:
            return Decimal(int(column[i, month])).scaleb(-2)

        return SimStatement(
            statement_id=self.statement_ids[i][month],
            customer_id=self.ids[i],
            statement_date=from_day(int(self.statement_us[i, month] // US_PER_DAY)),
            balance=money(self.balance_cents),
            credit_limit=Decimal(int(self.limit_cents[i])).scaleb(-2),
            payment_amount=money(self.payment_cents),
            minimum_due=money(self.minimum_cents),
            purchase_amount=money(self.purchase_cents),
            cash_advance_amount=money(self.cash_cents),
            days_past_due=int(self.days_past_due[i, month]),
            delinquent_ahead=bool(self.delinquent_ahead[i, month]),
        )


def _sigmoid(x: FloatArray) -> FloatArray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)), dtype=np.float64)


def _cents(x: FloatArray) -> IntArray:
    return np.round(x * 100).astype(np.int64)


def _statement_days(created_us: IntArray, months: int) -> IntArray:
    """Monthly statement dates on the customer's cycle day (day of joining, at most the 28th)."""
    created = day_of(created_us).astype("datetime64[D]")
    month = created.astype("datetime64[M]")
    day_in_month = (created - month.astype("datetime64[D]")).astype(np.int64)
    cycle = np.minimum(day_in_month, 27)
    ahead = month[:, None] + np.arange(1, months + 1)
    days = ahead.astype("datetime64[D]").astype(np.int64) + cycle[:, None]
    return np.asarray(days, dtype=np.int64)


@dataclass(frozen=True)
class _Profiles:
    """Who the customers are, one row each, before they become cents and catalog indices."""

    created_us: IntArray
    age: IntArray
    employment: IntArray
    income: FloatArray
    product: IntArray
    limit: FloatArray
    tenure_months: IntArray
    region: IntArray


@dataclass(frozen=True)
class _Months:
    """What every month of the simulation showed (customers × months, beyond the published ones)."""

    balance: FloatArray
    payment: FloatArray
    minimum: FloatArray
    purchases: FloatArray
    cash: FloatArray
    days_past_due: IntArray
    risk: FloatArray


def _employment(age: IntArray, rng: np.random.Generator) -> IntArray:
    """Employment status by catalog weight, made plausible for the customer's age."""
    n = len(age)
    employment_p = np.array(catalog.EMPLOYMENT_WEIGHTS) / sum(catalog.EMPLOYMENT_WEIGHTS)
    employment = rng.choice(len(catalog.EMPLOYMENT), size=n, p=employment_p).astype(np.int64)
    employed, retired, student = (
        catalog.EMPLOYMENT.index(s) for s in ("employed", "retired", "student")
    )
    u = rng.random(n)
    employment[(age < 25) & (u < 0.35)] = student
    employment[(age >= 66) & (u < 0.75)] = retired
    employment[((employment == student) & (age >= 30)) | ((employment == retired) & (age < 55))] = (
        employed
    )
    return employment


def _profiles(
    config: CustomerConfig,
    drift: DriftConfig,
    *,
    start_us: int,
    drift_us: int | None,
    rng: np.random.Generator,
) -> _Profiles:
    """Customers joining over the onboarding window: age, work, income, card and region."""
    n = config.customers
    # Whole seconds, as upstream systems stamp them.
    onboarding_s = config.onboarding_days * 86_400
    created = np.sort(start_us + rng.integers(0, onboarding_s, size=n) * 1_000_000)
    joined_after_drift = (
        np.zeros(n, dtype=np.bool_) if drift_us is None else np.asarray(created >= drift_us)
    )

    age = np.clip(np.round(18 + rng.gamma(2.2, 10.0, size=n)), 18, 90).astype(np.int64)
    employment = _employment(age, rng)
    median_income = np.array(catalog.EMPLOYMENT_MEDIAN_INCOME)[employment]
    income = median_income * np.exp(0.45 * rng.normal(size=n))
    income = np.where(joined_after_drift, income * drift.income_factor, income)
    income = np.maximum(1000.0, np.round(income, -2))

    score = np.log(income) + rng.normal(0.0, 0.3, size=n)
    product = np.where(
        employment == catalog.EMPLOYMENT.index("student"),
        catalog.PRODUCTS.index("student"),
        1 + (score >= np.log(45_000)) + (score >= np.log(90_000)),
    ).astype(np.int64)
    ratio = np.array(catalog.PRODUCT_LIMIT_RATIO)[product]
    limit = np.maximum(500.0, np.round(income * ratio * np.exp(0.15 * rng.normal(size=n)), -2))
    tenure = np.minimum(np.floor(rng.exponential(40.0, size=n)), (age - 18) * 12).astype(np.int64)
    region = rng.integers(0, len(catalog.REGIONS), size=n).astype(np.int64)
    return _Profiles(
        created_us=created,
        age=age,
        employment=employment,
        income=income,
        product=product,
        limit=limit,
        tenure_months=tenure,
        region=region,
    )


def _base_risk(profiles: _Profiles, rng: np.random.Generator) -> FloatArray:
    """The customer's standing risk.

    Partly visible in the profile, partly a hidden trait that only shows through behaviour on
    the statements.
    """
    hidden = rng.normal(size=len(profiles.age))
    return np.asarray(
        -0.6 * np.log(profiles.income / 40_000.0)
        + np.array(catalog.EMPLOYMENT_RISK)[profiles.employment]
        + np.array(catalog.REGION_RISK)[profiles.region]
        - 0.01 * np.minimum(profiles.tenure_months, 120)
        + 0.3 * (profiles.age < 25)
        + 0.7 * hidden,
        dtype=np.float64,
    )


def _simulate_months(
    limit: FloatArray,
    base_risk: FloatArray,
    drifted: BoolArray,
    drift: DriftConfig,
    rng: np.random.Generator,
) -> _Months:
    """Every month's statement figures, one numpy step per month for all customers at once.

    A persistent stress moves each customer's risk, and the risk drives spending, cash advances
    and missed payments.
    """
    n, months = drifted.shape
    balance = np.zeros((n, months))
    payment = np.zeros((n, months))
    minimum = np.zeros((n, months))
    purchases = np.zeros((n, months))
    cash = np.zeros((n, months))
    dpd = np.zeros((n, months), dtype=np.int64)
    risk = np.zeros((n, months))
    stress = rng.normal(0.0, 0.8, size=n)
    missed_in_row = np.zeros(n, dtype=np.int64)
    previous_balance = limit * _sigmoid(-1.2 + 0.9 * base_risk)
    previous_minimum = np.maximum(np.minimum(25.0, previous_balance), 0.03 * previous_balance)
    for month in range(months):
        stress = 0.75 * stress + rng.normal(0.0, 0.55, size=n)
        shifted = drifted[:, month]
        risk_now = base_risk + stress + np.where(shifted, drift.stress_shift, 0.0)
        risk[:, month] = risk_now

        utilization = _sigmoid(-1.0 + 0.7 * risk_now + rng.normal(0.0, 0.8, size=n))
        utilization = np.clip(
            utilization + np.where(shifted, drift.utilization_shift, 0.0), 0, 1.15
        )
        in_credit = rng.random(n) < 0.01
        month_balance = np.where(in_credit, -rng.uniform(1.0, 50.0, size=n), utilization * limit)
        takes_cash = rng.random(n) < _sigmoid(-3.2 + 1.1 * risk_now)
        cash[:, month] = np.where(takes_cash, limit * rng.uniform(0.02, 0.12, size=n), 0.0)
        purchases[:, month] = limit * 0.1 * np.exp(0.5 * rng.normal(size=n)) * (0.5 + utilization)

        # Lateness begets lateness: a customer already behind is far more likely to miss again.
        p_miss = _sigmoid(-3.6 + 1.2 * risk_now + 2.0 * (missed_in_row > 0) + 0.6 * takes_cash)
        owes = previous_minimum > 0
        misses = owes & (rng.random(n) < p_miss)
        settle = _sigmoid(0.8 - 0.8 * risk_now + rng.normal(0.0, 1.0, size=n))
        paid = previous_minimum + settle * np.maximum(previous_balance - previous_minimum, 0.0)
        partial = previous_minimum * rng.uniform(0.0, 0.5, size=n) * (rng.random(n) < 0.5)
        payment[:, month] = np.where(misses, partial, np.where(owes, paid, 0.0))
        missed_in_row = np.where(misses, missed_in_row + 1, 0)
        dpd[:, month] = np.where(
            missed_in_row > 0, 30 * (missed_in_row - 1) + rng.integers(1, 30, size=n), 0
        )

        balance[:, month] = month_balance
        positive = np.maximum(month_balance, 0.0)
        minimum[:, month] = np.where(
            positive > 0, np.minimum(positive, np.maximum(25.0, 0.03 * positive)), 0.0
        )
        previous_balance = positive
        previous_minimum = minimum[:, month]
    return _Months(
        balance=balance,
        payment=payment,
        minimum=minimum,
        purchases=purchases,
        cash=cash,
        days_past_due=dpd,
        risk=risk,
    )


def _delinquent_ahead(dpd: IntArray, config: CustomerConfig) -> BoolArray:
    """For each published month: does the customer go delinquent within the horizon after it?"""
    published = config.statements_per_customer
    delinquent = dpd >= config.delinquent_days_past_due
    ahead = np.zeros((len(dpd), published), dtype=np.bool_)
    for step in range(1, config.horizon_months + 1):
        ahead |= delinquent[:, step : step + published]
    return ahead


def generate_customers(
    config: CustomerConfig,
    drift: DriftConfig,
    *,
    prefix: str,
    start_us: int,
    drift_us: int | None,
    rng: np.random.Generator,
) -> CustomerData:
    """`config.customers` customers joining over the onboarding window, with their statements."""
    n = config.customers
    published = config.statements_per_customer
    months = published + config.horizon_months
    profiles = _profiles(config, drift, start_us=start_us, drift_us=drift_us, rng=rng)
    base_risk = _base_risk(profiles, rng)

    statement_days = _statement_days(profiles.created_us, months)
    statement_us = statement_days * US_PER_DAY + (
        rng.integers(2 * 3600, 5 * 3600, size=(n, months)) * 1_000_000
    )
    drifted = (
        np.zeros((n, months), dtype=np.bool_)
        if drift_us is None
        else np.asarray(statement_us >= drift_us)
    )
    simulated = _simulate_months(profiles.limit, base_risk, drifted, drift, rng)

    kept = slice(0, published)
    return CustomerData(
        ids=[f"CUST-{prefix}-{i:06d}" for i in range(n)],
        created_us=profiles.created_us,
        age=profiles.age,
        income_cents=_cents(profiles.income),
        limit_cents=_cents(profiles.limit),
        region=profiles.region,
        product=profiles.product,
        tenure_months=profiles.tenure_months,
        employment=profiles.employment,
        statement_ids=[
            [f"STMT-{prefix}-{i:06d}-{m:02d}" for m in range(published)] for i in range(n)
        ],
        statement_us=statement_us[:, kept],
        balance_cents=_cents(simulated.balance[:, kept]),
        payment_cents=_cents(simulated.payment[:, kept]),
        minimum_cents=_cents(simulated.minimum[:, kept]),
        purchase_cents=_cents(simulated.purchases[:, kept]),
        cash_cents=_cents(simulated.cash[:, kept]),
        days_past_due=simulated.days_past_due[:, kept],
        delinquent_ahead=_delinquent_ahead(simulated.days_past_due, config),
        latent_risk=simulated.risk[:, kept],
    )
