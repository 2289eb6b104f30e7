"""The scoring service: micro-batches in, scores out, with the model the holder has now.

Knows neither Faust nor aiohttp: the upstream consumer (streams.upstream) hands it batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pandas as pd

from schemas.base import ModelFamily
from schemas.bundles import FloatArray, Scores
from schemas.customer_activity import CustomerActivityRecorded
from schemas.customer_scored import CustomerScored
from schemas.expense_scored import ExpenseScored
from schemas.expense_sheet import ExpenseSheetSubmitted
from schemas.features import unknown_categories
from streams import metrics
from streams.models import ModelHolder
from streams.scoring_frames import (
    ExpenseHistoryQuery,
    LoadedModel,
    activity_frame,
    agreement,
    batch_expense_features,
    customer_scores,
    expense_frame,
    expense_scores,
    model_matrix,
    profile_frame,
    score,
    statement_features,
)
from streams.statement_history import Delivery, Row, StatementHistory
from streams.store.scores import (
    already_scored,
    customer_profiles,
    other_statements,
    statements_of,
    store_customer_scores,
    store_expense_scores,
)
from streams.store.sheets import expense_history


async def expense_features_of(
    conn: asyncpg.Connection, lines: pd.DataFrame, *, approval_limit: float, history_days: int
) -> pd.DataFrame:
    """Features of `lines` (in their order) over the stored history the trainer would use.

    One query per call: the stored lines of the window sharing a key with `lines`, and totals
    per key of the window's middle. The live scorer, re-scoring and analysis all come here.
    """
    query = ExpenseHistoryQuery.of(lines, history_days)
    stored = await expense_history(conn, query.expense_ids, query.keys, query.moments)
    return batch_expense_features(
        lines,
        query,
        stored.lines,
        stored.totals,
        approval_limit=approval_limit,
        history_days=history_days,
    )


async def _emit_and_store(
    emitting: Awaitable[None],
    pool: asyncpg.Pool,
    store: Callable[[asyncpg.Connection, Any, FloatArray | None], Awaitable[None]],
    scored: Any,
    features: FloatArray | None,
) -> None:
    """Send the scores and store them side by side; returns once both are done (a failure of
    either cancels the other and is raised: the batch is handled again, idempotently)."""

    async def storing() -> None:
        async with pool.acquire() as conn:
            await store(conn, scored, features)

    tasks = [asyncio.ensure_future(emitting), asyncio.ensure_future(storing())]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # The first failure is raised as it is (the retry policy tells outages by their type).
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


@dataclass(frozen=True)
class ScoredBatch:
    """What one scoring batch did: how many events it scored, and with which version."""

    scored: int
    model_version: str | None


class Scorer:
    """Scores sheets' lines and statements; emits and stores each score once per line."""

    def __init__(
        self,
        holder: ModelHolder,
        pool: Callable[[], Awaitable[asyncpg.Pool]],
        approval_limit: float = 500.0,
        history_days: int = 365,
        statements: StatementHistory | None = None,
    ) -> None:
        self.holder = holder
        self.pool = pool
        self.approval_limit = approval_limit
        self.history_days = history_days
        self.statements = statements
        """Customers' recent statements kept between batches; None reads them every batch."""

    def partitions_revoked(self, partitions: Sequence[int]) -> None:
        """customer-activity partitions this worker gave up (called from any thread)."""
        if self.statements is not None:
            self.statements.revoke(partitions)

    async def score_sheets(
        self,
        sheets: Sequence[ExpenseSheetSubmitted],
        emit: Callable[[list[ExpenseScored]], Awaitable[None]],
    ) -> ScoredBatch:
        family = ModelFamily.EXPENSE_FRAUD
        pool = await self.pool()
        lines = expense_frame(sheets).drop_duplicates("expense_id", keep="first")
        # One reference for the whole batch: a swap lands between batches, never inside one.
        model = self.holder.current(family)
        async with pool.acquire() as conn:
            done = await already_scored(conn, family, lines["expense_id"].tolist())
            todo = lines[~lines["expense_id"].isin(done)].reset_index(drop=True)
            if todo.empty:
                return ScoredBatch(0, None)
            began = time.perf_counter()
            scores = matrix = None
            if model is not None:
                features = await expense_features_of(
                    conn,
                    todo,
                    approval_limit=self.approval_limit,
                    history_days=self.history_days,
                )
                matrix = model_matrix(model, features)
                scores = model.bundle.score(matrix)
                self._shadow(family, model, features, scores)
        scored = expense_scores(todo, model, scores)
        metrics.SCORING_SECONDS.labels(family.value).observe(time.perf_counter() - began)
        await _emit_and_store(emit(scored), pool, store_expense_scores, scored, matrix)
        return self._account(family, model, scored)

    async def score_statements(
        self,
        statements: Sequence[CustomerActivityRecorded],
        emit: Callable[[list[CustomerScored]], Awaitable[None]],
        delivery: Delivery | None = None,
    ) -> ScoredBatch:
        """Score stored `statements`; `delivery` (where they came from, which were new) lets
        the kept history follow them, without it their history is read from the store."""
        family = ModelFamily.DELINQUENCY
        owners: dict[str, int] = {}
        if self.statements is not None and delivery is not None:
            owners = self.statements.stored(statements, delivery)
        pool = await self.pool()
        batch = activity_frame(statements).drop_duplicates("statement_id", keep="first")
        model = self.holder.current(family)
        async with pool.acquire() as conn:
            # A statement the sink stored new in this batch has never been scored: only those
            # stored before (a redelivery) are looked up.
            stored_before = [
                i
                for i in batch["statement_id"].tolist()
                if delivery is None or i not in delivery.new_ids
            ]
            done = await already_scored(conn, family, stored_before) if stored_before else set()
            todo = batch[~batch["statement_id"].isin(done)].reset_index(drop=True)
            if todo.empty:
                return ScoredBatch(0, None)
            began = time.perf_counter()
            scores = matrix = None
            if model is not None:
                history, profiles, older = await self._statement_history(conn, todo, owners)
                metrics.count_unknown_categories(unknown_categories(profile_frame(profiles)))
                features = statement_features(todo, history, profiles, older)
                matrix = model_matrix(model, features)
                scores = model.bundle.score(matrix)
                self._shadow(family, model, features, scores)
        scored = customer_scores(todo, model, scores)
        metrics.SCORING_SECONDS.labels(family.value).observe(time.perf_counter() - began)
        await _emit_and_store(emit(scored), pool, store_customer_scores, scored, matrix)
        return self._account(family, model, scored)

    async def _statement_history(
        self, conn: asyncpg.Connection, todo: pd.DataFrame, owners: dict[str, int]
    ) -> tuple[list[Row], list[Row], dict[str, int]]:
        """The other statements of `todo`'s customers, their profiles, and per customer how
        many earlier statements the first leaves out (see `statement_features`)."""
        customer_ids: list[str] = todo["customer_id"].tolist()
        customers = sorted(set(customer_ids))
        scoring: list[str] = todo["statement_id"].tolist()
        if self.statements is None:
            history = await other_statements(conn, customers, scoring)
            profiles = await customer_profiles(conn, customers)
            return [tuple(r) for r in history], [tuple(r) for r in profiles], {}
        by_customer: dict[str, list[str]] = {}
        for customer, statement_id in zip(customer_ids, scoring, strict=True):
            by_customer.setdefault(customer, []).append(statement_id)
        known, missing = self.statements.known(customers, by_customer)
        rows, profiles, older = known.statements, known.profiles, known.older
        if missing:
            read = [tuple(r) for r in await statements_of(conn, missing)]
            being_scored = set(scoring)
            rows.extend(r for r in read if r[0] not in being_scored)
        else:
            read = []
        unknown = [*missing, *known.without_profile]
        found = [tuple(r) for r in await customer_profiles(conn, unknown)] if unknown else []
        profiles.extend(found)
        self.statements.fill(read, found, owners)
        return rows, profiles, older

    def _shadow(
        self, family: ModelFamily, model: LoadedModel, features: pd.DataFrame, scores: Scores
    ) -> None:
        shadow = self.holder.shadow(family)
        if shadow is None or shadow.version == model.version:
            return
        shadow_scores = score(shadow, features)
        same, differences = agreement(scores, shadow_scores)
        metrics.SHADOW_AGREEMENT.labels(family.value).set(same)
        for difference in differences:
            metrics.SHADOW_SCORE_DIFFERENCE.labels(family.value).observe(float(difference))

    @staticmethod
    def _account(
        family: ModelFamily,
        model: LoadedModel | None,
        scored: Sequence[ExpenseScored] | Sequence[CustomerScored],
    ) -> ScoredBatch:
        version = model.version if model is not None else None
        flagged = sum(1 for s in scored if s.is_flagged)
        metrics.EVENTS_SCORED.labels(family.value).inc(len(scored))
        metrics.EVENTS_FLAGGED.labels(family.value).inc(flagged)
        return ScoredBatch(len(scored), version)
