"""Movies alike by the model's taste dimensions: cosine similarity of ALS item factors.

Input: a :class:`movierec_spark.serving.movie_table.MovieTable` (the model's item
factors on the driver) and rows of it. :func:`most_similar` returns, for
each query movie, the ``n`` candidate movies with the highest cosine
similarity (never the movie itself) as arrays::

    query (index into the queries), candidate (index into the candidates), rank (1 = best), similarity

It serves both "movies like this one" (:func:`movierec_spark.serving.tables.similar_table`:
one query, the popular movies as candidates) and "because you liked"
(:func:`movierec_spark.serving.tables.top_n_table`: each recommendation a query,
the movies the user liked as candidates, ``n = 1``).

Ties are broken by the smaller movie id (candidates are given in table
order, which is movie id order), so results are deterministic. A movie
whose factors are all zero, or that has none, has no direction and matches
nothing.
"""

from __future__ import annotations

import numpy as np

from movierec_spark.serving.movie_table import MovieTable
from movierec_spark.serving.topn_all import top_k_rows


def unit_factors(movies: MovieTable) -> tuple[np.ndarray, np.ndarray]:
    """``(each movie's factors scaled to length 1, whether it has a direction)``."""
    lengths = np.sqrt((movies.factors * movies.factors).sum(axis=1))
    usable = movies.has_factors & (lengths > 0)
    units = np.zeros_like(movies.factors)
    units[usable] = movies.factors[usable] / lengths[usable, None]
    return units, usable


def most_similar(movies: MovieTable, queries: np.ndarray, candidates: np.ndarray, n: int,
                 units: tuple[np.ndarray, np.ndarray] | None = None):
    """Each query row's ``n`` most cosine-similar candidate rows: ``(query, candidate, rank, similarity)``.

    ``queries`` and ``candidates`` are rows of ``movies``; ``candidates`` in
    ascending order (ties go to the earlier one, the smaller movie id).
    ``units`` (:func:`unit_factors` of ``movies``) may be passed to reuse them.
    """
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    vectors, usable = units if units is not None else unit_factors(movies)
    queries = np.asarray(queries, dtype=np.int64)
    candidates = np.asarray(candidates, dtype=np.int64)
    similarity = vectors[queries] @ vectors[candidates].T
    excluded = ~usable[queries][:, None] | ~usable[candidates][None, :] | (queries[:, None] == candidates[None, :])
    similarity[excluded] = -np.inf
    rows, cols, ranks = top_k_rows(similarity, n)
    return rows, cols, ranks, similarity[rows, cols]
