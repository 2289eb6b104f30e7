"""Model quality on a drift scenario, scored against the simulator's ground truth.

A fraud-heavy drift with a fraud kind that did not exist before it, and a macro shock for the
customers. The trainer (in-process, on the real PostgreSQL) trains a champion before the drift
and is asked again some time after it, as the policy would; each model is then scored, with the
shared feature code, on the rows of three periods and compared with the truth and with an
oracle that learnt from every other row. The quality benchmark prints these figures; the drift
test asserts on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import precision_recall_curve, precision_recall_fscore_support, roc_auc_score

from retrainer.simulator.config import (
    CustomerConfig,
    DriftConfig,
    ExpenseConfig,
    FraudKind,
    ScenarioConfig,
)
from retrainer.simulator.world import World, simulate
from schemas.base import ModelFamily
from schemas.bundles import ModelBundle
from schemas.features import (
    DELINQUENCY_FEATURES,
    EXPENSE_FEATURES,
    PROFILE_COLUMNS,
    delinquency_features,
    expense_features,
    feature_matrix,
)
from schemas.retrain_requested import RetrainReason, RetrainRequested
from tests.integration.trainer.seed import seed
from tests.unit.trainer.factories import Frames, frames
from trainer import registry
from trainer.service import Trainer
from trainer.settings import TrainerSettings

US_PER_DAY = 86_400_000_000
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

NEW_KIND = FraudKind.JUST_UNDER_LIMIT
"""The fraud kind that appears with the drift (fraudsters learn to stay under the limit)."""

CHAMPION_AT = 0.40
DRIFT_AT = 0.50
RETRAIN_AT = 0.68
"""Fractions of the scenario's span. The retrain comes once the drift's labels have arrived (a
delinquency label needs its 92-day horizon to have passed: ~0.12 of the span)."""
EVALUATED_UNTIL = 0.92


def drift_world(*, seed: int = 11, sheets: int = 1500, customers: int = 1500) -> World:
    """The scenario: no fraud of NEW_KIND before the drift, mostly NEW_KIND after it."""
    before = {kind: (0.0 if kind is NEW_KIND else 1.0) for kind in FraudKind}
    after = {kind: (6.0 if kind is NEW_KIND else 1.0) for kind in FraudKind}
    return simulate(
        ScenarioConfig(
            seed=seed,
            id_prefix=f"q{seed}",
            expenses=ExpenseConfig(
                sheets=sheets, fraud_rate=0.04, fraud_mix=before, label_fraction=0.5
            ),
            customers=CustomerConfig(customers=customers),
            drift=DriftConfig(at=DRIFT_AT, fraud_rate=0.12, fraud_mix=after),
        )
    )


@dataclass(frozen=True)
class Quality:
    """How one model did on one period's rows, against the truth."""

    family: ModelFamily
    model: str
    """"champion" (trained before the drift), "retrained" (after the drift), "oracle", or
    "past-due-rule" (delinquency: flag anyone past due)."""
    period: str
    """"before-drift", "after-drift" (before the retrain) or "after-retrain"."""
    auc: float
    f1: float
    """At the model's own threshold; for the oracle, the best F1 over thresholds on these rows."""
    rows: int
    positives: int
    new_kind_recall: float | None = None
    """Expense fraud only: the share of NEW_KIND frauds flagged."""

    @property
    def name(self) -> str:
        family = self.family.value.replace("-", "_")
        model, period = (text.replace("-", "_") for text in (self.model, self.period))
        return f"quality_{family}_{model}_{period}"


@dataclass(frozen=True)
class Period:
    name: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class ScenarioResult:
    qualities: tuple[Quality, ...]
    outcomes: Mapping[str, str]
    """What each training request ended in, per "<family> <model>"."""

    def get(self, family: ModelFamily, model: str, period: str) -> Quality:
        for quality in self.qualities:
            if (quality.family, quality.model, quality.period) == (family, model, period):
                return quality
        raise KeyError((family, model, period))


def _at(world: World, fraction: float) -> datetime:
    return world.config.origin + world.config.span * fraction


