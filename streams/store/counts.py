"""Read the policy's counters from what the sink stored, against a family's data cutoff.

PostgreSQL is where distinctness is decided (every row is keyed by event and natural id), so
counting stored rows after the cutoff is exact: a replay, a redelivery or a worker killed between
storing and counting can neither inflate nor lose a count.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from schemas.base import ModelFamily
from schemas.features import DEFAULT_GRACE_DAYS
from schemas.minimums import DataCounts, DataMinimums, training_part
from streams.policy import Counters, PolicyConfig

# A missing cutoff (a family with no model yet) counts everything as new.
_FRAUD = """
WITH since AS (SELECT coalesce($1::timestamptz, '-infinity') AS t)
SELECT clock_timestamp() AS observed_at,
  (SELECT count(*) FROM sheets, since WHERE ingested_at > since.t) AS new_sheets,
  (SELECT count(*) FROM expenses, since WHERE ingested_at > since.t) AS new_expenses,
  (SELECT count(*) FROM expense_labels, since WHERE ingested_at > since.t) AS new_labels,
  (SELECT count(*) FROM (SELECT 1 FROM expenses LIMIT $2) e) AS total_expenses,
  (SELECT count(*) FROM (SELECT 1 FROM sheets WHERE line_count >= $3 LIMIT $4) s)
      AS sheets_with_min_lines,
  greatest((SELECT max(ingested_at) FROM sheets), (SELECT max(ingested_at) FROM expense_labels))
      AS newest_stored_at
"""

_FRAUD_WINDOW = """
SELECT count(*) AS scored, count(*) FILTER (WHERE is_flagged) AS flagged
FROM expense_scores
WHERE scoring_run = 'live' AND model_version = $1 AND scored_at > clock_timestamp() - $2::interval
"""

_DELINQUENCY = """
WITH since AS (SELECT coalesce($1::timestamptz, '-infinity') AS t)
SELECT clock_timestamp() AS observed_at,
  (SELECT count(*) FROM customers, since WHERE ingested_at > since.t) AS new_customers,
  (SELECT count(*) FROM customer_activity, since WHERE ingested_at > since.t) AS new_statements,
  (SELECT count(*) FROM customers) AS total_customers,
  (SELECT count(*) FROM customer_activity) AS total_statements,
  greatest((SELECT max(ingested_at) FROM customers),
           (SELECT max(ingested_at) FROM customer_activity)) AS newest_stored_at
