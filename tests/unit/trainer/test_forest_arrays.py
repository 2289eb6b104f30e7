"""Forests stored as tree arrays score as scikit-learn does: same probabilities, same anomaly
scores, same flags; their bytes are verified before decoding and a form that does not decode
falls back to skops."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest, RandomForestClassifier

from schemas import artifacts, forests
from schemas.artifacts import ArtifactFormat, ArtifactIntegrityError
from schemas.base import ModelFamily
from schemas.bundles import ISOLATION_FOREST, RANDOM_FOREST, ModelBundle
from schemas.forests import ArrayForest
from tests.unit.trainer.factories import frames, world
from trainer.families import TrainingSet, expense_set, fit
from trainer.settings import TrainerSettings

SETTINGS = TrainerSettings(training_threads=1, forest_trees=60)
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def trained() -> tuple[ModelBundle, TrainingSet]:
    sim = frames(world(seed=21, customers=200, sheets=300, label_fraction=0.5))
    data = expense_set(sim.expenses, sim.labels, settings=SETTINGS)
    bundle = fit(data, SETTINGS)
    assert set(bundle.models) == {ISOLATION_FOREST, RANDOM_FOREST}
    return bundle, data


def _rows(stored: list[artifacts.Artifact]) -> list[tuple[str, str, str, bytes]]:
    return [(a.role, a.format.value, a.sha256, a.content) for a in stored]


def _stored(bundle: ModelBundle) -> list[artifacts.Artifact]:
    return [a for role, m in sorted(bundle.models.items()) for a in artifacts.dump_all(role, m)]


def test_each_forest_is_stored_in_skops_and_as_tree_arrays(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, _ = trained
    stored = _stored(bundle)
    assert [(a.role, a.format) for a in stored] == [
        (ISOLATION_FOREST, ArtifactFormat.SKOPS),
        (ISOLATION_FOREST, ArtifactFormat.TREE_ARRAYS),
        (RANDOM_FOREST, ArtifactFormat.SKOPS),
        (RANDOM_FOREST, ArtifactFormat.TREE_ARRAYS),
    ]
    assert [a.name for a in stored] == [
        "isolation_forest",
        "isolation_forest.tree-arrays",
        "random_forest",
        "random_forest.tree-arrays",
    ]
    assert all(b"pickle" not in a.content[:64] for a in stored)


def test_tree_array_scores_equal_scikit_learn_on_the_holdout(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, data = trained
    fast = ModelBundle.from_artifacts(
        bundle.family, bundle.params, _rows(_stored(bundle)), prefer_fast=True
    )
    assert all(isinstance(m, ArrayForest) for m in fast.models.values())
    unseen = data.features[data.holdout_rows]  # rows the forests were not fitted on
    assert len(unseen) > 100
    assert np.isnan(unseen).any()  # the classifier takes missing values as they are

    detector = bundle.models[ISOLATION_FOREST]
    classifier = bundle.models[RANDOM_FOREST]
    assert isinstance(detector, IsolationForest)
    assert isinstance(classifier, RandomForestClassifier)
    filled = np.nan_to_num(unseen, nan=0.0)
    expected_probability = classifier.predict_proba(unseen)[:, 1]
    expected_anomaly = -detector.score_samples(filled)
    expected_anomaly_flags = detector.predict(filled) == -1

    ours = fast.score(unseen)
    np.testing.assert_allclose(ours.score, expected_probability, rtol=0, atol=TOLERANCE)
    assert ours.anomaly_score is not None
    assert ours.anomaly_flagged is not None
    np.testing.assert_allclose(ours.anomaly_score, expected_anomaly, rtol=0, atol=TOLERANCE)
    np.testing.assert_array_equal(ours.flagged, expected_probability >= bundle.threshold)
    np.testing.assert_array_equal(ours.anomaly_flagged, expected_anomaly_flags)
    assert 0 < ours.anomaly_flagged.sum() < len(unseen)  # flags on both sides of the offset
    assert 0 < ours.flagged.sum() < len(unseen)

    # And the bundle as the trainer holds it (scikit-learn's objects) answers the same.
    theirs = bundle.score(unseen)
    np.testing.assert_array_equal(theirs.flagged, ours.flagged)
    np.testing.assert_array_equal(theirs.anomaly_flagged, expected_anomaly_flags)
    np.testing.assert_allclose(theirs.score, ours.score, rtol=0, atol=TOLERANCE)
    assert fast.anomaly_offset == bundle.anomaly_offset == detector.offset_


@pytest.mark.parametrize("max_samples", [2, 3, 17, 256])
def test_isolation_forest_path_length_normalisation(max_samples: int) -> None:
    """Our normalising constant and offset arithmetic, on forests of any sample size and a
    contamination that moves the offset away from -0.5."""
    rng = np.random.default_rng(max_samples)
    train = rng.normal(size=(400, 5))
    detector = IsolationForest(
        n_estimators=40, max_samples=max_samples, contamination=0.1, random_state=1
    ).fit(train)
    forest = ArrayForest.decode(forests.encode(detector) or b"")
    rows = np.vstack([rng.normal(size=(300, 5)), rng.normal(scale=4.0, size=(30, 5))])
    anomaly = forest.anomaly_score(rows)
    np.testing.assert_allclose(anomaly, -detector.score_samples(rows), rtol=0, atol=TOLERANCE)
    # Not only close: the same float operations in the same order give the same bits.
    np.testing.assert_array_equal(anomaly, -detector.score_samples(rows))
    np.testing.assert_array_equal(forest.anomaly_flags(anomaly), detector.predict(rows) == -1)
    # The training rows themselves: the offset is their contamination quantile, so some lie
    # right at it, and the flags must still agree.
    on_train = forest.anomaly_score(train)
    np.testing.assert_array_equal(forest.anomaly_flags(on_train), detector.predict(train) == -1)
    assert forest.offset == detector.offset_
    if max_samples > 3:  # two or three rows per tree give too few distinct scores to move it
        assert detector.offset_ != -0.5


def test_isolation_forest_of_one_row_scores_one_half() -> None:
    detector = IsolationForest(n_estimators=5, max_samples=1, random_state=0)
    detector.fit(np.zeros((1, 3)))
    forest = ArrayForest.decode(forests.encode(detector) or b"")
    rows = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.testing.assert_allclose(forest.anomaly_score(rows), -detector.score_samples(rows))


def test_missing_values_go_where_scikit_learn_sends_them() -> None:
    """Missing values in a feature seen with and one seen without them during the fit."""
    rng = np.random.default_rng(3)
    train = rng.normal(size=(500, 4))
    train[rng.random(500) < 0.2, 0] = np.nan  # feature 0 has missing values, 1-3 never
    labels = (np.nan_to_num(train[:, 0], nan=1.5) + train[:, 1] > 0.5).astype(int)
    classifier = RandomForestClassifier(n_estimators=30, min_samples_leaf=2, random_state=0)
    classifier.fit(train, labels)
    rows = rng.normal(size=(200, 4))
    rows[rng.random(200) < 0.3, 0] = np.nan
    rows[rng.random(200) < 0.3, 2] = np.nan
    forest = ArrayForest.decode(forests.encode(classifier) or b"")
    np.testing.assert_allclose(
        forest.probability(rows), classifier.predict_proba(rows)[:, 1], rtol=0, atol=TOLERANCE
    )


def test_only_forests_we_can_score_get_tree_arrays() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 4))
    two_outputs = RandomForestClassifier(n_estimators=3).fit(rows, np.c_[rows[:, :2] > 0])
    assert forests.encode(two_outputs) is None
    assert [a.format for a in artifacts.dump_all("x", two_outputs)] == [ArtifactFormat.SKOPS]
    subsampled = IsolationForest(n_estimators=3, max_features=2).fit(rows)
    assert forests.encode(subsampled) is None


def test_wrong_width_is_refused_not_padded(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, data = trained
    forest = ArrayForest.decode(forests.encode(bundle.models[RANDOM_FOREST]) or b"")
    with pytest.raises(ValueError, match="features"):
        forest.probability(data.features[:5, :-1])


def test_tampered_tree_arrays_are_refused_before_decoding(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, _ = trained
    stored = _stored(bundle)
    tampered = [
        (role, fmt, sha, content + b"\x00" if fmt == "tree-arrays" else content)
        for role, fmt, sha, content in _rows(stored)
    ]
    # Every form is checked, whichever is decoded.
    for prefer_fast in (True, False):
        with pytest.raises(ArtifactIntegrityError, match="digest mismatch"):
            ModelBundle.from_artifacts(
                bundle.family, bundle.params, tampered, prefer_fast=prefer_fast
            )


def test_a_form_that_does_not_decode_falls_back_to_skops(trained, caplog) -> None:  # type: ignore[no-untyped-def]
    bundle, data = trained
    plain = forests.encode(bundle.models[ISOLATION_FOREST])
    assert plain is not None
    garbage = b"not a forest" * 10
    rows = [
        (role, fmt, artifacts.sha256_of(garbage), garbage)
        if (role, fmt) == (ISOLATION_FOREST, "tree-arrays")
        else (role, fmt, sha, content)
        for role, fmt, sha, content in _rows(_stored(bundle))
    ]
    with caplog.at_level(logging.WARNING, logger="schemas.bundles"):
        loaded = ModelBundle.from_artifacts(bundle.family, bundle.params, rows, prefer_fast=True)
    assert isinstance(loaded.models[ISOLATION_FOREST], IsolationForest)
    assert isinstance(loaded.models[RANDOM_FOREST], ArrayForest)
    assert "isolation_forest: the tree-arrays form does not decode" in caplog.text
    unseen = data.features[data.holdout_rows]
    np.testing.assert_array_equal(loaded.score(unseen).flagged, bundle.score(unseen).flagged)
    # Alone, it is refused; so is a single array where an archive belongs.
    with pytest.raises(ArtifactIntegrityError, match="do not decode"):
        artifacts.load(ArtifactFormat.TREE_ARRAYS, garbage, artifacts.sha256_of(garbage))
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    single = buffer.getvalue()
    with pytest.raises(ArtifactIntegrityError, match="not an archive"):
        artifacts.load(ArtifactFormat.TREE_ARRAYS, single, artifacts.sha256_of(single))


def test_archives_we_did_not_write_are_refused(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, _ = trained

    def archive(**arrays: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    def refused(content: bytes, reason: str) -> None:
        with pytest.raises(ArtifactIntegrityError, match=reason):
            artifacts.load(ArtifactFormat.TREE_ARRAYS, content, artifacts.sha256_of(content))

    refused(archive(values=np.zeros(3)), "do not decode")  # no shape
    good = forests.encode(bundle.models[ISOLATION_FOREST])
    assert good is not None
    with np.load(io.BytesIO(good), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    shape = json.loads(arrays["shape"].tobytes())

    def with_shape(**changes: object) -> np.ndarray:
        text = json.dumps({**shape, **changes}).encode()
        return np.frombuffer(text, dtype=np.uint8)

    refused(archive(**{**arrays, "shape": with_shape(format_version=99)}), "format version")
    refused(archive(**{**arrays, "shape": with_shape(kind="gbm")}), "which forest")
    refused(archive(**{**arrays, "shape": with_shape(trees=3)}), "number of nodes")
    no_paths = {k: v for k, v in arrays.items() if k != "paths"}
    refused(archive(**no_paths), "path lengths")
    # A node layout this scikit-learn does not know (a field renamed) is refused, not guessed.
    nodes = arrays["nodes"]
    renamed = nodes.astype(
        np.dtype([("x" + n if n == "feature" else n, nodes.dtype[n]) for n in nodes.dtype.names])
    )
    refused(archive(**{**arrays, "nodes": renamed}), "do not decode")
    # An object array would need pickle to load: refused too.
    refused(archive(**{**arrays, "values": np.array([{}], dtype=object)}), "do not decode")


def test_versions_without_tree_arrays_load_from_skops(trained) -> None:  # type: ignore[no-untyped-def]
    bundle, data = trained
    older = [artifacts.dump(role, m) for role, m in sorted(bundle.models.items())]
    loaded = ModelBundle.from_artifacts(
        ModelFamily.EXPENSE_FRAUD, bundle.params, _rows(older), prefer_fast=True
    )
    assert isinstance(loaded.models[RANDOM_FOREST], RandomForestClassifier)
    unseen = data.features[data.holdout_rows]
    np.testing.assert_array_equal(loaded.score(unseen).score, bundle.score(unseen).score)
    # The trainer reads the canonical forms even when the tree arrays are there.
    canonical = ModelBundle.from_artifacts(bundle.family, bundle.params, _rows(_stored(bundle)))
    assert isinstance(canonical.models[ISOLATION_FOREST], IsolationForest)
