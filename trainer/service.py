"""The retrain handler: one request in, one recorded outcome (and maybe a promotion) out.

Kafka-free: the runner feeds it decoded requests and publishes what it returns, or dead-letters
the ones it refuses (trainer.admission). Loading and recording go through asyncpg; fitting runs
in an executor so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

import asyncpg
import numpy as np

from edge.requests import record_request
from schemas import artifacts
from schemas.base import ModelFamily
from schemas.bundles import CLASSIFIER, RANDOM_FOREST, ModelBundle
from schemas.codec import utc_now
from schemas.features import unknown_categories
from schemas.model_updated import ModelUpdated
from schemas.retrain_requested import RetrainRequested
from schemas.training_outcome import OutcomeStatus, TrainingOutcome
from trainer import admission, datasets, families, gate, metrics, outcomes, registry, reporting
from trainer.cluster import Cluster, ClusterDelinquency, ClusterUnavailable
from trainer.errors import (
    ArtifactIntegrityError,
    ChampionChanged,
    DependencyUnavailable,
    InsufficientData,
    RegistryError,
    TrainerError,
)
from trainer.families import IntArray, TrainingSet
from trainer.retry import TRANSIENT, retrying
from trainer.selection import CustomerSelection
from trainer.settings import TrainerSettings

log = logging.getLogger(__name__)
T = TypeVar("T")
FitFunction = Callable[[TrainingSet, TrainerSettings], ModelBundle]
ReportStage = Callable[[str], None]
"""Told each stage of a training as it starts (the CLI shows it beside a spinner)."""
GATE_ATTEMPTS = 3
SUPERVISED_ROLES = frozenset({CLASSIFIER, RANDOM_FOREST})
"""Bundle roles learnt from labels; a bundle without one is judged as a detector."""


def code_version() -> str:
    """The package version plus the feature code's version, stored with every model."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("retrainer")
    except PackageNotFoundError:
        package = "unknown"
    from schemas.features import FEATURES_VERSION

    return f"retrainer {package} features v{FEATURES_VERSION}"


@dataclass(frozen=True)
class TrainingDetail:
    """What a training run saw and decided, for `retrainer check` and the tests."""

    training_set: TrainingSet
    selection: CustomerSelection | None
    metrics: Mapping[str, float]
    decision: gate.GateDecision
    fit_seconds: float
    load_seconds: float = 0.0
    """Reading the rows from PostgreSQL (and choosing the customers)."""
    build_seconds: float = 0.0
    """Building the features and labels from the loaded rows."""
    refit_seconds: float = 0.0
    """Fitting the promoted configuration again on the whole window (0: not promoted)."""


@dataclass(frozen=True)
class Result:
    """The outcome to publish, the promotion to announce (if any), and whether it was a replay."""

    outcome: TrainingOutcome
    model_updated: ModelUpdated | None = None
    replayed: bool = False
    detail: TrainingDetail | None = field(default=None, compare=False)

    @property
    def status(self) -> OutcomeStatus:
        return self.outcome.status


@dataclass(frozen=True)
class _Prepared:
    data: TrainingSet
    selection: CustomerSelection | None
    rows: int
    seconds: float
    build_seconds: float


@dataclass(frozen=True)
class _Evaluated:
    """The model fitted before the holdout, and its metrics on the holdout."""

    bundle: ModelBundle
    scored: Mapping[str, float]
    fit_seconds: float


@dataclass
class _Fitted:
    """A request's data and fits, kept when PostgreSQL fails after the fit: the request comes
    back after the outage and is recorded without loading and fitting again."""

    request_id: UUID
    prepared: _Prepared
    evaluated: _Evaluated
    trained_at: datetime
    refitted: tuple[ModelBundle, list[artifacts.Artifact]] | None = None
    refit_seconds: float = 0.0


@dataclass(frozen=True)
class _Comparison:
    """The champion the gate compared with and what it compared on (None: no usable champion)."""

    version: str | None
    evidence: families.ChampionEvidence | None
    note: str = ""

    @property
    def metrics(self) -> Mapping[str, float] | None:
        return None if self.evidence is None else self.evidence.metrics


