"""What the API and the CLI answer with: a family's retraining status and the analysis of sheets.

Read from PostgreSQL through `streams.store`, shaped as pydantic models that the HTTP API sends
as they are (its OpenAPI document is generated from them). No Faust, no aiohttp.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

import asyncpg
import pandas as pd
from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

from schemas.base import ModelFamily
from schemas.bundles import RANDOM_FOREST
from schemas.features import EXPENSE_COLUMNS
from streams.policy import Action, Counters, PolicyConfig, decide
from streams.quality import QualityConfig, QualityFigures
from streams.scoring_frames import LoadedModel, score
from streams.services.policy import PolicyState, manual_request_id
from streams.services.quality import QualityMonitor
from streams.services.scoring import expense_features_of
from streams.store import analysis as analysis_store
from streams.store import policy_state
from streams.store import sheets as sheet_store
from streams.store.counts import read_counters

Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda moment: moment.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
"""A moment as RFC 3339 with its offset (`+00:00`), as the API has always written it."""


class Answer(BaseModel):
    """A JSON answer of the API: every field it sends is declared."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class InFlightRequest(Answer):
    """The retrain request a family waits on."""

    request_id: uuid.UUID
    reason: str
    since: Timestamp


class Retraining(Answer):
    """A row of `model_retraining_log`, in the pre-delinquency engine's columns."""

    retrain_id: int
    retrain_date: Timestamp
    customers_trained: int | None
    samples_trained: int | None
    auc_score: float | None
    precision_score: float | None
    recall_score: float | None
    f1_score: float | None
    model_version: str | None
    trigger_reason: str | None
    status: str | None
    family: str | None


class DriftStatus(Answer):
    """The champion's recent scored rows against its training reference."""

    model_version: str
    samples: int
    """Scored rows compared (the newest in the window, those that kept their features)."""
    min_sample: int
    psi_threshold: float
    feature_psi: dict[str, float]
    score_psi: float | None
    score_ks: float | None
    """KS distance of the scores, at the reference's bin edges."""
    note: str | None
    """Why there are no figures, when there are none."""


class PerformanceStatus(Answer):
    """A version's live scores against the labels known now (realised performance)."""

    model_version: str
    champion: bool
    samples: int
    positives: int
    auc: float | None
    precision: float | None
    recall: float | None
    holdout_auc: float | None
    """The AUC the trainer measured on the version's holdout."""


class QualityStatus(Answer):
    """The drift and realised-performance figures the policy decides on, and its settings."""

    computed_at: Timestamp
    drift: DriftStatus | None
    performance: list[PerformanceStatus]
    auc_floor: float
    auc_margin: float
    min_labelled: int


def quality_status(figures: QualityFigures, config: QualityConfig) -> QualityStatus:
    """The figures as the status endpoint answers them."""
    drift = figures.drift
    return QualityStatus(
        computed_at=figures.computed_at,
        drift=None
        if drift is None
        else DriftStatus(
            model_version=drift.model_version,
            samples=drift.samples,
            min_sample=config.drift_min_sample,
            psi_threshold=config.drift_psi_threshold,
            feature_psi=dict(drift.feature_psi),
            score_psi=drift.score_psi,
            score_ks=drift.score_ks,
            note=drift.note,
        ),
        performance=[
            PerformanceStatus(
                model_version=p.model_version,
                champion=p.model_version == figures.model_version,
                samples=p.samples,
                positives=p.positives,
                auc=p.auc,
                precision=p.precision,
                recall=p.recall,
                holdout_auc=p.holdout_auc,
            )
            for p in figures.performance.values()
        ],
        auc_floor=config.performance_auc_floor,
        auc_margin=config.performance_auc_margin,
        min_labelled=config.performance_min_sample,
    )


class FamilyStatus(Answer):
    """A family's counters and the policy's verdict now, with its latest retrainings."""

    family: ModelFamily
    new_customers_count: int
    new_sheets_count: int
    retraining_needed: bool
    reason: str
    threshold: int
    decision: Action
    model_version: str | None
    data_cutoff: Timestamp | None
    last_trained_at: Timestamp | None
    in_flight: InFlightRequest | None
    anomaly_rate: float | None
    counters: dict[str, int]
    recent_retraining: list[Retraining]
    quality: QualityStatus | None = None
    """Drift and realised performance of the champion; None before figures were read."""

    def counted(self) -> Counters:
        """The counters as the policy reads them."""
        return Counters.from_dict(datetime.now(UTC), self.counters)


