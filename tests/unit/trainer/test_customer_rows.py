"""Picking the rows of chosen customers answers as Series.isin does, for every string dtype."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.selection import customer_rows

IDS = ["a", "b", "c", "ä", "", "a1"]


@pytest.mark.parametrize("dtype", ["str", object, "string"])
@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.sampled_from([*IDS, None]), max_size=30),
    chosen=st.sets(st.sampled_from(IDS), max_size=4),
)
def test_customer_rows_equal_isin(
    dtype: object, values: list[str | None], chosen: set[str]
) -> None:
    column = pd.Series(values, dtype=dtype)  # type: ignore[call-overload]
    np.testing.assert_array_equal(
        customer_rows(column, chosen), column.isin(chosen).to_numpy(dtype=bool)
    )