def periods(world: World) -> tuple[Period, ...]:
    return (
        Period("before-drift", _at(world, CHAMPION_AT), _at(world, DRIFT_AT)),
        Period("after-drift", _at(world, DRIFT_AT), _at(world, RETRAIN_AT)),
        Period("after-retrain", _at(world, RETRAIN_AT), _at(world, EVALUATED_UNTIL)),
    )


def _request(family: ModelFamily, cutoff: datetime) -> RetrainRequested:
    return RetrainRequested(
        occurred_at=datetime.now(UTC),
        request_id=uuid.uuid4(),
        family=family,
        reason=RetrainReason.MANUAL,
        reason_text="drift scenario",
        counters={},
        data_cutoff=cutoff,
        force=False,
        requested_by="quality",
    )


async def _champion(pool: asyncpg.Pool, family: ModelFamily) -> ModelBundle:
    async with pool.acquire() as conn:
        record = await registry.champion(conn, family)
        assert record is not None, f"no {family} champion"
        return await registry.load_bundle(conn, record)


@dataclass(frozen=True)
class _Rows:
    """Every scoreable row of a family with its time, truth and features (point in time)."""

    features: FloatArray
    times: npt.NDArray[np.int64]
    """Microseconds since the epoch."""
    truth: BoolArray
    new_kind: BoolArray


def _expense_rows(world: World, tables: Frames, settings: TrainerSettings) -> _Rows:
    built = expense_features(
        tables.expenses,
        approval_limit=settings.approval_limit,
        history_days=settings.expense_history_days,
    )
    truth = world.truth
    ids = built["expense_id"].tolist()
    return _Rows(
        features=feature_matrix(built, EXPENSE_FEATURES),
        times=built["submitted_us"].to_numpy(dtype=np.int64),
        truth=np.array([truth.fraud_by_expense[i] for i in ids], dtype=np.bool_),
        new_kind=np.array(
            [truth.fraud_kind_by_expense.get(i) is NEW_KIND for i in ids], dtype=np.bool_
        ),
    )


def _delinquency_rows(world: World, tables: Frames) -> _Rows:
    built = delinquency_features(tables.activity, tables.customers.loc[:, list(PROFILE_COLUMNS)])
    truth = world.truth.delinquent_by_statement
    days = built["statement_day"].to_numpy(dtype=np.int64)
    return _Rows(
        features=feature_matrix(built, DELINQUENCY_FEATURES),
        times=days * US_PER_DAY,
        truth=np.array([truth[s] for s in built["statement_id"]], dtype=np.bool_),
        new_kind=np.zeros(len(built), dtype=np.bool_),
    )


def _in(rows: _Rows, period: Period) -> BoolArray:
    start, end = (round(moment.timestamp() * 1_000_000) for moment in (period.start, period.end))
    return np.asarray((rows.times >= start) & (rows.times < end), dtype=np.bool_)


def _model_quality(
    family: ModelFamily, model: str, period: Period, rows: _Rows, bundle: ModelBundle
) -> Quality:
    chosen = _in(rows, period)
    names = EXPENSE_FEATURES if family is ModelFamily.EXPENSE_FRAUD else DELINQUENCY_FEATURES
    columns = np.array([names.index(n) for n in bundle.feature_names], dtype=np.int64)
    scores = bundle.score(rows.features[np.ix_(np.flatnonzero(chosen), columns)])
    truth = rows.truth[chosen]
    return _quality(
        family, model, period, truth, scores.score, scores.flagged, rows.new_kind[chosen]
    )


def _quality(
    family: ModelFamily,
    model: str,
    period: Period,
    truth: BoolArray,
    score: FloatArray,
    flagged: BoolArray,
    new_kind: BoolArray,
) -> Quality:
    _, _, f1, _ = precision_recall_fscore_support(truth, flagged, average="binary", zero_division=0)
    return Quality(
        family=family,
        model=model,
        period=period.name,
        auc=float(roc_auc_score(truth, score)),
        f1=float(f1),
        rows=len(truth),
        positives=int(truth.sum()),
        new_kind_recall=float(flagged[new_kind].mean()) if new_kind.any() else None,
    )