@dataclass(frozen=True)
class _Candidate:
    """The model to store, its metrics and the gate's decision on it, ready to be recorded.

    A promoted candidate's bundle is the refit on the whole window; a rejected one keeps the
    evaluated fit. Its metrics are always the evaluated fit's holdout metrics.
    """

    prepared: _Prepared
    evaluated: _Evaluated
    bundle: ModelBundle
    stored: list[artifacts.Artifact]
    comparison: _Comparison
    decision: gate.GateDecision
    trained_at: datetime

    @property
    def champion_version(self) -> str | None:
        """The champion the gate compared with; recording fails if it is no longer the champion."""
        return self.comparison.version

    @property
    def refitted(self) -> bool:
        return self.bundle is not self.evaluated.bundle

    @property
    def samples(self) -> int:
        """Rows the stored model was fitted on."""
        fitted = self.bundle.fitted_rows
        return fitted if fitted is not None else len(self.prepared.data.train_rows)

    def recorded_metrics(self) -> dict[str, float]:
        """The evaluated fit's holdout metrics, what the stored model was fitted on, and the
        champion's figures on the same holdout beside them."""
        recorded = dict(self.evaluated.scored)
        recorded["threshold"] = self.bundle.threshold
        recorded["fitted_rows"] = float(self.samples)
        if self.evaluated.bundle.fitted_rows is not None:
            recorded["evaluated_fitted_rows"] = float(self.evaluated.bundle.fitted_rows)
        if self.refitted:
            recorded["refit_samples"] = float(self.samples)
        if self.bundle.fitted_until is not None:
            recorded["fitted_until_epoch_s"] = self.bundle.fitted_until.timestamp()
        evidence = self.comparison.evidence
        if evidence is not None:
            if "auc" in evidence.metrics:
                recorded["champion_auc"] = evidence.metrics["auc"]
            overlap = evidence.overlap
            recorded["champion_seen_holdout_rows"] = float(overlap.seen_rows)
            if overlap.unseen_challenger and overlap.unseen_champion:
                recorded["unseen_holdout_auc"] = overlap.unseen_challenger["auc"]
                recorded["champion_unseen_holdout_auc"] = overlap.unseen_champion["auc"]
            recorded["champion_flag_rate"] = evidence.unlabelled.champion_flag_rate
            recorded["champion_flag_agreement"] = evidence.unlabelled.agreement
            if evidence.unlabelled.score_psi is not None:
                recorded["champion_score_psi"] = evidence.unlabelled.score_psi
        return recorded

    def data_start(self) -> datetime | None:
        """When the earliest row the stored model was fitted on happened (None: no rows)."""
        data = self.prepared.data
        rows = data.all_rows if self.refitted else data.train_rows
        return data.time_of(int(data.times[rows].min())) if len(rows) else None


