"""Re-score a time range of stored expense lines or statements with a chosen model version.

For after a rollback, or to compare versions on history. The version is verified and loaded as
the live scorers load it, features come from the same schemas.features code, and each score goes
to a topic the operator names with `scoring_run` set to this run's id (live scores carry null).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import asyncpg
import pandas as pd

from edge.producer import DeliveringProducer, DeliveryFailed
from schemas.base import Event, ModelFamily
from schemas.codec import Codec
from schemas.features import (
    ACTIVITY_COLUMNS,
    EXPENSE_COLUMNS,
    PROFILE_COLUMNS,
    unknown_categories,
)
from schemas.features import delinquency_features as build_delinquency_features
from streams import metrics
from streams.models import build_model, fetch_version
from streams.scoring_frames import LoadedModel, customer_scores, expense_scores, score
from streams.services.scoring import expense_features_of
from streams.settings import StreamsSettings
from streams.store.scores import (
    customer_profiles,
    statements_by_id,
    statements_until,
    store_customer_scores,
    store_expense_scores,
)
from streams.store.sheets import lines_of_sheets


class RescoreError(Exception):
    """A re-score could not be started or finished (bad arguments, undelivered scores)."""


class TimeField(StrEnum):
    """Which time picks the rows of a range."""

    INGESTED = "ingested"
    """When the row was stored: what the live scorers scored then (the rollback case)."""
    EVENT = "event"
    """When it happened upstream: sheets by submission, statements by statement date."""


# Column per (family, time field); only these constants are ever put into the SQL below.
_SHEET_TIME = {TimeField.INGESTED: "ingested_at", TimeField.EVENT: "submitted_at"}
_STATEMENT_TIME = {
    TimeField.INGESTED: "ingested_at",
    TimeField.EVENT: "statement_date::timestamptz",
}


def _page_query(table: str, key: str, column: str) -> str:
    # Keyset pagination: (time, id) after the last row of the previous page.
    return (
        f"SELECT {key}, {column} AS t FROM {table} "  # noqa: S608 - constants only
        f"WHERE ($1::timestamptz IS NULL OR {column} >= $1) "
        f"AND ($2::timestamptz IS NULL OR {column} < $2) "
        f"AND ($3::timestamptz IS NULL OR ({column}, {key}) > ($3, $4)) "
        f"ORDER BY {column}, {key} LIMIT $5"
    )


@dataclass(frozen=True)
class RescoreOptions:
    """Which version re-scores which rows, and where the scores go."""

    version: str
    topic: str
    from_time: datetime | None = None
    to_time: datetime | None = None
    time_field: TimeField = TimeField.INGESTED
    run_id: str | None = None
    """Defaults to `rescore-<version>-<random>`."""
    page_size: int = 2000
    """Sheets (expense-fraud) or statements (delinquency) per scoring batch."""
    store: bool = False
    """Also store the scores (expense_scores / customer_scores under this run id)."""

    def __post_init__(self) -> None:
        if not self.topic:
            raise RescoreError("name the topic the re-scores go to")
        if self.from_time and self.to_time and self.to_time <= self.from_time:
            raise RescoreError("--to must be after --from")
        if self.page_size < 1:
            raise RescoreError("page_size must be at least 1")


@dataclass(frozen=True)
class RescoreSummary:
    run_id: str
    version: str
    family: ModelFamily
    topic: str
    scored: int
    flagged: int
    stored: bool
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "version": self.version,
            "family": self.family.value,
            "topic": self.topic,
            "scored": self.scored,
            "flagged": self.flagged,
            "stored": self.stored,
            "seconds": round(self.seconds, 3),
        }


class _Emitter:
    """Produces scores to the named topic; `close` accounts for every delivery."""

    def __init__(self, settings: StreamsSettings, topic: str, codec: Codec) -> None:
        self.topic = topic
        self.codec = codec
        self.producer = DeliveringProducer(settings.kafka, **{"linger.ms": 20})

    def send(self, events: Sequence[Event]) -> None:
        self.producer.enqueue(
            self.topic, [(self.codec.key_of(event), self.codec.encode(event)) for event in events]
        )

    def close(self) -> None:
        try:
            self.producer.close(60)
        except DeliveryFailed as exc:
            raise RescoreError(f"scores not delivered: {exc}") from exc


ReportScored = Callable[[int], None]
"""Told how many rows a re-score has scored so far, after each page."""


async def rescore(
    settings: StreamsSettings, options: RescoreOptions, progress: ReportScored | None = None
) -> RescoreSummary:
    """Score the rows of the range with `options.version` and send the scores to the topic."""
    began = time.monotonic()
    run_id = options.run_id or f"rescore-{options.version}-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(), min_size=1, max_size=2, timeout=15
    )
    emitter = _Emitter(settings, options.topic, Codec(settings.codec_limits()))
    try:
        async with pool.acquire() as conn:
            stored = await fetch_version(conn, options.version)
        # Verifies every artifact's sha256 before decoding it (skops / XGBoost, never pickle).
        model = await asyncio.to_thread(build_model, stored)
        async with pool.acquire() as conn:
            if model.family is ModelFamily.EXPENSE_FRAUD:
                scored, flagged = await _rescore_expenses(
                    conn, settings, options, model, run_id, emitter, progress
                )
            else:
                scored, flagged = await _rescore_statements(
                    conn, options, model, run_id, emitter, progress
                )
    finally:
        await pool.close()
    emitter.close()
    return RescoreSummary(
        run_id,
        options.version,
        model.family,
        options.topic,
        scored,
        flagged,
        options.store,
        time.monotonic() - began,
    )


async def _rescore_expenses(
    conn: asyncpg.Connection,
    settings: StreamsSettings,
    options: RescoreOptions,
    model: LoadedModel,
    run_id: str,
    emitter: _Emitter,
    progress: ReportScored | None,
) -> tuple[int, int]:
    """Whole sheets per page (a sheet's totals are features), habits from the window before."""
    page = _page_query("sheets", "sheet_id", _SHEET_TIME[options.time_field])
    after: tuple[Any, str] | None = None
    scored = flagged = 0
    while True:
        sheets = await conn.fetch(
            page,
            options.from_time,
            options.to_time,
            after[0] if after else None,
            after[1] if after else None,
            options.page_size,
        )
        if not sheets:
            return scored, flagged
        after = (sheets[-1]["t"], sheets[-1]["sheet_id"])
        rows = await lines_of_sheets(conn, [r["sheet_id"] for r in sheets])
        lines = pd.DataFrame([tuple(r) for r in rows], columns=list(EXPENSE_COLUMNS))
        if lines.empty:
            continue
        features = await expense_features_of(
            conn,
            lines,
            approval_limit=settings.approval_limit,
            history_days=settings.expense_history_days,
        )
        events = expense_scores(lines, model, score(model, features), run=run_id)
        emitter.send(events)
        if options.store:
            await store_expense_scores(conn, events)
        scored += len(events)
        flagged += sum(1 for e in events if e.is_flagged)
        if progress is not None:
            progress(scored)


async def _rescore_statements(
    conn: asyncpg.Connection,
    options: RescoreOptions,
    model: LoadedModel,
    run_id: str,
    emitter: _Emitter,
    progress: ReportScored | None,
) -> tuple[int, int]:
    page = _page_query("customer_activity", "statement_id", _STATEMENT_TIME[options.time_field])
    after: tuple[Any, str] | None = None
    scored = flagged = 0
    while True:
        chosen = await conn.fetch(
            page,
            options.from_time,
            options.to_time,
            after[0] if after else None,
            after[1] if after else None,
            options.page_size,
        )
        if not chosen:
            return scored, flagged
        after = (chosen[-1]["t"], chosen[-1]["statement_id"])
        ids = [r["statement_id"] for r in chosen]
        wanted = await statements_by_id(conn, ids)
        customers = sorted({r["customer_id"] for r in wanted})
        # A statement's features use every earlier statement of its customer (months on book
        # counts them all), so the whole history up to the page is loaded, not the last few.
        history = await statements_until(conn, customers, max(r["statement_date"] for r in wanted))
        profiles = await customer_profiles(conn, customers)
        activity = pd.DataFrame([tuple(r) for r in history], columns=list(ACTIVITY_COLUMNS))
        profile_frame = pd.DataFrame([tuple(r) for r in profiles], columns=list(PROFILE_COLUMNS))
        metrics.count_unknown_categories(unknown_categories(profile_frame))
        everything = build_delinquency_features(activity, profile_frame)
        features = everything[everything["statement_id"].isin(ids)].reset_index(drop=True)
        events = customer_scores(
            features[["statement_id", "customer_id"]], model, score(model, features), run=run_id
        )
        emitter.send(events)
        if options.store:
            await store_customer_scores(conn, events)
        scored += len(events)
        flagged += sum(1 for e in events if e.is_flagged)
        if progress is not None:
            progress(scored)
