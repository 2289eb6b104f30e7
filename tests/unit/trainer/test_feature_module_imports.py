"""schemas/features.py stays importable by any service: pandas and NumPy only."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_import_graph import imported_roots

ROOT = Path(__file__).resolve().parents[3]


def test_features_import_only_pandas_numpy_and_the_standard_library() -> None:
    roots = imported_roots(ROOT / "schemas" / "features.py")
    assert roots <= {"__future__", "collections", "dataclasses", "numpy", "pandas"}, roots


def test_trainer_decision_logic_imports_no_io() -> None:
    for module in ("gate", "versions", "selection", "evaluation", "families"):
        roots = imported_roots(ROOT / "trainer" / f"{module}.py")
        assert not roots & {"asyncpg", "confluent_kafka", "faust", "streams"}, (module, roots)
