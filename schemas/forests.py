"""Scikit-learn forests as plain arrays: the form scorers load instead of skops.

The trainer stores each fitted RandomForestClassifier and IsolationForest twice: skops (the
estimator itself, what the trainer reads back) and here, its trees' node and value arrays in one
NumPy archive (read with allow_pickle off). Skops rebuilds the estimator object by object from a
JSON description and holds the GIL, so the event loop of a worker reloading a version stalls for
tens of milliseconds; this form rebuilds each tree with one copy of its arrays (scikit-learn's
own `Tree`, as skops itself does in the end), a few trees at a time (ForestBuilder).

Scoring walks the same trees with scikit-learn's compiled `Tree.apply`/`Tree.predict` and does
the forest's arithmetic here as scikit-learn does it (rows rounded to float32, trees summed in
order, the IsolationForest's path-length normalisation and offset), so scores equal
scikit-learn's, without the per-call overhead of its estimators (input validation, joblib).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.errors import ArtifactIntegrityError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

RANDOM_FOREST_KIND = "random_forest"
ISOLATION_FOREST_KIND = "isolation_forest"

FORMAT_VERSION = 1
"""Bumped when the archive's arrays change meaning; a version we do not know is refused (and
the scorer falls back to skops)."""


def average_path_length(samples: npt.ArrayLike) -> FloatArray:
    """Expected depth of an unsuccessful search in a binary search tree of n keys, for each n:
    how much deeper a leaf holding n training rows would have gone on average (0 for one row,
    1 for two). The same float operations as scikit-learn's, so the values are bit-equal."""
    n = np.asarray(samples, dtype=np.float64)
    lengths = np.zeros(n.shape, dtype=np.float64)
    lengths[n == 2] = 1.0
    more = n > 2
    lengths[more] = 2.0 * (np.log(n[more] - 1.0) + np.euler_gamma) - 2.0 * (n[more] - 1.0) / n[more]
    return lengths


@dataclass(frozen=True)
class ForestShape:
    """What the node arrays alone do not say: which forest it is and how its output is read."""

    kind: str
    features: int
    trees: int
    classes: int = 1
    """RandomForest: classes of its single output (2: fraud or not)."""
    offset: float = 0.0
    """IsolationForest: `offset_`; its decision function is score_samples - offset."""
    path_norm: float = 0.0
    """IsolationForest: the average path length of `max_samples_` rows."""

    def as_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "features": self.features,
            "trees": self.trees,
            "classes": self.classes,
            "offset": self.offset,
            "path_norm": self.path_norm,
        }

    @classmethod
    def from_json(cls, value: object) -> ForestShape:
        if not isinstance(value, dict) or value.get("format_version") != FORMAT_VERSION:
            raise ArtifactIntegrityError("forest arrays of an unknown format version")
        if value.get("kind") not in (RANDOM_FOREST_KIND, ISOLATION_FOREST_KIND):
            raise ArtifactIntegrityError("forest arrays do not say which forest they hold")
        return cls(
            kind=str(value["kind"]),
            features=int(value["features"]),
            trees=int(value["trees"]),
            classes=int(value["classes"]),
            offset=float(value["offset"]),
            path_norm=float(value["path_norm"]),
        )


def _full_width(estimator: Any) -> bool:
    """Whether each isolation tree saw every feature in order (no feature subsampling)."""
    wanted = estimator.max_features
    if isinstance(wanted, float):
        return wanted == 1.0
    return int(wanted) == int(estimator.n_features_in_)


def encode(estimator: object) -> bytes | None:
    """The arrays of a fitted RandomForestClassifier (one output) or IsolationForest (every
    feature per tree); None for any other model, which keeps its canonical form only."""
    from sklearn.ensemble import IsolationForest, RandomForestClassifier

    extra: dict[str, FloatArray] = {}
    if isinstance(estimator, IsolationForest) and _full_width(estimator):
        trees = [e.tree_ for e in estimator.estimators_]
        shape = ForestShape(
            kind=ISOLATION_FOREST_KIND,
            features=int(estimator.n_features_in_),
            trees=len(trees),
            offset=float(estimator.offset_),
            path_norm=float(average_path_length([estimator.max_samples_])[0]),
        )
        # What a row reaching each node adds to the forest's depth: the nodes on its path
        # (compute_node_depths counts the root as 1), plus the average path length of the
        # training rows left there, minus one: scikit-learn's terms, in its order.
        extra["paths"] = np.concatenate(
            [t.compute_node_depths() + average_path_length(t.n_node_samples) - 1.0 for t in trees]
        )
    elif isinstance(estimator, RandomForestClassifier) and estimator.n_outputs_ == 1:
        trees = [e.tree_ for e in estimator.estimators_]
        shape = ForestShape(
            kind=RANDOM_FOREST_KIND,
            features=int(estimator.n_features_in_),
            trees=len(trees),
            classes=int(estimator.n_classes_),
        )
    else:
        return None
    states = [t.__getstate__() for t in trees]
    arrays: dict[str, npt.NDArray[Any]] = {
        "shape": np.frombuffer(json.dumps(shape.as_json()).encode(), dtype=np.uint8),
        "node_counts": np.array([s["node_count"] for s in states], dtype=np.int64),
        "max_depths": np.array([s["max_depth"] for s in states], dtype=np.int64),
        "nodes": np.concatenate([s["nodes"] for s in states]),
        "values": np.concatenate([s["values"] for s in states]),
        **extra,
    }
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


