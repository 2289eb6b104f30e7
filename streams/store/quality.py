"""The SQL of the drift and realised-performance triggers: a version's newest live scores with
their feature vectors, live scores joined with the labels known now, and the registry's holdout
AUC and training reference of versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import asyncpg

from schemas.base import ModelFamily
from streams.store.scores import LIVE, statements_until

# The ranking score of an expense line is the classifier's probability when the version has a
# classifier, else the anomaly score (schemas.bundles.ModelBundle.score).
_EXPENSE_SAMPLE = """
SELECT features, coalesce(fraud_probability, anomaly_score) AS score
FROM expense_scores
WHERE scoring_run = $1 AND model_version = $2 AND features IS NOT NULL
  AND scored_at > clock_timestamp() - $3::interval
ORDER BY scored_at DESC
LIMIT $4
"""

_STATEMENT_SAMPLE = """
SELECT features, delinquency_probability AS score
FROM customer_scores
WHERE scoring_run = $1 AND model_version = $2 AND features IS NOT NULL
  AND scored_at > clock_timestamp() - $3::interval
ORDER BY scored_at DESC
LIMIT $4
"""

# The latest verdict per expense wins, as in the trainer's data set. Labels are far fewer than
# scores, so the join starts from them (each finds its live score by the primary key).
_LABELLED_EXPENSES = """
SELECT s.model_version, coalesce(s.fraud_probability, s.anomaly_score) AS score, s.is_flagged,
       l.is_fraud
FROM (
    SELECT DISTINCT ON (expense_id) expense_id, is_fraud
    FROM expense_labels
    ORDER BY expense_id, labelled_at DESC, ingested_at DESC
) l
JOIN expense_scores s ON s.expense_id = l.expense_id AND s.scoring_run = $1
WHERE s.model_version <> '' AND s.scored_at > clock_timestamp() - $2::interval
ORDER BY s.scored_at DESC
LIMIT $3
"""

# Statements whose label horizon has passed by `$3` (their date is at most that day).
_MATURE_STATEMENTS = """
SELECT s.statement_id, s.customer_id, s.model_version, s.delinquency_probability AS score,
       s.is_flagged
FROM customer_scores s JOIN customer_activity a ON a.statement_id = s.statement_id
WHERE s.scoring_run = $1 AND s.model_version <> ''
  AND s.scored_at > clock_timestamp() - $2::interval
  AND a.statement_date <= $3
ORDER BY s.scored_at DESC
LIMIT $4
"""

_VERSIONS = """
SELECT version, metrics, params FROM model_versions WHERE version = ANY($1::text[])
"""


def _json(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


async def drift_sample(
    conn: asyncpg.Connection,
    family: ModelFamily,
    version: str,
    window: timedelta,
    limit: int,
) -> list[tuple[list[float], float | None]]:
    """The newest live scores of `version` in the window that kept their feature vector:
    (vector in the version's feature order, score), at most `limit`."""
    sql = _EXPENSE_SAMPLE if family is ModelFamily.EXPENSE_FRAUD else _STATEMENT_SAMPLE
    rows = await conn.fetch(sql, LIVE, version, window, limit)
    return [(list(row["features"]), row["score"]) for row in rows]


async def labelled_expense_scores(
    conn: asyncpg.Connection, window: timedelta, limit: int
) -> list[tuple[str, float | None, bool, bool]]:
    """Live expense scores of the window that have a label now: (version, score, flagged,
    is_fraud), newest first, at most `limit`."""
    rows = await conn.fetch(_LABELLED_EXPENSES, LIVE, window, limit)
    return [(r["model_version"], r["score"], r["is_flagged"], r["is_fraud"]) for r in rows]


@dataclass(frozen=True)
class MatureStatements:
    """Live statement scores whose label horizon has passed, and the statements that label them
    (every stored statement of their customers up to the labelling day)."""

    scores: list[tuple[str, str, float | None, bool]]
    """(statement_id, version, score, flagged)."""
    statements: list[asyncpg.Record]
    """Rows in the columns of `schemas.features.ACTIVITY_COLUMNS`."""


async def mature_statement_scores(
    conn: asyncpg.Connection,
    window: timedelta,
    limit: int,
    today: date,
    horizon_days: int,
) -> MatureStatements:
    """Live statement scores of the window dated at least `horizon_days` before `today`, with
    their customers' statements up to `today`."""
    last = today - timedelta(days=horizon_days)
    rows = await conn.fetch(_MATURE_STATEMENTS, LIVE, window, last, limit)
    customers = sorted({row["customer_id"] for row in rows})
    statements = await statements_until(conn, customers, today) if customers else []
    return MatureStatements(
        scores=[(r["statement_id"], r["model_version"], r["score"], r["is_flagged"]) for r in rows],
        statements=statements,
    )


@dataclass(frozen=True)
class VersionFacts:
    """What the triggers need of a version from the registry."""

    holdout_auc: float | None
    feature_names: tuple[str, ...]
    reference: dict[str, Any] | None


async def version_facts(
    conn: asyncpg.Connection, versions: Sequence[str]
) -> dict[str, VersionFacts]:
    """Holdout AUC, feature names and training reference of each of `versions` the registry
    knows."""
    facts: dict[str, VersionFacts] = {}
    for row in await conn.fetch(_VERSIONS, list(versions)):
        metrics, params = _json(row["metrics"]), _json(row["params"])
        auc = metrics.get("auc")
        reference = params.get("reference")
        facts[row["version"]] = VersionFacts(
            holdout_auc=float(auc) if isinstance(auc, int | float) else None,
            feature_names=tuple(params.get("feature_names", ())),
            reference=dict(reference) if isinstance(reference, dict) else None,
        )
    return facts
