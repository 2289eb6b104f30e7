"""The truth is learnable: simple models find the delinquency and fraud signal, noise does not."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from xgboost import XGBClassifier

from retrainer.simulator.config import CustomerConfig, ExpenseConfig, ScenarioConfig
from retrainer.simulator.signal import delinquency_dataset, expense_dataset
from retrainer.simulator.world import simulate


def _xgboost() -> XGBClassifier:
    return XGBClassifier(
        n_estimators=80, max_depth=3, learning_rate=0.1, min_child_weight=20, n_jobs=1
    )


def test_xgboost_predicts_delinquency_on_a_later_holdout_and_shuffled_labels_do_not() -> None:
    world = simulate(
        ScenarioConfig(
            seed=21,
            customers=CustomerConfig(customers=3000, statements_per_customer=12),
            expenses=ExpenseConfig(sheets=0),
        )
    )
    train, holdout = delinquency_dataset(world.customers).time_split(0.7)
    assert holdout.at_us.min() >= train.at_us.max()
    model = _xgboost().fit(train.features, train.target)
    auc = roc_auc_score(holdout.target, model.predict_proba(holdout.features)[:, 1])
    assert auc > 0.8

    # A model of shuffled labels is a random function of informative features, so one such
    # model may land anywhere; averaged over several shuffles it is no better than chance.
    rng = np.random.default_rng(0)
    shuffled_aucs = []
    for _ in range(6):
        noise = _xgboost().fit(train.features, rng.permutation(train.target))
        shuffled_aucs.append(
            roc_auc_score(holdout.target, noise.predict_proba(holdout.features)[:, 1])
        )
    assert abs(float(np.mean(shuffled_aucs)) - 0.5) < 0.1
    assert max(shuffled_aucs) < auc - 0.15


def test_isolation_forest_finds_injected_fraud_without_labels() -> None:
    world = simulate(
        ScenarioConfig(
            seed=22,
            customers=CustomerConfig(customers=0),
            expenses=ExpenseConfig(sheets=800, fraud_rate=0.05),
        )
    )
    data = expense_dataset(world.expenses, world.config.expenses.approval_limit)
    forest = IsolationForest(n_estimators=100, random_state=0).fit(data.features)
    auc = roc_auc_score(data.target, -forest.score_samples(data.features))
    assert auc > 0.75
