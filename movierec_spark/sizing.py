"""How many pieces -- partitions, ALS blocks -- to cut work over a known number of ratings into.

Spark runs one task per partition and stage, and ALS one per block and
stage. On a small release every piece beyond one per core is per-task
overhead (scheduling, a task binary, shuffle files); on a large one more
pieces bound what each task holds and keep every core busy. One rule
serves both: one piece per ``per_piece`` ratings, at least one per core,
at most ``most``.

No Spark here: the callers pass a row count they already have (an ingest
report's, a ``count`` they needed anyway) and the session's default
parallelism.
"""

from __future__ import annotations


def pieces(rows: int, per_piece: int, parallelism: int, most: int | None = None) -> int:
    """``ceil(rows / per_piece)``, at least ``parallelism`` and 1, at most ``most`` (None: no cap).

    >>> pieces(80_000, 2_000_000, 2, 10), pieces(20_000_076, 2_000_000, 2, 10), pieces(2_500_000, 1_000_000, 2)
    (2, 10, 3)
    """
    for name, value in (("rows", rows), ("parallelism", parallelism)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number of 0 or more, got {value!r}")
    for name, value in (("per_piece", per_piece), ("most", 1 if most is None else most)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of 1 or more, got {value!r}")
    wanted = max(parallelism, -(-rows // per_piece), 1)
    return wanted if most is None else min(wanted, most)
