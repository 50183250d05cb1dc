"""movierec_spark.sizing: pieces of work sized to a row count."""

from __future__ import annotations

import pytest

from movierec_spark.sizing import pieces


@pytest.mark.parametrize("rows, per_piece, parallelism, most, expected", [
    (80_000, 2_000_000, 2, 10, 2),  # small: one per core
    (0, 2_000_000, 2, 10, 2),
    (0, 10, 0, None, 1),  # never 0
    (9_000_001, 2_000_000, 2, 10, 5),  # rounded up
    (20_000_076, 2_000_000, 2, 10, 10),
    (50_000_000, 2_000_000, 2, 10, 10),  # capped
    (50_000_000, 2_000_000, 2, None, 25),
    (80_000, 2_000_000, 16, 10, 10),  # many cores, capped
])
def test_pieces_follow_the_rows(rows, per_piece, parallelism, most, expected):
    assert pieces(rows, per_piece, parallelism, most) == expected


@pytest.mark.parametrize("kwargs", [
    {"rows": -1}, {"rows": 1.5}, {"per_piece": 0}, {"parallelism": -2}, {"most": 0}, {"rows": True},
])
def test_bad_arguments_are_refused(kwargs):
    args = {"rows": 10, "per_piece": 5, "parallelism": 2, "most": 3, **kwargs}
    with pytest.raises(ValueError):
        pieces(**args)
