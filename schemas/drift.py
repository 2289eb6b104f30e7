"""Drift of live data against a model's training data: the reference a version keeps, PSI and a
KS distance. Pure NumPy; the trainer builds the reference, the worker's policy compares with it.

A reference holds, per feature and for the score, quantile bin edges of the training values and
the share of training rows in each bin. Values that are not finite (NaN, ±inf: a habit not yet
known, a missing profile) are counted in a bin of their own, so a sudden rise of missing values
is drift too. A constant feature gets a bin for its one value and one on either side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

REFERENCE_VERSION = 1
"""Bumped whenever the shape of a reference changes."""

DEFAULT_BINS = 10
PSI_EPSILON = 1e-4
"""Share given to an empty bin, on either side, so PSI stays finite (ln(0) is not)."""


class ReferenceError(ValueError):
    """A reference that cannot be used (a wrong shape, bins that do not add up)."""


def _binned(values: FloatArray, edges: FloatArray) -> tuple[FloatArray, float]:
    """Shares of `values` in the bins (-inf, e0], (e0, e1], …, (e_last, inf), and the share of
    values that are not finite."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no values to bin")
    finite = np.isfinite(values)
    index = np.searchsorted(edges, values[finite], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.float64)
    return counts / values.size, float((~finite).sum()) / values.size


def bin_values(values: FloatArray, bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """Quantile bins of `values`: interior edges, the share in each bin, and the missing share."""
    if bins < 1:
        raise ValueError("at least one bin")
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size:
        quantiles = np.quantile(
            finite, np.linspace(0.0, 1.0, bins + 1)[1:-1], method="inverted_cdf"
        )
        edges = np.unique(quantiles)
        if finite.min() == finite.max():
            # A constant: one bin for exactly its value, one on either side, so a constant that
            # moves (either way) is drift.
            value = float(finite[0])
            edges = np.array([np.nextafter(value, -np.inf), value])
    else:
        edges = np.empty(0, dtype=np.float64)
    proportions, missing = _binned(values, edges)
    return {
        "edges": [float(e) for e in edges],
        "proportions": [float(p) for p in proportions],
        "missing": missing,
    }


def build_reference(
    matrix: FloatArray,
    feature_names: Sequence[str],
    scores: FloatArray,
    bins: int = DEFAULT_BINS,
) -> dict[str, Any]:
    """The reference of a version's training data: a JSON-able dict kept in its params.

    `matrix` holds the training rows in the columns of `feature_names` (the bundle's order);
    `scores` the version's score of those same rows.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(feature_names):
        raise ValueError(
            f"a matrix of {len(feature_names)} columns is needed, not of shape {matrix.shape}"
        )
    if len(scores) != matrix.shape[0]:
        raise ValueError(f"{len(scores)} scores for {matrix.shape[0]} rows")
    return {
        "version": REFERENCE_VERSION,
        "samples": int(matrix.shape[0]),
        "features": {name: bin_values(matrix[:, i], bins) for i, name in enumerate(feature_names)},
        "score": bin_values(scores, bins),
    }


@dataclass(frozen=True)
class Bins:
    """A reference's bins of one feature (or of the score), checked."""

    edges: FloatArray
    proportions: FloatArray
    missing: float

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> Bins:
        try:
            edges = np.asarray(stored["edges"], dtype=np.float64)
            proportions = np.asarray(stored["proportions"], dtype=np.float64)
            missing = float(stored.get("missing", 0.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReferenceError(f"bins without usable edges and proportions: {exc}") from exc
        if len(proportions) != len(edges) + 1:
            raise ReferenceError(f"{len(edges)} edges need {len(edges) + 1} proportions")
        if not math.isclose(float(proportions.sum()) + missing, 1.0, abs_tol=1e-6):
            raise ReferenceError("the proportions do not add up to 1")
        return cls(edges, proportions, missing)


def psi(reference_bins: Mapping[str, Any], sample_values: FloatArray) -> float:
    """Population stability index of `sample_values` against a reference's bins.

    sum over bins (sample share − reference share) · ln(sample share / reference share), the
    non-finite values being one more bin; an empty bin counts as PSI_EPSILON. 0 is no change;
    0.1–0.2 is usually read as a moderate shift, 0.2 and more as a significant one.
    """
    bins = Bins.of(reference_bins)
    sample, sample_missing = _binned(np.asarray(sample_values, dtype=np.float64), bins.edges)
    expected = np.maximum(np.append(bins.proportions, bins.missing), PSI_EPSILON)
    actual = np.maximum(np.append(sample, sample_missing), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_distance(reference_bins: Mapping[str, Any], sample_values: FloatArray) -> float | None:
    """A two-sample Kolmogorov–Smirnov statistic between the sample and the reference, of the
    finite values, evaluated at the reference's bin edges.

    The reference keeps binned shares, not its values, so its CDF is known only at the edges:
    the largest gap there is the statistic, a lower bound of the exact one (equal to it when the
    largest gap falls on an edge). None when either side has no finite value.
    """
    bins = Bins.of(reference_bins)
    values = np.asarray(sample_values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    reference_finite = float(bins.proportions.sum())
    if finite.size == 0 or reference_finite <= 0:
        return None
    if bins.edges.size == 0:
        return 0.0
    reference_cdf = np.cumsum(bins.proportions)[:-1] / reference_finite
    sample_cdf = np.searchsorted(np.sort(finite), bins.edges, side="right") / finite.size
    return float(np.max(np.abs(sample_cdf - reference_cdf)))


@dataclass(frozen=True)
class DriftReport:
    """PSI per feature and of the score, the KS distance of the score, on how many rows."""

    samples: int
    feature_psi: dict[str, float]
    score_psi: float | None
    score_ks: float | None


def compare(
    reference: Mapping[str, Any],
    matrix: FloatArray,
    feature_names: Sequence[str],
    scores: FloatArray,
) -> DriftReport:
    """Compare live rows (`matrix` in the columns of `feature_names`, and their scores) with a
    reference. Features the reference does not know are left out."""
    matrix = np.asarray(matrix, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    samples = int(matrix.shape[0]) if matrix.ndim == 2 else 0
    if samples == 0:
        return DriftReport(0, {}, None, None)
    known: Mapping[str, Any] = reference.get("features", {})
    feature_psi = {
        name: psi(known[name], matrix[:, i])
        for i, name in enumerate(feature_names)
        if name in known
    }
    score_bins = reference.get("score")
    score_psi = score_ks = None
    if score_bins is not None and len(scores):
        score_psi = psi(score_bins, scores)
        score_ks = ks_distance(score_bins, scores)
    return DriftReport(samples, feature_psi, score_psi, score_ks)