def _oracle(family: ModelFamily, period: Period, rows: _Rows, settings: TrainerSettings) -> Quality:
    """The family's model class fitted on the truth of every row outside the period; its F1 is
    the best any threshold reaches on the period's rows (an upper bound, not a deployable one)."""
    chosen = _in(rows, period)
    train_x, train_y = rows.features[~chosen], rows.truth[~chosen]
    if family is ModelFamily.DELINQUENCY:
        params = {
            "objective": "binary:logistic",
            "tree_method": "hist",
            "max_depth": settings.xgb_max_depth,
            "eta": settings.xgb_learning_rate,
            "seed": settings.random_seed,
            "nthread": 2,
        }
        booster = xgb.train(params, xgb.DMatrix(train_x, label=train_y), settings.xgb_rounds)
        score = np.asarray(booster.predict(xgb.DMatrix(rows.features[chosen])), np.float64)
    else:
        forest = RandomForestClassifier(
            n_estimators=settings.forest_trees,
            min_samples_leaf=2,
            class_weight="balanced",
            random_state=settings.random_seed,
            n_jobs=2,
        )
        forest.fit(np.nan_to_num(train_x), train_y)
        score = forest.predict_proba(np.nan_to_num(rows.features[chosen]))[:, 1]
    truth = rows.truth[chosen]
    precision, recall, thresholds = precision_recall_curve(truth, score)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    flagged = score >= thresholds[best] if len(thresholds) else np.zeros(len(truth), np.bool_)
    return _quality(family, "oracle", period, truth, score, flagged, rows.new_kind[chosen])


def _past_due_rule(period: Period, rows: _Rows) -> Quality:
    """The rule users compare a delinquency model with: flag anyone past due on the statement."""
    chosen = _in(rows, period)
    past_due = rows.features[chosen, DELINQUENCY_FEATURES.index("days_past_due")]
    return _quality(
        ModelFamily.DELINQUENCY,
        "past-due-rule",
        period,
        rows.truth[chosen],
        past_due,
        past_due > 0,
        rows.new_kind[chosen],
    )


async def run_drift_scenario(
    url: str,
    world: World,
    settings: TrainerSettings | None = None,
    *,
    scored: Collection[str] | None = None,
) -> ScenarioResult:
    """Seed `world` into the database at `url`, train before and after the drift, score.

    `scored` names the periods to score (default: all three); both trainings run either way,
    and an oracle is fitted only for a period that is scored.
    """
    tables = frames(world)
    await seed(url, tables)
    settings = settings or TrainerSettings(database_url=url)  # type: ignore[arg-type]
    rows = {
        ModelFamily.EXPENSE_FRAUD: _expense_rows(world, tables, settings),
        ModelFamily.DELINQUENCY: _delinquency_rows(world, tables),
    }
    champion_at = _at(world, CHAMPION_AT)
    retrain_at = _at(world, RETRAIN_AT)
    qualities: list[Quality] = []
    outcomes: dict[str, str] = {}
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        with ThreadPoolExecutor(max_workers=1) as executor:
            trainer = Trainer(settings, pool, executor)
            for family, family_rows in rows.items():
                first = await trainer.handle(_request(family, champion_at))
                outcomes[f"{family} champion"] = f"{first.status}: {first.outcome.reason}"
                champion = await _champion(pool, family)
                second = await trainer.handle(_request(family, retrain_at))
                outcomes[f"{family} retrained"] = f"{second.status}: {second.outcome.reason}"
                retrained = await _champion(pool, family)
                for period in periods(world):
                    if scored is not None and period.name not in scored:
                        continue
                    qualities.append(
                        _model_quality(family, "champion", period, family_rows, champion)
                    )
                    if period.name == "after-retrain":
                        qualities.append(
                            _model_quality(family, "retrained", period, family_rows, retrained)
                        )
                    qualities.append(_oracle(family, period, family_rows, settings))
                    if family is ModelFamily.DELINQUENCY:
                        qualities.append(_past_due_rule(period, family_rows))
    finally:
        await pool.close()
    return ScenarioResult(tuple(qualities), outcomes)
