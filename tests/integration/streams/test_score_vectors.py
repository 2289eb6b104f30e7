"""Feature vectors stored beside the scores: the binary path must store, bit for bit, what the
array literals of the doubles (`repr`, read by PostgreSQL as real) store, and fail as they fail."""

from __future__ import annotations

import math
import struct
from collections.abc import AsyncIterator

import asyncpg
import numpy as np
import pandas as pd
import pytest

from schemas.base import ModelFamily
from schemas.bundles import ModelBundle, Scores
from streams.scoring_frames import LoadedModel, customer_scores, expense_scores
from streams.store import scores as store


def _literal(row: list[float]) -> str:
    """The array literal the scorer sent before vectors travelled in binary."""

    def real(value: float) -> str:
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)

    return "{" + ",".join(real(v) for v in row) + "}"


def _doubles(rows: int, width: int, seed: int) -> np.ndarray:
    """Doubles over the reals' whole normal range, both signs, with the special values."""
    rng = np.random.default_rng(seed)
    values = rng.choice([-1.0, 1.0], rows * width) * 10.0 ** rng.uniform(-37, 38, rows * width)
    values[::7] = rng.normal(size=len(values[::7]))
    values[::11] = np.round(rng.uniform(0, 100, len(values[::11])))
    special = [0.0, -0.0, np.nan, np.inf, -np.inf, 0.1, 1 / 3, 2.0**-126, 3.4028234663852886e38]
    values[: len(special)] = special
    values[-1] = struct.unpack("<d", struct.pack("<Q", 0xFFF8_0000_0000_0001))[0]  # -NaN
    return values.reshape(rows, width)


@pytest.fixture
async def conn(fresh_database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(fresh_database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _stored(conn: asyncpg.Connection, table: str, key: str) -> dict[str, bytes | None]:
    rows = await conn.fetch(f"SELECT {key}, array_send(features) FROM {table}")
    return {row[0]: row[1] for row in rows}


async def _expected(conn: asyncpg.Connection, matrix: np.ndarray) -> list[bytes]:
    literals = [_literal(row) for row in matrix.tolist()]
    rows = await conn.fetch(
        "SELECT array_send(x::real[]) FROM unnest($1::text[]) WITH ORDINALITY AS u(x, n) "
        "ORDER BY n",
        literals,
    )
    return [row[0] for row in rows]


def _model(family: ModelFamily) -> LoadedModel:
    return LoadedModel(family, "v-1", ModelBundle(family, {}, ("f",), 0.5))


async def test_customer_vectors_are_stored_as_their_literals_were(conn: asyncpg.Connection) -> None:
    rows = 300
    matrix = _doubles(rows, 17, seed=1)
    scored = customer_scores(
        _statements(rows), _model(ModelFamily.DELINQUENCY), Scores(np.zeros(rows), np.zeros(rows))
    )
    assert store._flat_reals(matrix) is not None  # the binary path is the one tested
    await store.store_customer_scores(conn, scored, matrix)
    stored = await _stored(conn, "customer_scores", "statement_id")
    assert [stored[s.statement_id] for s in scored] == await _expected(conn, matrix)


async def test_expense_vectors_are_stored_as_their_literals_were(conn: asyncpg.Connection) -> None:
    rows = 200
    matrix = _doubles(rows, 9, seed=2)
    lines = pd.DataFrame(
        {"expense_id": [f"e-{n}" for n in range(rows)], "sheet_id": ["s-1"] * rows}
    )
    model = _model(ModelFamily.EXPENSE_FRAUD)
    scored = expense_scores(lines, model, Scores(np.zeros(rows), np.zeros(rows, dtype=bool)))
    await store.store_expense_scores(conn, scored, matrix)
    await store.store_expense_scores(conn, expense_scores(lines, None, None, run="r"), None)
    stored = await _stored(conn, "expense_scores", "expense_id || '/' || scoring_run")
    assert [stored[f"{s.expense_id}/live"] for s in scored] == await _expected(conn, matrix)
    assert {stored[f"{s.expense_id}/r"] for s in scored} == {None}


@pytest.mark.parametrize(
    "awkward",
    [
        1 + 2.0**-24,  # halfway between two reals
        -(2.0**100) * (1 + 3 * 2.0**-24),  # halfway, far from 1
        1e-40,  # a subnormal real
        2.0**-149,  # the smallest subnormal real
    ],
)
async def test_values_a_binary_cast_could_read_otherwise_go_as_literals(
    conn: asyncpg.Connection, awkward: float
) -> None:
    matrix = _doubles(20, 5, seed=3)
    matrix[4, 2] = awkward
    assert store._flat_reals(matrix) is None
    scored = customer_scores(
        _statements(20), _model(ModelFamily.DELINQUENCY), Scores(np.zeros(20), np.zeros(20))
    )
    await store.store_customer_scores(conn, scored, matrix)
    stored = await _stored(conn, "customer_scores", "statement_id")
    assert [stored[s.statement_id] for s in scored] == await _expected(conn, matrix)


@pytest.mark.parametrize("refused", [1e-50, -1e-300, 1e39, -3.5e38])
async def test_values_postgresql_refuses_as_real_are_still_refused(
    conn: asyncpg.Connection, refused: float
) -> None:
    matrix = _doubles(3, 4, seed=4)
    matrix[1, 1] = refused
    scored = customer_scores(
        _statements(3), _model(ModelFamily.DELINQUENCY), Scores(np.zeros(3), np.zeros(3))
    )
    with pytest.raises(asyncpg.NumericValueOutOfRangeError):
        await store.store_customer_scores(conn, scored, matrix)


async def test_an_empty_batch_and_empty_vectors(conn: asyncpg.Connection) -> None:
    await store.store_customer_scores(conn, [], np.zeros((0, 3)))
    scored = customer_scores(
        _statements(2), _model(ModelFamily.DELINQUENCY), Scores(np.zeros(2), np.zeros(2))
    )
    await store.store_customer_scores(conn, scored, np.zeros((2, 0)))
    stored = await _stored(conn, "customer_scores", "statement_id")
    assert list(stored.values()) == await _expected(conn, np.zeros((2, 0)))


def _statements(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"statement_id": [f"st-{n}" for n in range(rows)], "customer_id": ["c-1"] * rows}
    )
