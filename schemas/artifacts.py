"""How trained models travel as bytes from trainer to scorers: XGBoost UBJ or skops, sha256.

Never pickle. Both services import this module, so an artifact the trainer writes is one the
scorers can read. A scikit-learn forest is stored a second time as plain tree arrays
(schemas.forests), which scorers decode without stalling their event loop; skops stays the
model's canonical form, the one every version has.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from schemas.errors import ArtifactIntegrityError

# skops, XGBoost and scikit-learn are imported where a model is encoded or decoded:
# commands that only read the registry (`models list`) must not pay seconds of imports for them.

__all__ = ["ArtifactIntegrityError"]  # defined with the other schema errors; raised here

CLASSIFIER = "classifier"
ISOLATION_FOREST = "isolation_forest"
RANDOM_FOREST = "random_forest"
"""The roles a version's artifacts play (model_artifacts.role)."""


TRUSTED_SKOPS_TYPES: tuple[str, ...] = ("sklearn.tree._tree.Tree",)
"""The only non-default types our scikit-learn artifacts may hold (the fitted trees' storage).

skops trusts scikit-learn's own estimators and NumPy arrays by itself; anything else in a
stored artifact is refused rather than loaded.
"""


class ArtifactFormat(StrEnum):
    """How an artifact's bytes are encoded (model_artifacts.format)."""

    XGBOOST_UBJ = "xgboost-ubj"
    SKOPS = "skops"
    TREE_ARRAYS = "tree-arrays"


FAST_FORMATS: frozenset[ArtifactFormat] = frozenset({ArtifactFormat.TREE_ARRAYS})
"""Second encodings of a model stored canonically too: scorers load them in its place when
present (they decode without holding the event loop up)."""


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class Artifact:
    """One model's bytes, how they are encoded, and their digest."""

    role: str
    format: ArtifactFormat
    content: bytes

    @property
    def sha256(self) -> str:
        return sha256_of(self.content)

    @property
    def name(self) -> str:
        """Unique within a version: the role for the canonical form, `role.format` for a
        second encoding of the same model."""
        return artifact_name(self.role, self.format)


def artifact_name(role: str, format_: ArtifactFormat | str) -> str:
    """How a version names one of its artifacts (its registry id is `version/name`)."""
    fast = {kind.value for kind in FAST_FORMATS}
    return f"{role}.{format_}" if str(format_) in fast else role


def dump(role: str, model: object) -> Artifact:
    """Serialise a fitted model in its canonical form; an XGBoost booster or a scikit-learn
    estimator."""
    import skops.io as sio
    import xgboost as xgb
    from sklearn.base import BaseEstimator

    if isinstance(model, xgb.Booster):
        return Artifact(role, ArtifactFormat.XGBOOST_UBJ, bytes(model.save_raw(raw_format="ubj")))
    if isinstance(model, BaseEstimator):
        return Artifact(role, ArtifactFormat.SKOPS, sio.dumps(model))
    raise ArtifactIntegrityError(f"cannot store a {type(model).__name__} as an artifact")


def dump_all(role: str, model: object) -> list[Artifact]:
    """Every form a fitted model is stored in: its canonical form, then its tree arrays for a
    scikit-learn forest."""
    from schemas import forests

    stored = [dump(role, model)]
    if stored[0].format is ArtifactFormat.SKOPS:
        fast = forests.encode(model)
        if fast is not None:
            stored.append(Artifact(role, ArtifactFormat.TREE_ARRAYS, fast))
    return stored


def verify(content: bytes, expected_sha256: str) -> None:
    """Raise unless `content` hashes to `expected_sha256`."""
    actual = sha256_of(content)
    if actual != expected_sha256.strip().lower():
        raise ArtifactIntegrityError(
            f"artifact digest mismatch: stored {expected_sha256.strip()}, computed {actual}"
        )


def load(format_: ArtifactFormat | str, content: bytes, expected_sha256: str) -> object:
    """Verify the digest, then decode the model; untrusted skops content is refused."""
    verify(content, expected_sha256)
    kind = ArtifactFormat(format_)
    if kind is ArtifactFormat.TREE_ARRAYS:
        from schemas.forests import ArrayForest

        return ArrayForest.decode(content)
    if kind is ArtifactFormat.SKOPS:
        import skops.io as sio

        untrusted = set(sio.get_untrusted_types(data=content)) - set(TRUSTED_SKOPS_TYPES)
        if untrusted:
            raise ArtifactIntegrityError(f"artifact holds untrusted types: {sorted(untrusted)}")
        return sio.loads(content, trusted=list(TRUSTED_SKOPS_TYPES))
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(content))
    return booster
