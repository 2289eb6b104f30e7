"""Read the policy's counters from what the sink stored, against a family's data cutoff.

PostgreSQL is where distinctness is decided (every row is keyed by event and natural id), so
counting stored rows after the cutoff is exact: a replay, a redelivery or a worker killed between
storing and counting can neither inflate nor lose a count.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from schemas.base import ModelFamily
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
      AS sheets_with_min_lines
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
  (SELECT count(*) FROM (SELECT 1 FROM customers LIMIT $2) c) AS total_customers,
  (SELECT count(*) FROM (SELECT 1 FROM customer_activity LIMIT $3) a) AS total_statements
"""


async def read_counters(
    conn: asyncpg.Connection,
    family: ModelFamily,
    cutoff: datetime | None,
    model_version: str | None,
    config: PolicyConfig,
) -> Counters:
    """The counters of `family` now, counting rows stored after `cutoff` as new.

    Totals that only feed the minimum-data gate are counted up to ten times the minimum, which
    keeps the query cheap on a long history.
    """
    if family is ModelFamily.EXPENSE_FRAUD:
        row = await conn.fetchrow(
            _FRAUD,
            cutoff,
            max(config.min_expenses, 1) * 10,
            config.min_lines_per_sheet,
            max(config.min_sheets, 1) * 10,
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
        )
    row = await conn.fetchrow(
        _DELINQUENCY,
        cutoff,
        max(config.min_customers, 1) * 10,
        max(config.min_statements, 1) * 10,
    )
    if row is None:  # pragma: no cover - a SELECT without FROM always returns one row
        raise RuntimeError("the counters query returned no row")
    return Counters(
        observed_at=row["observed_at"],
        new_customers=row["new_customers"],
        new_statements=row["new_statements"],
        total_customers=row["total_customers"],
        total_statements=row["total_statements"],
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
