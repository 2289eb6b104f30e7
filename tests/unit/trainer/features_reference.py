"""The delinquency features and labels as they were built before the sort by integer keys
(pandas sorting the string keys), kept only as the reference schemas.features must equal."""

from __future__ import annotations

import numpy as np
import pandas as pd

from schemas.features import (
    ACTIVITY_COLUMNS,
    DEFAULT_DELINQUENT_DAYS_PAST_DUE,
    DEFAULT_GRACE_DAYS,
    DEFAULT_HORIZON_DAYS,
    EMPLOYMENT_STATUSES,
    OTHER_CATEGORY,
    PROFILE_COLUMNS,
    DelinquencyLabels,
    FloatArray,
    IntArray,
)

_EMPLOYMENT_FEATURES: tuple[str, ...] = (*EMPLOYMENT_STATUSES[1:], OTHER_CATEGORY)


def _day_numbers(values: pd.Series) -> IntArray:
    """Whole days since 1970-01-01 of a date/datetime column (any resolution)."""
    as_days = pd.to_datetime(values).to_numpy(dtype="datetime64[D]")
    return np.asarray(as_days.astype(np.int64), dtype=np.int64)


def _float(frame: pd.DataFrame, column: str) -> FloatArray:
    return np.asarray(pd.to_numeric(frame[column]).to_numpy(dtype=np.float64), dtype=np.float64)


def _ordered_statements(activity: pd.DataFrame) -> pd.DataFrame:
    """Statements sorted by customer and date, with a stable integer customer code."""
    frame = activity.loc[:, list(ACTIVITY_COLUMNS)].copy()
    frame["statement_day"] = _day_numbers(frame["statement_date"])
    frame = frame.sort_values(
        ["customer_id", "statement_day", "statement_id"], kind="stable", ignore_index=True
    )
    frame["customer_code"] = pd.factorize(frame["customer_id"], sort=False)[0]
    return frame


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
    """One row per statement (sorted by customer, date) with DELINQUENCY_FEATURES.

    A statement's features use that statement and the customer's earlier ones only. Customers
    without a profile row get NaN profile features (the tree models handle missing values).
    The result keeps `statement_id`, `customer_id` and `statement_day` beside the features.
    """
    frame = _ordered_statements(activity)
    group = frame["customer_code"].to_numpy(dtype=np.int64)
    limit = np.maximum(_float(frame, "credit_limit"), 1.0)
    balance = _float(frame, "balance")
    payment = _float(frame, "payment_amount")
    minimum = _float(frame, "minimum_due")
    dpd = _float(frame, "days_past_due")

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
    months_on_book = frame.groupby("customer_code", sort=False).cumcount().to_numpy(np.float64)

    features = pd.DataFrame(
        {
            "statement_id": frame["statement_id"].to_numpy(),
            "customer_id": frame["customer_id"].to_numpy(),
            "statement_day": frame["statement_day"].to_numpy(),
            "utilization": utilization,
            "utilization_change": utilization - _shift_within(utilization, group, 1),
            "payment_to_previous_minimum": payment / np.maximum(previous_minimum, 1.0),
            "payment_to_previous_balance": payment / np.maximum(previous_balance, 1.0),
            "missed_minimum": missed,
            "missed_minimum_3": missed_3,
            "cash_advance_to_limit": _float(frame, "cash_advance_amount") / limit,
            "purchases_to_limit": _float(frame, "purchase_amount") / limit,
            "days_past_due": dpd,
            "max_days_past_due_3": worst_3,
            "months_on_book": months_on_book,
        }
    )
    profile = _profile_features(profiles)
    joined = features.merge(profile, on="customer_id", how="left", sort=False, validate="m:1")
    joined["limit_to_income"] = limit / np.maximum(joined["annual_income"].to_numpy(), 1.0)
    joined["tenure_months"] = joined["tenure_months"] + months_on_book
    return joined.drop(columns=["annual_income"])


def normalise_category(values: pd.Series) -> pd.Series:
    """Lower case, trimmed, each run of spaces, `-` and `_` as one `_` (`Self-Employed` →
    `self_employed`).

    Missing and blank values stay missing (<NA>): they are unknown, not unexpected.
    """
    text = values.astype("string").str.strip().str.lower()
    text = text.str.replace(r"[\s\-_]+", "_", regex=True)
    return text.mask(text == "")


def _employment(profiles: pd.DataFrame) -> pd.Series:
    """Each profile's employment status: one of EMPLOYMENT_STATUSES, OTHER_CATEGORY, or <NA>."""
    status = normalise_category(profiles["employment_status"])
    known = status.isin(EMPLOYMENT_STATUSES) | status.isna()
    return status.where(known, OTHER_CATEGORY)


def unknown_categories(profiles: pd.DataFrame) -> dict[str, int]:
    """Per categorical field, how many profiles hold a value outside its known set.

    The features put those values in the `other` bucket; callers count them (a metric), since
    this module stays free of metrics.
    """
    if len(profiles) == 0:
        return dict.fromkeys(("employment_status",), 0)
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
    frame = _ordered_statements(activity)
    day = frame["statement_day"].to_numpy(dtype=np.int64)
    group = frame["customer_code"].to_numpy(dtype=np.int64)
    visible = day <= cutoff_day
    bad = visible & (frame["days_past_due"].to_numpy(dtype=np.int64) >= delinquent_days_past_due)
    never = np.iinfo(np.int64).max
    bad_day = np.where(bad, day, never)
    # The first delinquent day at or after each row, per customer: a cumulative min on the rows
    # reversed. Then one step forward within the customer gives "strictly after this statement".
    reversed_min = (
        pd.Series(bad_day[::-1]).groupby(group[::-1], sort=False).cummin().to_numpy()[::-1]
    )
    next_bad = np.full(len(day), never, dtype=np.int64)
    if len(day) > 1:
        same = group[1:] == group[:-1]
        next_bad[:-1] = np.where(same, reversed_min[1:], never)
    last_seen = (
        pd.Series(np.where(visible, day, -never)).groupby(group, sort=False).transform("max")
    ).to_numpy(dtype=np.int64)
    horizon_end = day + horizon_days
    delinquent = visible & (next_bad <= horizon_end)
    observed_through = last_seen >= horizon_end - grace_days
    known = visible & (horizon_end <= cutoff_day) & observed_through
    return DelinquencyLabels(known=np.asarray(known), delinquent=np.asarray(delinquent & known))


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
    labels = delinquency_labels(
        activity,
        cutoff_day=cutoff_day,
        horizon_days=horizon_days,
        delinquent_days_past_due=delinquent_days_past_due,
    )
    ordered = _ordered_statements(activity)
    known = labels.known
    per_row = pd.DataFrame(
        {
            "customer_id": ordered["customer_id"].to_numpy()[known],
            "day": ordered["statement_day"].to_numpy(dtype=np.int64)[known],
            "labelled": np.ones(int(known.sum()), dtype=np.int64),
            "delinquent": labels.delinquent[known].astype(np.int64),
        }
    )
    return per_row.groupby(["customer_id", "day"], sort=True, as_index=False)[
        ["labelled", "delinquent"]
    ].sum()
