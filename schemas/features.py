"""Vectorised feature builders shared by the trainer and the scorers (no train/serve skew).

Pure pandas/NumPy. Every feature of a row uses only that row and rows before it in time, so the
same call gives the same answer at training time (history up to a cutoff) and at scoring time
(history plus the new rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

FEATURES_VERSION = 3
"""Bumped whenever a feature's meaning changes; stored with every model version.

3: employment statuses are normalised (`Self-Employed`, `part-time` …), contractor and part-time
have their own features, and every other value goes to `employment_other`."""

# --- delinquency ----------------------------------------------------------------------------

ACTIVITY_COLUMNS: tuple[str, ...] = (
    "statement_id",
    "customer_id",
    "statement_date",
    "balance",
    "credit_limit",
    "payment_amount",
    "minimum_due",
    "purchase_amount",
    "cash_advance_amount",
    "days_past_due",
)
"""What `delinquency_features` needs of each statement (customer_activity's columns)."""

PROFILE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "age",
    "annual_income",
    "tenure_months",
    "employment_status",
)
"""What `delinquency_features` needs of each customer (customers' columns)."""

EMPLOYMENT_STATUSES: tuple[str, ...] = (
    "employed",
    "self_employed",
    "contractor",
    "part_time",
    "unemployed",
    "student",
    "retired",
)
"""The employment statuses a model knows, normalised (see `normalise_category`); the first one is
the baseline and has no feature of its own. Any other value is counted as `other`."""
CATEGORICAL_FIELDS: tuple[str, ...] = ("employment_status",)
"""Profile fields whose values are looked up in a known set (see `unknown_categories`)."""
OTHER_CATEGORY = "other"
"""The bucket of a categorical value outside its known set."""
_EMPLOYMENT_FEATURES: tuple[str, ...] = (*EMPLOYMENT_STATUSES[1:], OTHER_CATEGORY)

DELINQUENCY_FEATURES: tuple[str, ...] = (
    "utilization",
    "utilization_change",
    "payment_to_previous_minimum",
    "payment_to_previous_balance",
    "missed_minimum",
    "missed_minimum_3",
    "cash_advance_to_limit",
    "purchases_to_limit",
    "days_past_due",
    "max_days_past_due_3",
    "months_on_book",
    "log_income",
    "limit_to_income",
    "age",
    "tenure_months",
    *(f"employment_{status}" for status in _EMPLOYMENT_FEATURES),
)

DEFAULT_DELINQUENT_DAYS_PAST_DUE = 30
DEFAULT_HORIZON_DAYS = 92
"""Three statement cycles: the longest three calendar months (e.g. July to October) last 92 days."""
DEFAULT_GRACE_DAYS = 7
"""A statement this close to the horizon's end shows the customer was observed through it."""


def _day_numbers(values: pd.Series) -> IntArray:
    """Whole days since 1970-01-01 of a date/datetime column (any resolution)."""
    as_days = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
    return np.asarray(as_days.astype(np.int64), dtype=np.int64)


def _float(frame: pd.DataFrame, column: str) -> FloatArray:
    return np.asarray(pd.to_numeric(frame[column]).to_numpy(dtype=np.float64), dtype=np.float64)


