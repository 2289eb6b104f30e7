"""The quality monitor: reads the drift and realised-performance figures of a family's champion
from PostgreSQL, at most once per refresh interval, and keeps them for the policy steps between.

These reads are heavier than the counters (thousands of feature vectors, a join with the labels),
so the policy does not repeat them on every step: figures are read again once they are older
than `QualityConfig.refresh`, or at once when the champion changed. No Faust, no aiohttp.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import pandas as pd

from edge.logs import RateLimitedLog
from edge.retry import TRANSIENT_ERRORS
from schemas.base import ModelFamily
from schemas.features import ACTIVITY_COLUMNS
from schemas.quality import known_delinquency
from streams.quality import (
    DriftFigures,
    QualityConfig,
    QualityFigures,
    drift_figures,
    performance_figures,
)
from streams.store import quality as store

log = logging.getLogger(__name__)
_errors = RateLimitedLog(log)

_EPOCH = datetime(1970, 1, 1).date()


class QualityMonitor:
    """The latest drift and performance figures per family, read at most once per refresh."""

    def __init__(self, config: QualityConfig, pool: Callable[[], Awaitable[asyncpg.Pool]]) -> None:
        self.config = config
        self.pool = pool
        self._cached: dict[ModelFamily, QualityFigures] = {}
        self.reads = 0
        """How many times figures were read from PostgreSQL (tests and logs look at it)."""

    def cached(self, family: ModelFamily) -> QualityFigures | None:
        return self._cached.get(family)

    def due(self, family: ModelFamily, version: str | None, now: datetime) -> bool:
        """Whether the figures of `family` should be read again for champion `version`."""
        figures = self._cached.get(family)
        return (
            figures is None
            or figures.model_version != version
            or now - figures.computed_at >= self.config.refresh
        )

    async def figures(
        self, family: ModelFamily, version: str | None, now: datetime, *, refresh: bool = True
    ) -> QualityFigures | None:
        """The figures of `family`'s champion `version`, read again when due and `refresh`.

        Without `refresh` (a request is in flight, the answer would not change a thing) the
        cached figures are returned as they are, whatever their age.
        """
        if version is None:
            return None  # no champion: nothing to measure
        if refresh and self.due(family, version, now):
            pool = await self.pool()
            try:
                async with pool.acquire() as conn:
                    figures = await self.read(conn, family, version, now)
            except TRANSIENT_ERRORS:
                raise  # PostgreSQL unreachable for now: the caller's retry waits it out
            except (asyncpg.PostgresError, ValueError) as exc:
                # Figures that cannot be read must not stop the count triggers: the champion is
                # left without figures until the next refresh, and the log says why.
                _errors.warning(
                    f"quality-{family.value}", "quality figures of %s unreadable: %s", version, exc
                )
                note = f"figures unreadable: {exc}"
                figures = QualityFigures(
                    family, version, now, drift=DriftFigures(version, 0, note=note)
                )
            self._cached[family] = figures
            self.reads += 1
        return self._cached.get(family)

    async def read(
        self, conn: asyncpg.Connection, family: ModelFamily, version: str, now: datetime
    ) -> QualityFigures:
        """Read the figures of `family`'s champion `version` now."""
        config = self.config
        window = config.window(family)
        if family is ModelFamily.EXPENSE_FRAUD:
            labelled = await store.labelled_expense_scores(
                conn, window, config.performance_max_sample
            )
        else:
            labelled = [row[1:] for row in await self.labelled_statements(conn, now)]
        versions = sorted({row[0] for row in labelled} | {version})
        facts = await store.version_facts(conn, versions)
        champion = facts.get(version)
        drift: DriftFigures
        if champion is None:
            drift = DriftFigures(version, 0, note="the registry does not know the version")
        elif champion.reference is None:
            drift = drift_figures(version, None, champion.feature_names, [])
        else:
            sample = await store.drift_sample(
                conn, family, version, config.drift_window, config.drift_max_sample
            )
            drift = drift_figures(version, champion.reference, champion.feature_names, sample)
        performance = performance_figures(
            labelled, {name: fact.holdout_auc for name, fact in facts.items()}
        )
        return QualityFigures(family, version, now, drift=drift, performance=performance)

    async def labelled_statements(
        self, conn: asyncpg.Connection, now: datetime
    ) -> list[tuple[str, str, float | None, bool, bool]]:
        """Live statement scores whose horizon has passed, labelled by the trainer's rule:
        (statement_id, version, score, flagged, delinquent)."""
        config = self.config
        today = now.date()
        mature = await store.mature_statement_scores(
            conn,
            config.window(ModelFamily.DELINQUENCY),
            config.performance_max_sample,
            today,
            config.delinquency_horizon_days,
        )
        if not mature.scores:
            return []
        activity = pd.DataFrame(
            [tuple(row) for row in mature.statements], columns=list(ACTIVITY_COLUMNS)
        )
        labels = known_delinquency(
            activity,
            cutoff_day=(today - _EPOCH).days,
            horizon_days=config.delinquency_horizon_days,
            delinquent_days_past_due=config.delinquent_days_past_due,
        )
        known = labels.to_dict()
        return [
            (statement, version, score, flagged, bool(known[statement]))
            for statement, version, score, flagged in mature.scores
            if statement in known
        ]