class ForestBuilder:
    """A forest's arrays, read and checked, rebuilt into trees a few at a time.

    A worker rebuilds on its event loop between scoring batches, a few trees per step: the
    loop never waits more than a step, and no thread competes with it for the GIL."""

    def __init__(self, shape: ForestShape, arrays: dict[str, Any]) -> None:
        counts, nodes, values = arrays["node_counts"], arrays["nodes"], arrays["values"]
        total = int(counts.sum())
        if len(counts) != shape.trees or total != len(nodes) or total != len(values):
            raise ArtifactIntegrityError("forest arrays disagree on their number of nodes")
        if (shape.kind == ISOLATION_FOREST_KIND) != ("paths" in arrays):
            raise ArtifactIntegrityError("forest arrays: path lengths for isolation trees only")
        if "paths" in arrays and len(arrays["paths"]) != total:
            raise ArtifactIntegrityError("forest arrays disagree on their number of nodes")
        self.shape = shape
        self._arrays = arrays
        self._counts: list[int] = counts.tolist()
        self._depths: list[int] = arrays["max_depths"].tolist()
        self._trees: list[Any] = []
        self._paths: list[FloatArray] = []
        self._start = 0
        # The first tree now: a node layout this scikit-learn does not know is refused here,
        # where the caller can still fall back to another form.
        self.build(1)

    @property
    def done(self) -> bool:
        return len(self._trees) == self.shape.trees

    def build(self, trees: int | None = None) -> bool:
        """Rebuild up to `trees` more trees (all that are left when None); True once whole."""
        from sklearn.tree._tree import Tree

        classes = np.array([self.shape.classes], dtype=np.intp)
        left = self.shape.trees - len(self._trees)
        for _ in range(left if trees is None else min(trees, left)):
            i = len(self._trees)
            end = self._start + self._counts[i]
            tree = Tree(self.shape.features, classes, 1)
            try:
                tree.__setstate__(
                    {
                        "max_depth": self._depths[i],
                        "node_count": self._counts[i],
                        "nodes": self._arrays["nodes"][self._start : end],
                        "values": self._arrays["values"][self._start : end],
                    }
                )
            except (ValueError, TypeError, KeyError) as exc:
                raise ArtifactIntegrityError(f"forest arrays do not decode: {exc}") from exc
            self._trees.append(tree)
            if "paths" in self._arrays:
                self._paths.append(np.ascontiguousarray(self._arrays["paths"][self._start : end]))
            self._start = end
        return self.done

    def forest(self) -> ArrayForest:
        """The whole forest (rebuilding what is left first)."""
        self.build()
        return ArrayForest(self.shape, self._trees, self._paths)


class ArrayForest:
    """A forest rebuilt from `encode`'s arrays, scoring as its scikit-learn original does."""

    def __init__(self, shape: ForestShape, trees: list[Any], paths: list[FloatArray]) -> None:
        self.shape = shape
        self._trees = trees
        self._paths = paths

    @classmethod
    def parse(cls, content: bytes) -> ForestBuilder:
        """Read and check `encode`'s bytes (verify their sha256 first); the trees are rebuilt
        by the builder returned."""
        try:
            loaded = np.load(io.BytesIO(content), allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise ArtifactIntegrityError("forest arrays: not an archive of arrays")
            with loaded as archive:
                shape = ForestShape.from_json(json.loads(archive["shape"].tobytes()))
                arrays: dict[str, Any] = {
                    name: archive[name]
                    for name in ("node_counts", "max_depths", "nodes", "values", "paths")
                    if name in archive.files
                }
            return ForestBuilder(shape, arrays)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            # ValueError is also what an object array (it would need pickle) raises.
            raise ArtifactIntegrityError(f"forest arrays do not decode: {exc}") from exc

    @classmethod
    def decode(cls, content: bytes) -> ArrayForest:
        """Rebuild a forest from `encode`'s bytes at once (verify their sha256 first)."""
        return cls.parse(content).forest()

    @property
    def kind(self) -> str:
        return self.shape.kind

    @property
    def offset(self) -> float:
        return self.shape.offset

    def _rows(self, features: FloatArray) -> npt.NDArray[np.float32]:
        if features.ndim != 2 or features.shape[1] != self.shape.features:
            raise ValueError(
                f"the forest takes {self.shape.features} features; got shape {features.shape}"
            )
        # scikit-learn's trees compare float32 rows (their thresholds lie between float32s).
        return np.ascontiguousarray(features, dtype=np.float32)

    def probability(self, features: FloatArray) -> FloatArray:
        """RandomForest: the probability of its second class (predict_proba(...)[:, 1])."""
        if self.shape.kind != RANDOM_FOREST_KIND:
            raise TypeError("an isolation forest has no class probabilities")
        rows = self._rows(features)
        total = np.zeros((len(rows), self.shape.classes), dtype=np.float64)
        for tree in self._trees:
            total += tree.predict(rows)
        total /= len(self._trees)
        return np.ascontiguousarray(total[:, 1])

    def anomaly_score(self, features: FloatArray) -> FloatArray:
        """IsolationForest: -score_samples, 2 ** -(summed depth / (trees * path_norm))."""
        if self.shape.kind != ISOLATION_FOREST_KIND:
            raise TypeError("a random forest has no anomaly score")
        rows = self._rows(features)
        depths = np.zeros(len(rows), dtype=np.float64)
        for tree, paths in zip(self._trees, self._paths, strict=True):
            depths += paths[tree.apply(rows)]
        denominator = len(self._trees) * self.shape.path_norm
        # Fitted on a single row, every depth and the norm are 0: scikit-learn scores 2 ** -1.
        ratio = np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
        return np.asarray(2**-ratio, dtype=np.float64)

    def anomaly_flags(self, anomaly: FloatArray) -> BoolArray:
        """IsolationForest: predict(...) == -1, i.e. decision_function < 0."""
        return np.asarray((-anomaly - self.shape.offset) < 0, dtype=np.bool_)