def sort_ranks(values: pd.Series) -> IntArray:
    """Per value, its rank among the distinct values in pandas' sort order (missing ones last).

    Sorting these integers orders the rows as sorting the values would, at the cost of hashing
    the values once and sorting only the distinct ones.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    rank_of = np.empty(len(uniques) + 1, dtype=np.int64)
    rank_of[np.asarray(pd.Series(uniques).argsort(kind="stable"), dtype=np.int64)] = np.arange(
        len(uniques)
    )
    rank_of[-1] = len(uniques)  # the sentinel -1 indexes the last slot: missing sorts last
    return np.asarray(rank_of[codes], dtype=np.int64)


def _segments(keys: IntArray) -> tuple[IntArray, IntArray]:
    """For keys sorted so equal ones are adjacent: each row's segment number and each segment's
    first row."""
    n = len(keys)
    new = np.ones(n, dtype=np.bool_)
    new[1:] = keys[1:] != keys[:-1]
    starts = np.flatnonzero(new)
    return np.cumsum(new, dtype=np.int64) - 1, np.asarray(starts, dtype=np.int64)


def _break_ties(order: IntArray, tied: BoolArray, values: pd.Series) -> IntArray:
    """`order` with each run of tied rows (`tied[i]`: sorted row i + 1 ties with row i)
    reordered by `values` (pandas' stable sort); rows outside the runs stay in place."""
    in_run = np.zeros(len(order), dtype=np.bool_)
    in_run[1:] |= tied
    in_run[:-1] |= tied
    rows = np.flatnonzero(in_run)
    run = np.cumsum(~np.concatenate(([False], tied)))[rows]
    taken = order[rows]
    runs = pd.DataFrame({"run": run, "value": values.take(taken).to_numpy()})
    resorted = runs.sort_values(["run", "value"], kind="stable").index.to_numpy()
    reordered = order.copy()
    reordered[rows] = taken[resorted]
    return reordered


@dataclass(frozen=True)
class _Statements:
    """Statements in (customer, date, statement id) order, as positions into the given frame.

    `order` the source row of each ordered row; `day` its statement day; `group` its customer's
    number (0, 1, … in order) and `starts` each customer's first ordered row.
    """

    source: pd.DataFrame
    order: IntArray
    day: IntArray
    group: IntArray
    starts: IntArray

    @classmethod
    def of(cls, activity: pd.DataFrame) -> _Statements:
        source = activity.loc[:, list(ACTIVITY_COLUMNS)].reset_index(drop=True)
        day = _day_numbers(source["statement_date"])
        customer = sort_ranks(source["customer_id"])
        order = np.asarray(np.lexsort((day, customer)), dtype=np.int64)
        customer_sorted, day_sorted = customer[order], day[order]
        tied = (customer_sorted[1:] == customer_sorted[:-1]) & (day_sorted[1:] == day_sorted[:-1])
        if tied.any():
            order = _break_ties(order, tied, source["statement_id"])
        group, starts = _segments(customer_sorted)
        return cls(source, order, day[order], group, starts)

    def __len__(self) -> int:
        return len(self.order)

    def floats(self, column: str) -> FloatArray:
        return _float(self.source, column)[self.order]

    def ints(self, column: str) -> IntArray:
        values = self.source[column].to_numpy(dtype=np.int64)
        return np.asarray(values[self.order], dtype=np.int64)

    def column(self, column: str) -> pd.Series:
        """A source column in statement order (object columns as the frame constructor infers
        them)."""
        values = self.source[column]
        if isinstance(values.dtype, pd.StringDtype) and values.dtype.na_value is np.nan:
            return values.take(self.order).reset_index(drop=True)
        return pd.Series(values.to_numpy()[self.order])

    def rank(self) -> FloatArray:
        """Per statement, how many of its customer's statements come before it."""
        return (np.arange(len(self.order)) - self.starts[self.group]).astype(np.float64)


def _shift_within(values: FloatArray, group: IntArray, lag: int) -> FloatArray:
    """values[i - lag] when row i - lag belongs to the same group as row i, else NaN.

    Rows must be sorted by group; this replaces groupby().shift() with two array slices.
    """
    shifted = np.full(len(values), np.nan)
    if lag < len(values):
        same = group[lag:] == group[:-lag]
        shifted[lag:] = np.where(same, values[:-lag], np.nan)
    return shifted


def delinquency_features(activity: pd.DataFrame, profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per statement (sorted by customer, date, statement id) with DELINQUENCY_FEATURES.

    A statement's features use that statement and the customer's earlier ones only. Customers
    without a profile row get NaN profile features (the tree models handle missing values).
    The result keeps `statement_id`, `customer_id` and `statement_day` beside the features.
    """
    return _features(_Statements.of(activity), profiles)


def _features(statements: _Statements, profiles: pd.DataFrame) -> pd.DataFrame:
    group = statements.group
    limit = np.maximum(statements.floats("credit_limit"), 1.0)
    balance = statements.floats("balance")
    payment = statements.floats("payment_amount")
    minimum = statements.floats("minimum_due")
    dpd = statements.floats("days_past_due")

    utilization = balance / limit
    previous_balance = _shift_within(balance, group, 1)
    previous_minimum = _shift_within(minimum, group, 1)
    # A payment below the minimum that was due on the previous statement is a missed payment.
    missed = np.where(
        np.isnan(previous_minimum), 0.0, (payment + 0.005 < previous_minimum).astype(np.float64)
    )
    missed_3 = (
        missed
        + np.nan_to_num(_shift_within(missed, group, 1))
        + np.nan_to_num(_shift_within(missed, group, 2))
    )
    worst_3 = np.fmax(np.fmax(dpd, _shift_within(dpd, group, 1)), _shift_within(dpd, group, 2))
    months_on_book = statements.rank()
    customer_id = statements.column("customer_id")
    columns: dict[str, pd.Series | FloatArray | IntArray] = {
        "statement_id": statements.column("statement_id"),
        "customer_id": customer_id,
        "statement_day": statements.day,
        "utilization": utilization,
        "utilization_change": utilization - _shift_within(utilization, group, 1),
        "payment_to_previous_minimum": payment / np.maximum(previous_minimum, 1.0),
        "payment_to_previous_balance": payment / np.maximum(previous_balance, 1.0),
        "missed_minimum": missed,
        "missed_minimum_3": missed_3,
        "cash_advance_to_limit": statements.floats("cash_advance_amount") / limit,
        "purchases_to_limit": statements.floats("purchase_amount") / limit,
        "days_past_due": dpd,
        "max_days_past_due_3": worst_3,
        "months_on_book": months_on_book,
    }
    profile = _profile_features(profiles)
    # Each customer's profile row, looked up once per customer (-1: none).
    found = pd.Index(profile["customer_id"]).get_indexer(customer_id.take(statements.starts))
    row = found[group] if len(group) else np.zeros(0, dtype=np.int64)
    of_profile = {
        # Position -1 (no profile) picks the NaN appended last.
        name: np.append(profile[name].to_numpy(dtype=np.float64), np.nan)[row]
        for name in profile.columns[1:]
    }
    income = of_profile.pop("annual_income")
    of_profile["tenure_months"] = of_profile["tenure_months"] + months_on_book
    of_profile["limit_to_income"] = limit / np.maximum(income, 1.0)
    # One frame built once: inserting columns one by one copies the whole block each time.
    return pd.DataFrame(columns | of_profile, copy=False)


def normalise_category(values: pd.Series) -> pd.Series:
    """Lower case, trimmed, each run of spaces, `-` and `_` as one `_` (`Self-Employed` →
    `self_employed`).

    Missing and blank values stay missing (<NA>): they are unknown, not unexpected.
    """
    text = values.astype("string").str.strip().str.lower()
    text = text.str.replace(r"[\s\-_]+", "_", regex=True)
    return text.mask(text == "")


def _employment(profiles: pd.DataFrame) -> pd.Series:
    """Each profile's employment status: one of EMPLOYMENT_STATUSES, OTHER_CATEGORY, or <NA>.

    Normalised once per distinct value: a few statuses stand for many profiles.
    """
    codes, uniques = pd.factorize(profiles["employment_status"], use_na_sentinel=True)
    status = normalise_category(pd.Series(uniques, dtype=object))
    known = status.isin(EMPLOYMENT_STATUSES) | status.isna()
    distinct = pd.concat([status.where(known, OTHER_CATEGORY), pd.Series([pd.NA], dtype="string")])
    return pd.Series(distinct.array.take(codes), index=profiles.index, dtype="string")


def unknown_categories(profiles: pd.DataFrame) -> dict[str, int]:
    """Per categorical field, how many profiles hold a value outside its known set.

    The features put those values in the `other` bucket; callers count them (a metric), since
    this module stays free of metrics.
    """
    if len(profiles) == 0:
        return dict.fromkeys(CATEGORICAL_FIELDS, 0)
    return {"employment_status": int((_employment(profiles) == OTHER_CATEGORY).sum())}


def _profile_features(profiles: pd.DataFrame) -> pd.DataFrame:
    frame = profiles.loc[:, list(PROFILE_COLUMNS)].drop_duplicates("customer_id", keep="last")
    income = pd.to_numeric(frame["annual_income"]).to_numpy(dtype=np.float64)
    status = _employment(frame).fillna("").to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "annual_income": income,
            "log_income": np.log1p(np.maximum(income, 0.0)),
            "age": pd.to_numeric(frame["age"]).to_numpy(dtype=np.float64),
            "tenure_months": pd.to_numeric(frame["tenure_months"]).to_numpy(dtype=np.float64),
        }
    )
    for name in _EMPLOYMENT_FEATURES:
        out[f"employment_{name}"] = (status == name).astype(np.float64)
    return out


@dataclass(frozen=True)
class DelinquencyLabels:
    """Per statement, in `delinquency_features` order: is its label known, and its value."""

    known: BoolArray
    delinquent: BoolArray


def delinquency_labels(
    activity: pd.DataFrame,
    *,
    cutoff_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    delinquent_days_past_due: int = DEFAULT_DELINQUENT_DAYS_PAST_DUE,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> DelinquencyLabels:
    """Delinquent = a later statement within `horizon_days` shows ≥ the days-past-due threshold.

    A label is known only once its whole horizon lies at or before `cutoff_day` (a day number),
    and only if the customer was observed through it: a later statement dated at most
    `grace_days` before the horizon's end. A customer whose statements stop is taken neither for
    a sound one nor, when a bad statement came before they stopped, for a delinquent one: were
    delinquent outcomes known early and sound ones only after the whole horizon, the newest
    rows of a window (and every customer's last statements) would be labelled delinquent far
    more often than they are, and a model fitted on them would learn that lateness itself is
    risk. Statements dated after the cutoff are ignored: they decide no label.
    """
    return _labels(
        _Statements.of(activity),
        cutoff_day=cutoff_day,
        horizon_days=horizon_days,
        delinquent_days_past_due=delinquent_days_past_due,
        grace_days=grace_days,
    )


def _labels(
    statements: _Statements,
    *,
    cutoff_day: int,
    horizon_days: int,
    delinquent_days_past_due: int,
    grace_days: int,
) -> DelinquencyLabels:
    day, group, n = statements.day, statements.group, len(statements)
    if n == 0:
        return DelinquencyLabels(known=np.zeros(0, np.bool_), delinquent=np.zeros(0, np.bool_))
    visible = day <= cutoff_day
    bad = visible & (statements.ints("days_past_due") >= delinquent_days_past_due)
    never = np.iinfo(np.int64).max
    # The first delinquent day strictly after each statement, within its customer: days rise
    # within a customer, so it is the day of the next delinquent row (if still the customer's).
    bad_rows = np.flatnonzero(bad)
    following = np.searchsorted(bad_rows, np.arange(1, n + 1), side="left")
    has_next = following < len(bad_rows)
    next_row = np.append(bad_rows, 0)[following]
    next_bad = np.where(has_next & (group[next_row] == group), day[next_row], never)
    seen = np.where(visible, day, -never)
    last_seen = np.maximum.reduceat(seen, statements.starts)[group]
    horizon_end = day + horizon_days
    delinquent = visible & (next_bad <= horizon_end)
    observed_through = last_seen >= horizon_end - grace_days
    known = visible & (horizon_end <= cutoff_day) & observed_through
    return DelinquencyLabels(known=np.asarray(known), delinquent=np.asarray(delinquent & known))


@dataclass(frozen=True)
class LabelledFeatures:
    """`delinquency_features` and `delinquency_labels` of the same statements, ordered once."""

    features: pd.DataFrame
    labels: DelinquencyLabels


def labelled_delinquency_features(
    activity: pd.DataFrame,
    profiles: pd.DataFrame,
    *,
    cutoff_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    delinquent_days_past_due: int = DEFAULT_DELINQUENT_DAYS_PAST_DUE,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> LabelledFeatures:
    """The features and the labels of `activity`, row for row (what training needs)."""
    statements = _Statements.of(activity)
    labels = _labels(
        statements,
        cutoff_day=cutoff_day,
        horizon_days=horizon_days,
        delinquent_days_past_due=delinquent_days_past_due,
        grace_days=grace_days,
    )
    return LabelledFeatures(_features(statements, profiles), labels)


def labelled_by_day(
    activity: pd.DataFrame,
    *,
    cutoff_day: int,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    delinquent_days_past_due: int = DEFAULT_DELINQUENT_DAYS_PAST_DUE,
) -> pd.DataFrame:
    """Per customer and statement day (`day`): labelled and delinquent observations.

    The labels of `delinquency_labels` (known ones only), summed; a label depends on the
    customer's own statements only, so the sums over any set of customers are that set's counts.
    """
    statements = _Statements.of(activity)
    labels = _labels(
        statements,
        cutoff_day=cutoff_day,
        horizon_days=horizon_days,
        delinquent_days_past_due=delinquent_days_past_due,
        grace_days=DEFAULT_GRACE_DAYS,
    )
    known = labels.known
    per_row = pd.DataFrame(
        {
            "customer_id": statements.column("customer_id").to_numpy()[known],
            "day": statements.day[known],
            "labelled": np.ones(int(known.sum()), dtype=np.int64),
            "delinquent": labels.delinquent[known].astype(np.int64),
        }
    )
    return per_row.groupby(["customer_id", "day"], sort=True, as_index=False)[
        ["labelled", "delinquent"]
    ].sum()


# --- expense fraud ----------------------------------------------------------------------------

EXPENSE_COLUMNS: tuple[str, ...] = (
    "expense_id",
    "sheet_id",
    "employee_id",
    "amount",
    "category",
    "merchant",
    "expense_date",
    "receipt_ref",
    "submitted_at",
)
"""What `expense_features` needs of each expense line (the expenses table's columns)."""

EXPENSE_FEATURES: tuple[str, ...] = (
    "log_amount",
    "amount_vs_employee_habit",
    "amount_vs_category_habit",
    "employee_category_history",
    "is_round_amount",
    "just_under_limit",
    "above_limit",
    "on_weekend_or_holiday",
    "receipt_seen_before",
    "missing_receipt",
    "new_merchant_for_employee",
    "merchant_history",
    "new_category_for_merchant",
    "lines_in_sheet",
    "log_sheet_total",
)

DEFAULT_APPROVAL_LIMIT = 500.0
DEFAULT_HISTORY_DAYS = 365
"""How far back a line's history reaches: habits and counts use earlier lines of this window."""
_US_PER_DAY = 86_400_000_000
_FIXED_HOLIDAYS = np.array([101, 501, 1224, 1225, 1226], dtype=np.int64)
"""Month * 100 + day of the public holidays common to most countries."""

HISTORY_KEYS: dict[str, tuple[str, ...]] = {
    "employee_category": ("employee_id", "category"),
    "category": ("category",),
    "receipt": ("receipt_ref",),
    "merchant": ("merchant",),
    "merchant_category": ("merchant", "category"),
    "employee_merchant": ("employee_id", "merchant"),
}
"""Every key a line's history is counted or averaged by, with the columns that make it up."""

SUMMARY_COLUMNS: tuple[str, ...] = ("lines", "log_amount_sum")
"""Beside its key columns, what a `HistorySummary` knows of each key's lines."""


@dataclass(frozen=True)
class HistorySummary:
    """Earlier lines given as totals per key instead of as lines.

    Covers the lines submitted in [since_us, until_us) (microseconds) that are not among the
    lines passed to `expense_features`. `totals` maps each name of HISTORY_KEYS to a frame of
    that key's columns plus SUMMARY_COLUMNS (a key without lines may be absent). A line's
    features add the totals when its window holds the whole span: at most the history window
    before `since_us`, and at or after `until_us`. Other lines ignore them.
    """

    since_us: int
    until_us: int
    totals: dict[str, pd.DataFrame]


def microseconds(moments: pd.Series) -> IntArray:
    """Microseconds since 1970-01-01 UTC of a column of moments (how lines are ordered)."""
    as_us = pd.to_datetime(moments, utc=True).to_numpy(dtype="datetime64[us]")
    return np.asarray(as_us.astype(np.int64), dtype=np.int64)


@dataclass(frozen=True)
class HistorySpan:
    """The history a batch's features need, as times in microseconds.

    Lines submitted in [since_us, until_us] may matter. Those in [summary_since_us,
    summary_until_us) lie inside every batch line's window, so their totals per key (a
    HistorySummary) do as well as the lines themselves; that middle is whole UTC days, so daily
    totals can make it up. It is empty when the batch spans about as long as the window.
    """

    since_us: int
    summary_since_us: int
    summary_until_us: int
    until_us: int

    @classmethod
    def of(cls, submitted_us: Sequence[int], history_days: int) -> HistorySpan:
        first, last = int(min(submitted_us)), int(max(submitted_us))
        since = first - history_days * _US_PER_DAY
        # The first whole day inside every window, and the day the batch begins on.
        summary_since = -(-(last - history_days * _US_PER_DAY) // _US_PER_DAY) * _US_PER_DAY
        summary_until = max(first // _US_PER_DAY * _US_PER_DAY, summary_since)
        return cls(since, summary_since, summary_until, last)


def _ordered_lines(expenses: pd.DataFrame) -> pd.DataFrame:
    frame = expenses.loc[:, list(EXPENSE_COLUMNS)].copy()
    frame["submitted_us"] = microseconds(frame["submitted_at"])
    frame = frame.sort_values(
        ["submitted_us", "sheet_id", "expense_id"], kind="stable", ignore_index=True
    )
    frame["sheet_rank"] = pd.factorize(frame["sheet_id"], sort=False)[0]
    return frame


class _Codes:
    """One integer per distinct value of each key column, and per combination of HISTORY_KEYS.

    Each column is factorized once (NaN/None count as a value); a pair of columns combines their
    codes arithmetically, then renumbers them densely.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.columns = {
            column: np.asarray(pd.factorize(frame[column], use_na_sentinel=False)[0], np.int64)
            for column in {c for key in HISTORY_KEYS.values() for c in key}
        }

    def of(self, name: str) -> IntArray:
        first, *rest = HISTORY_KEYS[name]
        codes = self.columns[first]
        for column in rest:
            other = self.columns[column]
            combined = codes * (int(other.max(initial=0)) + 1) + other
            codes = np.asarray(pd.factorize(combined)[0], np.int64)
        return codes


@dataclass(frozen=True)
class _Window:
    """Row times as ranks among the frame's distinct times, so (code, time) fits one int64 key.

    `rank` of each row's time, and `since` the rank of the earliest time inside its window.
    """

    rank: IntArray
    since: IntArray
    span: int

    @classmethod
    def of(cls, times: IntArray, history_us: int) -> _Window:
        distinct = np.unique(times)
        rank = np.searchsorted(distinct, times, side="left")
        since = np.searchsorted(distinct, times - history_us, side="left")
        return cls(np.asarray(rank, np.int64), np.asarray(since, np.int64), len(distinct) + 1)


def _prior_count(codes: IntArray, window: _Window) -> FloatArray:
    """How many earlier rows (rows are in time order) share each row's code, within the window."""
    n = len(codes)
    order = np.lexsort((np.arange(n), codes))  # by code, then by position (time order)
    sorted_codes = codes[order] * window.span
    keys = sorted_codes + window.rank[order]
    first = np.searchsorted(keys, sorted_codes + window.since[order], side="left")
    counts = np.empty(n, dtype=np.float64)
    counts[order] = np.arange(n) - first
    return counts


def _prior_sheet_mean(
    codes: IntArray,
    sheet_rank: IntArray,
    values: FloatArray,
    sheet_window: _Window,
    summary: tuple[FloatArray, FloatArray] | None = None,
) -> FloatArray:
    """Mean of `values` over rows of the same code in earlier sheets of the window (NaN if none).

    Lines of one sheet are submitted together, so none of them is history for another; a sheet
    is as old as its first line (`sheet_window` holds, per row, its sheet's time). `summary`
    (per row: lines, sum of values) adds lines that are not rows.
    """
    n = len(codes)
    order = np.lexsort((sheet_rank, codes))  # by code, then sheet (sheets in time order)
    code_sorted, sheet_sorted = codes[order], sheet_rank[order]
    new_group = np.ones(n, dtype=np.bool_)
    new_group[1:] = (code_sorted[1:] != code_sorted[:-1]) | (sheet_sorted[1:] != sheet_sorted[:-1])
    starts = np.flatnonzero(new_group)
    group_lines = np.diff(np.append(starts, n))
    group_sum = np.add.reduceat(values[order], starts) if n else np.zeros(0)
    running_sum = np.concatenate(([0.0], np.cumsum(group_sum)))
    running_lines = np.concatenate(([0.0], np.cumsum(group_lines, dtype=np.float64)))
    group_code = code_sorted[starts] * sheet_window.span
    keys = group_code + sheet_window.rank[order][starts]
    first = np.searchsorted(keys, group_code + sheet_window.since[order][starts], side="left")
    here = np.arange(len(starts))
    group_of_row = np.empty(n, dtype=np.int64)
    group_of_row[order] = np.repeat(here, group_lines)
    prior_sum = (running_sum[here] - running_sum[first])[group_of_row]
    prior_lines = (running_lines[here] - running_lines[first])[group_of_row]
    if summary is not None:
        prior_lines = prior_lines + summary[0]
        prior_sum = prior_sum + summary[1]
    safe = np.where(prior_lines > 0, prior_lines, 1.0)
    return np.asarray(np.where(prior_lines > 0, prior_sum / safe, np.nan), dtype=np.float64)


def _summary_for(
    frame: pd.DataFrame, summary: HistorySummary | None, name: str, covered: BoolArray
) -> tuple[FloatArray, FloatArray]:
    """Per row, the summary's (lines, log-amount sum) of the row's key (zero where not covered)."""
    n = len(frame)
    totals = None if summary is None else summary.totals.get(name)
    if totals is None or totals.empty or not covered.any():
        return np.zeros(n), np.zeros(n)
    columns = list(HISTORY_KEYS[name])
    totals = totals.drop_duplicates(columns, keep="last")
    if len(columns) == 1:
        known = pd.Index(totals[columns[0]])
        position = known.get_indexer(pd.Index(frame.loc[covered, columns[0]]))
    else:
        known = pd.MultiIndex.from_frame(totals.loc[:, columns])
        position = known.get_indexer(pd.MultiIndex.from_frame(frame.loc[covered, columns]))
    found = position >= 0
    lines, log_sum = np.zeros(n), np.zeros(n)
    rows = np.flatnonzero(covered)[found]
    lines[rows] = totals["lines"].to_numpy(dtype=np.float64)[position[found]]
    log_sum[rows] = totals["log_amount_sum"].to_numpy(dtype=np.float64)[position[found]]
    return lines, log_sum


def _sheet_window(
    times: IntArray, window: _Window, sheet_rank: IntArray
) -> tuple[IntArray, _Window]:
    """Each line's sheet time (its first line's) and the window as seen from it: the lines of a
    sheet are submitted together, so they share one view of the history."""
    first_line = np.unique(sheet_rank, return_index=True)[1]
    sheet_time = times[first_line][sheet_rank]
    return sheet_time, _Window(
        window.rank[first_line][sheet_rank], window.since[first_line][sheet_rank], window.span
    )


def _on_weekend_or_holiday(frame: pd.DataFrame) -> BoolArray:
    day = _day_numbers(frame["expense_date"])
    dates = pd.to_datetime(frame["expense_date"])
    month_day = dates.dt.month.to_numpy(np.int64) * 100 + dates.dt.day.to_numpy(np.int64)
    holiday = np.isin(month_day, _FIXED_HOLIDAYS)
    weekend = (day + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    return np.asarray(weekend | holiday, dtype=np.bool_)


def _sheet_sizes(
    frame: pd.DataFrame, amount: FloatArray, sheet_rank: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Per line, how many lines its sheet has and the sheet's total amount."""
    sheet_codes = frame["sheet_rank"]
    lines_in_sheet = sheet_codes.map(sheet_codes.value_counts()).to_numpy(dtype=np.float64)
    sheet_total = (
        pd.Series(amount).groupby(sheet_rank, sort=False).transform("sum").to_numpy(np.float64)
    )
    return np.asarray(lines_in_sheet, np.float64), np.asarray(sheet_total, np.float64)


def _has_receipt(frame: pd.DataFrame) -> BoolArray:
    receipt = frame["receipt_ref"].astype("string")
    return receipt.notna().to_numpy(dtype=np.bool_) & (receipt.fillna("") != "").to_numpy(
        dtype=np.bool_
    )


def expense_features(
    expenses: pd.DataFrame,
    *,
    approval_limit: float = DEFAULT_APPROVAL_LIMIT,
    history_days: int = DEFAULT_HISTORY_DAYS,
    summary: HistorySummary | None = None,
) -> pd.DataFrame:
    """One row per expense line, in submission order, with EXPENSE_FEATURES.

    Habits (typical amounts, merchants, receipts) come from earlier lines submitted at most
    `history_days` before (earlier sheets for the habits, earlier lines for the counts), so a
    line's features need only its window, whatever came before it. `summary` stands in for
    history lines given as totals (see HistorySummary). The result keeps `expense_id`,
    `sheet_id` and `submitted_us` (microseconds) beside the features.
    """
    frame = _ordered_lines(expenses)
    times = frame["submitted_us"].to_numpy(dtype=np.int64)
    history_us = history_days * _US_PER_DAY
    window = _Window.of(times, history_us)
    sheet_rank = frame["sheet_rank"].to_numpy(dtype=np.int64)
    sheet_time, sheet_window = _sheet_window(times, window, sheet_rank)
    codes = _Codes(frame)
    covered = np.zeros(len(frame), dtype=np.bool_)
    if summary is not None:
        covered = (sheet_time - history_us <= summary.since_us) & (summary.until_us <= sheet_time)

    given = {name: _summary_for(frame, summary, name, covered) for name in HISTORY_KEYS}

    def prior_count(name: str) -> FloatArray:
        return _prior_count(codes.of(name), window) + given[name][0]

    amount = _float(frame, "amount")
    log_amount = np.log1p(np.maximum(amount, 0.0))
    employee_habit = _prior_sheet_mean(
        codes.of("employee_category"),
        sheet_rank,
        log_amount,
        sheet_window,
        given["employee_category"],
    )
    category_habit = _prior_sheet_mean(
        codes.of("category"), sheet_rank, log_amount, sheet_window, given["category"]
    )
    employee_category_history = prior_count("employee_category")

    cents = np.round(amount * 100).astype(np.int64)
    has_receipt = _has_receipt(frame)
    receipt_seen = np.where(has_receipt, prior_count("receipt"), 0.0)

    merchant_history = prior_count("merchant")
    merchant_category_history = prior_count("merchant_category")
    employee_merchant_history = prior_count("employee_merchant")

    lines_in_sheet, sheet_total = _sheet_sizes(frame, amount, sheet_rank)
    return pd.DataFrame(
        {
            "expense_id": frame["expense_id"].to_numpy(),
            "sheet_id": frame["sheet_id"].to_numpy(),
            "submitted_us": frame["submitted_us"].to_numpy(),
            "log_amount": log_amount,
            "amount_vs_employee_habit": log_amount - employee_habit,
            "amount_vs_category_habit": log_amount - category_habit,
            "employee_category_history": np.log1p(employee_category_history),
            "is_round_amount": ((cents % 5000) == 0).astype(np.float64),
            "just_under_limit": (
                (amount >= 0.95 * approval_limit) & (amount < approval_limit)
            ).astype(np.float64),
            "above_limit": (amount >= approval_limit).astype(np.float64),
            "on_weekend_or_holiday": _on_weekend_or_holiday(frame).astype(np.float64),
            "receipt_seen_before": receipt_seen,
            "missing_receipt": (~has_receipt).astype(np.float64),
            "new_merchant_for_employee": (employee_merchant_history == 0).astype(np.float64),
            "merchant_history": np.log1p(merchant_history),
            "new_category_for_merchant": (
                (merchant_category_history == 0) & (merchant_history > 0)
            ).astype(np.float64),
            "lines_in_sheet": lines_in_sheet,
            "log_sheet_total": np.log1p(sheet_total),
        }
    )


def feature_matrix(features: pd.DataFrame, names: Sequence[str]) -> FloatArray:
    """The named columns as one float64 matrix (NaN where a value is unknown)."""
    return np.asarray(features.loc[:, list(names)].to_numpy(dtype=np.float64), dtype=np.float64)