async def family_status(
    pool: asyncpg.Pool,
    policy: PolicyConfig,
    family: ModelFamily,
    recent: int = 5,
    quality: QualityMonitor | None = None,
) -> FamilyStatus:
    """The family's counters and the policy's verdict now, with its `recent` latest retrainings.

    With a quality monitor, the drift and performance figures join the verdict as they join
    the policy's (read at most once per the monitor's refresh interval).
    """
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        current = PolicyState.from_json(family, await policy_state.stored_state(conn, family))
        state = current.family_state
        counters = await read_counters(conn, family, state.cutoff, state.model_version, policy)
        history = await analysis_store.recent_retrainings(conn, family, recent)
    figures = None
    if quality is not None:
        figures = await quality.figures(
            family, state.model_version, now, refresh=state.in_flight is None
        )
    decision = decide(family, counters, state, policy, now, quality=figures)
    threshold = (
        policy.new_customers_threshold
        if family is ModelFamily.DELINQUENCY
        else policy.new_sheets_threshold
    )
    flight = state.in_flight
    return FamilyStatus(
        family=family,
        new_customers_count=counters.new_customers,
        new_sheets_count=counters.new_sheets,
        retraining_needed=decision.retraining_needed,
        reason=decision.reason_text,
        threshold=threshold,
        decision=decision.action,
        model_version=state.model_version,
        data_cutoff=state.cutoff,
        last_trained_at=state.last_trained_at,
        in_flight=None
        if flight is None
        else InFlightRequest(
            request_id=flight.request_id, reason=flight.reason_text, since=flight.sent_at
        ),
        anomaly_rate=counters.anomaly_rate,
        counters={name: int(value) for name, value in counters.as_dict().items()},
        recent_retraining=[Retraining.model_validate(dict(row)) for row in history],
        quality=None if figures is None else quality_status(figures, policy.quality),
    )


async def next_manual_request(
    pool: asyncpg.Pool, family: ModelFamily
) -> tuple[uuid.UUID | None, uuid.UUID]:
    """The request in flight (if any), and the id the next manual trigger is to carry.

    Every trigger until the family's next request is answered gets the same id: the policy folds
    the triggers of one debounce window into one request, and this is that request's id.
    """
    mirror = await policy_state.request_mirror(pool, family)
    if mirror is None:
        return None, manual_request_id(family, None, None, 0)
    return mirror.in_flight, manual_request_id(
        family, mirror.cutoff, mirror.last_trained_at, mirror.finished
    )


def upload_training_status(status: FamilyStatus) -> str:
    """What an upload answers on training, from the expense-fraud family's status after it."""
    last = status.recent_retraining[:1]
    if status.decision in (Action.REQUEST, Action.WAIT, Action.REEMIT):
        reason = status.in_flight.reason if status.in_flight else status.reason
        return f"Retrain requested: {reason}"
    if status.decision is Action.HELD:
        return f"Retrain due: {status.reason}"
    if last and last[0].status == "failed" and status.in_flight is None:
        return f"Training failed: {last[0].trigger_reason}"
    return "No training needed"


class AnalysedLine(Answer):
    """One expense line with what the expense-fraud model says of it."""

    expense_id: str
    sheet_id: str
    amount: float
    category: str
    merchant: str
    anomaly_score: float | None
    fraud_probability: float | None
    is_flagged: bool


class AnalysisSummary(Answer):
    """The lines of the analysed sheets, scored by the model this worker scores with."""

    model_version: str | None
    sheets: int
    expenses: int
    flagged: int
    results: list[AnalysedLine]


class AnalysisAnswer(Answer):
    """The expense app's analysis answer."""

    message: str
    training_status: str
    analysis_summary: AnalysisSummary


def _analysed(
    features: pd.DataFrame | None, model: LoadedModel | None, count: int
) -> list[tuple[float | None, float | None, bool]]:
    """Each line's (anomaly score, fraud probability, flagged), in the lines' order."""
    if model is None or features is None:
        return [(None, None, False)] * count
    scores = score(model, features)
    anomaly = scores.anomaly_score if scores.anomaly_score is not None else scores.score
    has_classifier = RANDOM_FOREST in model.bundle.models
    return [
        (
            float(anomaly[i]),
            float(scores.score[i]) if has_classifier else None,
            bool(scores.flagged[i]),
        )
        for i in range(count)
    ]


async def analyse(
    pool: asyncpg.Pool,
    model: LoadedModel | None,
    sheet_ids: list[str],
    approval_limit: float,
    history_days: int,
) -> AnalysisSummary:
    """Score the stored lines of these sheets with `model` (none: every line unscored).

    Features come from the same stored history the live scorer and the trainer use.
    """
    features = None
    async with pool.acquire() as conn:
        rows = await sheet_store.lines_of_sheets(conn, sheet_ids)
        lines = pd.DataFrame([tuple(r) for r in rows], columns=list(EXPENSE_COLUMNS))
        if model is not None and not lines.empty:
            features = await expense_features_of(
                conn, lines, approval_limit=approval_limit, history_days=history_days
            )
    verdicts = _analysed(features, model, len(lines))
    results = [
        AnalysedLine(
            expense_id=row["expense_id"],
            sheet_id=row["sheet_id"],
            amount=row["amount"],
            category=row["category"],
            merchant=row["merchant"],
            anomaly_score=anomaly,
            fraud_probability=probability,
            is_flagged=flagged,
        )
        for row, (anomaly, probability, flagged) in zip(rows, verdicts, strict=True)
    ]
    return AnalysisSummary(
        model_version=model.version if model is not None else None,
        sheets=len(set(lines["sheet_id"])) if not lines.empty else 0,
        expenses=len(results),
        flagged=sum(1 for r in results if r.is_flagged),
        results=results,
    )


def analysis_answer(what: str, training_status: str, summary: AnalysisSummary) -> AnalysisAnswer:
    """The expense app's analysis answer: message, training_status, analysis_summary."""
    return AnalysisAnswer(
        message=f"{what}: {summary.flagged} of {summary.expenses} expenses flagged",
        training_status=training_status,
        analysis_summary=summary,
    )
