"""Drift figures: the reference a version keeps, PSI and the KS distance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb

from schemas.base import ModelFamily
from schemas.bundles import CLASSIFIER, ModelBundle
from schemas.drift import ReferenceError, bin_values, build_reference, compare, ks_distance, psi

RNG = np.random.default_rng(7)


def test_reference_is_json_and_bins_add_up() -> None:
    matrix = np.column_stack([RNG.normal(size=1000), np.full(1000, 3.0), RNG.integers(0, 2, 1000)])
    matrix[:100, 0] = np.nan
    reference = build_reference(matrix, ["a", "constant", "binary"], RNG.random(1000), bins=10)
    assert json.loads(json.dumps(reference)) == reference
    a = reference["features"]["a"]
    assert a["missing"] == pytest.approx(0.1)
    assert len(a["edges"]) == 9
    assert sum(a["proportions"]) + a["missing"] == pytest.approx(1.0)
    constant = reference["features"]["constant"]
    assert constant["edges"][-1] == 3.0
    assert constant["proportions"] == [0.0, 1.0, 0.0]
    assert reference["features"]["binary"]["edges"] == [0.0, 1.0]  # edges are data values
    assert reference["samples"] == 1000


def test_reference_refuses_a_matrix_of_other_columns() -> None:
    with pytest.raises(ValueError, match="columns"):
        build_reference(np.zeros((3, 2)), ["a"], np.zeros(3))
    with pytest.raises(ValueError, match="scores"):
        build_reference(np.zeros((3, 1)), ["a"], np.zeros(2))


def test_psi_is_zero_on_the_same_data_and_large_on_a_shift() -> None:
    values = RNG.normal(size=5000)
    bins = bin_values(values)
    assert psi(bins, values) == pytest.approx(0.0, abs=1e-9)
    assert psi(bins, RNG.normal(size=5000)) < 0.05
    assert psi(bins, RNG.normal(loc=1.0, size=5000)) > 0.2


def test_psi_counts_missing_values_as_their_own_bin() -> None:
    bins = bin_values(RNG.normal(size=1000))
    sample = RNG.normal(size=1000)
    sample[:400] = np.nan
    assert psi(bins, sample) > 0.2


def test_psi_stays_finite_when_bins_are_empty_and_sees_a_constant_move() -> None:
    bins = bin_values(np.full(500, 2.0))  # constant in training: empty bins either side
    assert psi(bins, np.full(500, 2.0)) == pytest.approx(0.0)
    for moved in (5.0, -1.0, np.nan):
        assert np.isfinite(psi(bins, np.full(500, moved)))
        assert psi(bins, np.full(500, moved)) > 1.0


def test_psi_refuses_bins_that_do_not_add_up() -> None:
    with pytest.raises(ReferenceError):
        psi({"edges": [0.0], "proportions": [0.2, 0.2], "missing": 0.0}, np.zeros(3))
    with pytest.raises(ReferenceError):
        psi({"edges": [0.0, 1.0], "proportions": [0.5, 0.5]}, np.zeros(3))


def test_ks_distance_against_the_reference_cdf() -> None:
    values = RNG.random(4000)
    bins = bin_values(values, bins=20)
    assert ks_distance(bins, values) == pytest.approx(0.0, abs=1e-9)
    shifted = ks_distance(bins, values + 0.3)
    assert shifted is not None
    assert shifted == pytest.approx(0.3, abs=0.06)
    assert ks_distance(bins, np.full(3, np.nan)) is None


def test_compare_reports_each_known_feature_and_the_score() -> None:
    train = RNG.normal(size=(2000, 2))
    reference = build_reference(train, ["utilization", "age"], train[:, 0])
    live = np.column_stack([RNG.normal(loc=1.5, size=800), RNG.normal(size=800)])
    report = compare(reference, live, ["utilization", "age"], live[:, 0])
    assert report.samples == 800
    assert report.feature_psi["utilization"] > 0.2 > report.feature_psi["age"]
    assert report.score_psi == pytest.approx(report.feature_psi["utilization"])
    assert report.score_ks is not None
    assert report.score_ks > 0.3
    unknown = compare(reference, live, ["utilization", "new_feature"], live[:, 0])
    assert set(unknown.feature_psi) == {"utilization"}
    assert compare(reference, np.empty((0, 2)), ["utilization", "age"], np.empty(0)).samples == 0


def test_a_bundle_carries_its_reference_through_params() -> None:
    reference = build_reference(np.zeros((4, 1)), ["a"], np.zeros(4))
    bundle = ModelBundle(ModelFamily.DELINQUENCY, {}, ("a",), 0.5, reference=reference)
    assert bundle.params["reference"] == reference
    assert "reference" not in ModelBundle(ModelFamily.DELINQUENCY, {}, ("a",), 0.5).params


def test_a_bundle_builds_its_reference_from_its_own_scores() -> None:
    features = RNG.normal(size=(300, 2))
    truth = (features[:, 0] > 0).astype(np.float64)
    booster = xgb.train({"max_depth": 2, "nthread": 1}, xgb.DMatrix(features, label=truth), 3)
    bundle = ModelBundle(ModelFamily.DELINQUENCY, {CLASSIFIER: booster}, ("a", "b"), 0.5)
    with_reference = bundle.with_reference(features)
    reference = with_reference.reference
    assert reference is not None
    assert reference["samples"] == 300
    assert set(reference["features"]) == {"a", "b"}
    scores = bundle.score(features).score
    assert psi(reference["score"], scores) == pytest.approx(0.0, abs=1e-9)
    assert with_reference.models is bundle.models