class Trainer:
    """Handles retrain requests against one PostgreSQL pool."""

    def __init__(
        self,
        settings: TrainerSettings,
        pool: asyncpg.Pool,
        executor: Executor,
        *,
        clock: Callable[[], datetime] = utc_now,
        fit: FitFunction = families.fit,
        cluster: Cluster | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._executor = executor
        self._clock = clock
        self._cluster = cluster
        self._fit = cluster.fit if cluster is not None and fit is families.fit else fit
        self._code_version = code_version()
        # Loads read through their own connections (binary COPY), on threads off the loop.
        self._source = datasets.Source(settings.dsn)
        # One request's finished fit at most: the one whose recording an outage interrupted.
        self._held: _Fitted | None = None

    def close(self) -> None:
        """Let go of the cluster's client, if any (blocking)."""
        if self._cluster is not None:
            self._cluster.close()

    async def _off_loop(self, function: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)

    async def _db(self, what: str, operation: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run `operation` on a pooled connection, retrying while PostgreSQL is unreachable."""

        async def attempt() -> T:
            async with self._pool.acquire() as conn:
                return await operation(conn)

        return await retrying(attempt, self._settings, what)

    async def finished(self, request_id: UUID) -> outcomes.OutcomeRecord | None:
        """The logged outcome of a request that already finished, if any."""

        async def find(conn: asyncpg.Connection) -> outcomes.OutcomeRecord | None:
            return await outcomes.find(conn, request_id)

        return await self._db("looking up the request", find)

    async def admit(self, request: RetrainRequested) -> None:
        """Refuse a cutoff in the future and a reused request id (raises RequestRefused).

        The id is bound to the request on first sight, before training, so a request that is
        still training (or crashed while training) owns its id too.
        """
        skew = timedelta(seconds=self._settings.max_cutoff_skew_s)
        admission.check_cutoff(request, self._clock(), skew)
        identity = admission.RequestIdentity.of(request)
        bound_at = self._clock()

        async def bind(conn: asyncpg.Connection) -> admission.RequestIdentity:
            return await outcomes.bind_request(conn, identity, bound_at)

        admission.check_identity(await self._db("binding the request id", bind), identity)

    async def handle(
        self, request: RetrainRequested, progress: ReportStage | None = None
    ) -> Result:
        """Train, evaluate, gate and record `request`; a request already finished is replayed.

        Raises RequestRefused for a request the trainer will not act on (see `admit`).
        """
        report = progress or (lambda _stage: None)
        await self.admit(request)
        done = await self.finished(request.request_id)
        if done is not None:
            # Also checked against the log: ids finished before they were bound keep no digest.
            admission.check_identity(done.identity(), admission.RequestIdentity.of(request))
            log.info(
                "request %s already finished (%s); not training again", done.request_id, done.status
            )
            return await self._replay(done)
        began = time.monotonic()
        family = request.family
        try:
            result = await self._train(request, began, report)
        except DependencyUnavailable:
            # PostgreSQL (or Kafka) is down: not this request's failure. Nothing is answered;
            # the runner rewinds and the request is handled again once the outage is over.
            raise
        except TRANSIENT as exc:
            raise DependencyUnavailable(
                f"{'the Dask cluster' if isinstance(exc, ClusterUnavailable) else 'PostgreSQL'} "
                f"failed during request {request.request_id}: {exc!r}"
            ) from exc
        except InsufficientData as exc:
            result = await self._end_without_model(
                request, OutcomeStatus.SKIPPED, f"insufficient data: {exc}", began
            )
        except (TrainerError, asyncpg.PostgresError) as exc:
            result = await self._end_without_model(
                request, OutcomeStatus.FAILED, f"{type(exc).__name__}: {exc}", began
            )
        except Exception as exc:
            log.exception("request %s failed", request.request_id)
            result = await self._end_without_model(
                request, OutcomeStatus.FAILED, f"unexpected {type(exc).__name__}: {exc}", began
            )
        if not result.replayed:
            metrics.OUTCOMES.labels(family.value, result.status.value).inc()
            metrics.TRAINING_DURATION.labels(family.value).observe(time.monotonic() - began)
        return result

    async def _replay(self, done: outcomes.OutcomeRecord) -> Result:
        announce: ModelUpdated | None = None
        if done.status is OutcomeStatus.PROMOTED:

            async def current(conn: asyncpg.Connection) -> registry.VersionRecord | None:
                return await registry.champion(conn, done.family)

            champion = await self._db("reading the champion", current)
            # Re-announce only what is still champion: an older model-updated would undo a
            # newer promotion on the compacted topic.
            if champion is not None and champion.version == done.version:
                announce = champion.model_updated()
        return Result(done.event(self._clock()), announce, replayed=True)

    async def _prepare(self, request: RetrainRequested) -> _Prepared:
        settings, cutoff = self._settings, request.data_cutoff
        minimums = not request.force
        if request.family is ModelFamily.DELINQUENCY and self._cluster is not None:
            return await self._prepare_on_cluster(self._cluster, request)
        if request.family is ModelFamily.DELINQUENCY:

            async def load_d() -> datasets.DelinquencyData:
                return await datasets.load_delinquency(self._source, cutoff, settings)

            loaded = await retrying(load_d, settings, "loading delinquency data")
            metrics.count_unknown_categories(unknown_categories(loaded.profiles))
            build_began = time.perf_counter()
            data = await self._off_loop(
                lambda: families.delinquency_set(
                    loaded.activity,
                    loaded.profiles,
                    cutoff_day=datasets.day_number(cutoff),
                    settings=settings,
                    selection=loaded.selection,
                    minimums=minimums,
                )
            )
            return _Prepared(
                data,
                loaded.selection,
                loaded.rows,
                loaded.seconds,
                time.perf_counter() - build_began,
            )

        async def load_e() -> datasets.ExpenseData:
            return await datasets.load_expenses(self._source, cutoff, settings)

        expense = await retrying(load_e, settings, "loading expense data")
        build_began = time.perf_counter()
        data = await self._off_loop(
            lambda: families.expense_set(
                expense.expenses, expense.labels, settings=settings, minimums=minimums
            )
        )
        return _Prepared(
            data, None, expense.rows, expense.seconds, time.perf_counter() - build_began
        )

    async def _prepare_on_cluster(self, cluster: Cluster, request: RetrainRequested) -> _Prepared:
        """The delinquency set loaded, selected and built in the cluster's workers."""
        settings, cutoff = self._settings, request.data_cutoff
        began = time.perf_counter()

        async def load() -> ClusterDelinquency:
            return await asyncio.to_thread(
                cluster.load_delinquency, cutoff, settings, settings.max_customers
            )

        loaded = await retrying(load, settings, "loading delinquency data on the cluster")
        seconds = time.perf_counter() - began
        metrics.count_unknown_categories(loaded.unknown_categories)
        build_began = time.perf_counter()
        data = await self._off_loop(
            lambda: families.delinquency_training_set(
                loaded.rows,
                settings=settings,
                selection=loaded.selection,
                minimums=not request.force,
            )
        )
        return _Prepared(
            data, loaded.selection, loaded.loaded_rows, seconds, time.perf_counter() - build_began
        )

    async def _evaluate(self, prepared: _Prepared) -> _Evaluated:
        """Fit before the holdout (threshold chosen on out-of-fold scores), score the holdout."""
        data, settings = prepared.data, self._settings
        fit_began = time.monotonic()
        bundle = await self._off_loop(lambda: self._fit(data, settings))
        fit_seconds = time.monotonic() - fit_began
        scored = await self._off_loop(lambda: families.evaluate(bundle, data))
        family = data.family.value
        if "auc" in scored:
            metrics.LAST_AUC.labels(family).set(scored["auc"])
        if "f1" in scored:
            metrics.LAST_F1.labels(family).set(scored["f1"])
        return _Evaluated(bundle, scored, fit_seconds)

    async def _compare(self, data: TrainingSet, challenger: ModelBundle) -> _Comparison:
        """The champion scored beside the challenger on our holdout (what the gate compares)."""
        family = data.family

        async def fetch(
            conn: asyncpg.Connection,
        ) -> tuple[registry.VersionRecord | None, ModelBundle | None, str]:
            record = await registry.champion(conn, family)
            if record is None:
                return None, None, ""
            try:
                return record, await registry.load_bundle(conn, record), ""
            except (ArtifactIntegrityError, RegistryError, KeyError) as exc:
                return record, None, f"champion {record.version} unusable: {exc}"

        record, bundle, note = await self._db("loading the champion", fetch)
        if record is None:
            return _Comparison(None, None)
        if bundle is None:
            return _Comparison(record.version, None, note)
        if not set(bundle.feature_names) <= set(data.feature_names):
            return _Comparison(
                record.version, None, f"champion {record.version} uses features we no longer build"
            )
        # Versions from before the fitted data end was recorded: their cutoff bounds it.
        data_end = bundle.fitted_until or record.data_cutoff
        champion, recorded_auc = bundle, record.metrics.get("auc")
        evidence = await self._off_loop(
            lambda: families.champion_evidence(challenger, champion, data, data_end, recorded_auc)
        )
        return _Comparison(record.version, evidence)

    def _gate(
        self, request: RetrainRequested, evaluated: _Evaluated, comparison: _Comparison
    ) -> gate.GateDecision:
        """The gate's decision on the evaluated fit against the champion."""
        settings, bundle = self._settings, evaluated.bundle
        evidence = comparison.evidence
        band = (
            (settings.anomaly_rate_low, settings.anomaly_rate_high)
            if request.family is ModelFamily.EXPENSE_FRAUD
            else None
        )
        decision = gate.decide(
            evaluated.scored,
            comparison.metrics,
            tolerance=settings.promotion_tolerance,
            force=request.force,
            champion_version=comparison.version,
            supervised=bool(SUPERVISED_ROLES & set(bundle.models)),
            overlap=None if evidence is None else evidence.overlap,
            unlabelled=None if evidence is None else evidence.unlabelled,
            rule=gate.UnlabelledRule(
                band=band,
                max_score_psi=settings.gate_max_score_psi,
                min_flag_agreement=settings.gate_min_flag_agreement,
            ),
        )
        if comparison.note:
            decision = replace(decision, reason=f"{decision.reason} ({comparison.note})")
        if decision.holdout_gap is not None:
            log.warning("request %s (%s): %s", request.request_id, request.family, decision.reason)
        return decision

    async def _refit(self, prepared: _Prepared, evaluated: ModelBundle) -> ModelBundle:
        """The evaluated configuration fitted on every row of the window, holdout included."""
        data, settings = prepared.data, self._settings
        cluster = self._cluster
        if cluster is not None:
            return await self._off_loop(lambda: cluster.refit(data, settings, evaluated))
        return await self._off_loop(lambda: families.refit(data, settings, evaluated))

    async def _stored(
        self, bundle: ModelBundle, data: TrainingSet, rows: IntArray
    ) -> tuple[ModelBundle, list[artifacts.Artifact]]:
        """The bundle with the reference of the rows it was fitted on (what the worker measures
        drift against) and its artifacts serialised: what the registry stores."""

        def store() -> tuple[ModelBundle, list[artifacts.Artifact]]:
            columns = np.array(
                [data.feature_names.index(n) for n in bundle.feature_names], np.int64
            )
            kept = bundle.with_reference(data.features[np.ix_(rows, columns)])
            return kept, [
                artifact
                for role, model in sorted(kept.models.items())
                for artifact in artifacts.dump_all(role, model)
            ]

        return await self._off_loop(store)

    async def _train(self, request: RetrainRequested, began: float, report: ReportStage) -> Result:
        held, self._held = self._held, None
        if held is not None and held.request_id == request.request_id:
            log.info("request %s: recording the fit made before the outage", request.request_id)
            fitted = held
        else:
            fitted = await self._fit_request(request, report)
        try:
            return await self._decide_and_record(request, fitted, began, report)
        except TRANSIENT:
            self._held = fitted
            raise

    async def _fit_request(self, request: RetrainRequested, report: ReportStage) -> _Fitted:
        trained_at = self._clock()
        report("loading data")
        prepared = await self._prepare(request)
        if prepared.seconds > 0:
            metrics.LOAD_RATE.labels(request.family.value).set(prepared.rows / prepared.seconds)
        report("training")
        return _Fitted(request.request_id, prepared, await self._evaluate(prepared), trained_at)

    async def _decide_and_record(
        self, request: RetrainRequested, fitted: _Fitted, began: float, report: ReportStage
    ) -> Result:
        family = request.family
        prepared, evaluated = fitted.prepared, fitted.evaluated
        data = prepared.data
        # Each is built once, however often a changed champion makes the gate decide again.
        kept: tuple[ModelBundle, list[artifacts.Artifact]] | None = None
        for attempt in range(GATE_ATTEMPTS):
            report("comparing with the champion")
            comparison = await self._compare(data, evaluated.bundle)
            decision = self._gate(request, evaluated, comparison)
            if decision.promote:
                if fitted.refitted is None:
                    report("refitting on the whole window")
                    refit_began = time.perf_counter()
                    refit = await self._refit(prepared, evaluated.bundle)
                    fitted.refit_seconds = time.perf_counter() - refit_began
                    window = np.arange(len(data.labels), dtype=np.int64)
                    fitted.refitted = await self._stored(refit, data, window)
                bundle, stored = fitted.refitted
            else:
                if kept is None:
                    kept = await self._stored(evaluated.bundle, data, data.train_rows)
                bundle, stored = kept
            report("recording")
            candidate = _Candidate(
                prepared=prepared,
                evaluated=evaluated,
                bundle=bundle,
                stored=stored,
                comparison=comparison,
                decision=decision,
                trained_at=fitted.trained_at,
            )
            try:
                result = await self._commit(request, candidate, began)
            except ChampionChanged:
                log.info("champion of %s changed during training (attempt %d)", family, attempt + 1)
                continue
            detail = TrainingDetail(
                training_set=data,
                selection=prepared.selection,
                metrics=evaluated.scored,
                decision=decision,
                fit_seconds=evaluated.fit_seconds,
                load_seconds=prepared.seconds,
                build_seconds=prepared.build_seconds,
                refit_seconds=fitted.refit_seconds,
            )
            return Result(result.outcome, result.model_updated, result.replayed, detail)
        raise ChampionChanged(f"the {family} champion kept changing; gave up after {GATE_ATTEMPTS}")

    async def _commit(
        self, request: RetrainRequested, candidate: _Candidate, began: float
    ) -> Result:
        """Version, artifacts, promotion, log and training status: all or nothing."""
        family, decision = request.family, candidate.decision
        data_start = candidate.data_start()
        recorded = candidate.recorded_metrics()

        async def commit(conn: asyncpg.Connection) -> Result:
            async with conn.transaction():
                await registry.lock_family(conn, family)
                done = await outcomes.find(conn, request.request_id)
                if done is not None:
                    return await self._replay(done)
                current = await registry.champion(conn, family)
                if (current.version if current else None) != candidate.champion_version:
                    raise ChampionChanged(f"champion is now {current.version if current else None}")
                now = self._clock()
                record = await self._save_version(conn, request, candidate, recorded, data_start)
                if decision.promote:
                    record = await _promote(conn, family, record, candidate.prepared.selection, now)
                await reporting.store_report(
                    conn,
                    record,
                    candidate.evaluated.bundle,
                    candidate.prepared.data,
                    decision,
                    self._off_loop,
                    champion=current,
                )
                outcome = outcomes.OutcomeRecord(
                    request_id=request.request_id,
                    family=family,
                    status=OutcomeStatus.PROMOTED if decision.promote else OutcomeStatus.REJECTED,
                    reason="; ".join([decision.reason, *candidate.bundle.notes]),
                    data_cutoff=request.data_cutoff,
                    duration_seconds=time.monotonic() - began,
                    trigger_reason=_trigger(request),
                    version=record.version,
                    metrics=recorded,
                    samples=candidate.samples,
                    customers=candidate.prepared.data.customers,
                    forced=request.force,
                    gate_overridden=decision.overridden,
                )
                await record_request(conn, request)
                await outcomes.record(conn, outcome, now)
            if decision.promote:
                metrics.CHAMPION.labels(family.value).info({"version": record.version})
            return Result(outcome.event(now), record.model_updated() if decision.promote else None)

        return await self._db("recording the outcome", commit)

    async def _save_version(
        self,
        conn: asyncpg.Connection,
        request: RetrainRequested,
        candidate: _Candidate,
        recorded: Mapping[str, float],
        data_start: datetime | None,
    ) -> registry.VersionRecord:
        """Store the candidate as a new version: a candidate to promote, or rejected."""
        decision = candidate.decision
        return await registry.save_version(
            conn,
            bundle=candidate.bundle,
            stored=candidate.stored,
            status=(
                registry.VersionStatus.CANDIDATE
                if decision.promote
                else registry.VersionStatus.REJECTED
            ),
            status_reason=decision.reason,
            metrics=recorded,
            samples=candidate.samples,
            data_start=data_start,
            data_cutoff=request.data_cutoff,
            code_version=self._code_version,
            request_id=request.request_id,
            trained_at=candidate.trained_at,
            promoted_at=None,
            gate_evidence=decision.evidence,
        )

    async def _end_without_model(
        self, request: RetrainRequested, status: OutcomeStatus, reason: str, began: float
    ) -> Result:
        """Log a skipped or failed request; publishing the outcome must not wait on the log."""
        outcome = outcomes.OutcomeRecord(
            request_id=request.request_id,
            family=request.family,
            status=status,
            reason=reason,
            data_cutoff=request.data_cutoff,
            duration_seconds=time.monotonic() - began,
            trigger_reason=_trigger(request),
            forced=request.force,
            error=reason if status is OutcomeStatus.FAILED else None,
        )
        now = self._clock()

        async def write(conn: asyncpg.Connection) -> bool:
            async with conn.transaction():
                await record_request(conn, request)
                return await outcomes.record(conn, outcome, now)

        # PostgreSQL down here raises DependencyUnavailable: the request is handled again after
        # the outage, so its outcome is published once, and only once it is recorded.
        await self._db("recording the outcome", write)
        return Result(outcome.event(now))


async def _promote(
    conn: asyncpg.Connection,
    family: ModelFamily,
    record: registry.VersionRecord,
    selection: CustomerSelection | None,
    now: datetime,
) -> registry.VersionRecord:
    """Make `record` the champion (retiring the old one) and mark its customers as trained."""
    await registry.retire_champion(conn, family, f"replaced by {record.version}")
    await conn.execute(
        "UPDATE model_versions SET status = 'champion', promoted_at = $2 WHERE version = $1",
        record.version,
        now,
    )
    promoted = await registry.get_version(conn, record.version)
    if selection is not None:
        await outcomes.mark_customers_trained(conn, selection.customer_ids, now)
    return promoted


def _trigger(request: RetrainRequested) -> str:
    text = request.reason_text or request.reason.value
    return f"{text} (forced)" if request.force else text
