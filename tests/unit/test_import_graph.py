"""The dependency rule holds: schemas depends on nothing of ours or of Kafka/Faust/PostgreSQL."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

FORBIDDEN = {
    "schemas": {
        "streams",
        "trainer",
        "retrainer",
        "faust",
        "mode",
        "confluent_kafka",
        "aiokafka",
        "asyncpg",
    },
    "edge": {"streams", "trainer", "retrainer", "faust", "mode"},
    "streams": {"trainer", "retrainer"},
    # What the worker does and its SQL, drivable without Faust or the HTTP server.
    "streams/services": {"trainer", "retrainer", "faust", "mode", "aiohttp"},
    "streams/store": {"trainer", "retrainer", "faust", "mode", "aiohttp"},
    "trainer": {"streams", "retrainer"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"{package} must not import {sorted(FORBIDDEN[package])}"


def test_the_checker_sees_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import faust.app\nfrom asyncpg import connect\nfrom . import local\n")
    assert imported_roots(module) == {"faust", "asyncpg"}