"""


# The labels of schemas.features.delinquency_labels, counted as of $1: a statement (ordered by
# customer, date, statement id) is delinquent when a later statement of its customer within the
# horizon ($2 days) reaches the days-past-due threshold ($3); its label is known once the horizon
# ended by $1's UTC date and the customer was observed through it (last seen at most $4 grace
# days before the horizon's end, whatever the outcome). Rows are those the trainer would load at
# cutoff $1: statements dated, occurred and stored by then, of customers created and stored by
# then.
# COLLATE "C" orders statement ids by code point, as pandas does.
_LABELLED = """
WITH cutoff AS (SELECT ($1::timestamptz AT TIME ZONE 'UTC')::date - DATE '1970-01-01' AS last_day),
visible AS (
  SELECT a.customer_id, a.statement_id, (a.statement_date - DATE '1970-01-01') AS day,
         a.days_past_due
  FROM customer_activity a JOIN customers c USING (customer_id)
  WHERE a.statement_date <= ($1::timestamptz AT TIME ZONE 'UTC')::date
    AND a.occurred_at <= $1 AND a.ingested_at <= $1
    AND c.created_at <= $1 AND c.ingested_at <= $1
),
ordered AS (
  SELECT day,
         min(CASE WHEN days_past_due >= $3 THEN day END) OVER (
             PARTITION BY customer_id ORDER BY day, statement_id COLLATE "C"
             ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS next_bad,
         max(day) OVER (PARTITION BY customer_id) AS last_seen
  FROM visible
),
ended AS (
  SELECT coalesce(next_bad <= day + $2, false) AS delinquent, day, last_seen
  FROM ordered, cutoff
  WHERE day + $2 <= last_day
)
SELECT day, count(*) AS labelled, count(*) FILTER (WHERE delinquent) AS delinquent
FROM ended
WHERE last_seen >= day + $2 - $4
GROUP BY day ORDER BY day
"""


async def labelled_observations(
    conn: asyncpg.Connection,
    as_of: datetime,
    minimums: DataMinimums,
    grace_days: int = DEFAULT_GRACE_DAYS,
) -> DataCounts:
    """Delinquency observations labelled as of `as_of`, in all and in a fit's training part."""
    rows = await conn.fetch(
        _LABELLED, as_of, minimums.horizon_days, minimums.delinquent_days_past_due, grace_days
    )
    days = [int(r["day"]) for r in rows]
    labelled = [int(r["labelled"]) for r in rows]
    delinquent = [int(r["delinquent"]) for r in rows]
    train, train_delinquent = training_part(
        days,
        labelled,
        delinquent,
        holdout_fraction=minimums.holdout_fraction,
        embargo_days=minimums.horizon_days,
    )
    return DataCounts(
        labelled_observations=sum(labelled),
        delinquent_observations=sum(delinquent),
        train_labelled_observations=train,
        train_delinquent_observations=train_delinquent,
    )


async def read_counters(
    conn: asyncpg.Connection,
    family: ModelFamily,
    cutoff: datetime | None,
    model_version: str | None,
    config: PolicyConfig,
) -> Counters:
    """The counters of `family` now, counting rows stored after `cutoff` as new.

    Expense totals that only feed the minimum-data gate are counted up to ten times the minimum,
    which keeps the query cheap on a long history; delinquency observations are counted whole (the
    trainer needs the labelled ones, not the rows).
    """
    if family is ModelFamily.EXPENSE_FRAUD:
        row = await conn.fetchrow(
            _FRAUD,
            cutoff,
            max(config.minimums.min_expenses, 1) * 10,
            config.minimums.min_lines_per_sheet,
            max(config.minimums.min_sheets, 1) * 10,
        )
        if row is None:  # pragma: no cover - a SELECT without FROM always returns one row
            raise RuntimeError("the counters query returned no row")
        scored = flagged = 0
        if model_version is not None:
            window = await conn.fetchrow(_FRAUD_WINDOW, model_version, config.anomaly_window)
            if window is not None:
                scored, flagged = int(window["scored"]), int(window["flagged"])
        return Counters(
            observed_at=row["observed_at"],
            new_sheets=row["new_sheets"],
            new_expenses=row["new_expenses"],
            new_labels=row["new_labels"],
            total_expenses=row["total_expenses"],
            sheets_with_min_lines=row["sheets_with_min_lines"],
            window_scored=scored,
            window_flagged=flagged,
            newest_stored_at=row["newest_stored_at"],
        )
    minimums = config.minimums
    row = await conn.fetchrow(_DELINQUENCY, cutoff)
    if row is None:  # pragma: no cover - a SELECT without FROM always returns one row
        raise RuntimeError("the counters query returned no row")
    labelled = await labelled_observations(conn, row["observed_at"], minimums)
    return Counters(
        observed_at=row["observed_at"],
        new_customers=row["new_customers"],
        new_statements=row["new_statements"],
        total_customers=row["total_customers"],
        total_statements=row["total_statements"],
        labelled_observations=labelled.labelled_observations,
        delinquent_observations=labelled.delinquent_observations,
        train_labelled_observations=labelled.train_labelled_observations,
        train_delinquent_observations=labelled.train_delinquent_observations,
        newest_stored_at=row["newest_stored_at"],
    )


async def stored_within(conn: asyncpg.Connection, family: ModelFamily, days: int) -> int:
    """Sheets (expense fraud) or customers (delinquency) stored in the last `days` days."""
    table = "sheets" if family is ModelFamily.EXPENSE_FRAUD else "customers"
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {table} "  # noqa: S608 - one of two fixed table names
            "WHERE ingested_at > now() - make_interval(days => $1)",
            days,
        )
    )
