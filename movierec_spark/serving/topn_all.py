"""Top-N for every user without a users x movies cross join: blocked factor products.

Input: a fitted :class:`movierec_spark.models.recommender.RecommenderModel` (damped
biases, optional ALS factors; explicit or implicit), ``seen`` (``user_id``,
``movie_id``: pairs never to recommend, normally the training ratings) and
optionally ``users`` (``user_id``) and ``candidates`` (``movie_id``).
Output of :func:`top_n_all_users`, the same table as
:func:`movierec_spark.serving.recommend.top_n_unseen`::

    user_id int, rank int (1 = best), movie_id int, prediction double

at most ``n`` rows per user, ranked by the unclipped score descending, ties
broken by ``movie_id`` ascending.

Why not the cross join: ml-25m has 162,541 users x 59,047 movies, 9.6
billion pairs; building them as rows, joining the seen ones away and ranking
them with a window shuffles hundreds of gigabytes. Scoring is a matrix
product instead. For a recommendation (no timestamp, so no day bias) a
model scores ``mean + b_u + b_i + p_u . q_i``; within one user ``mean + b_u``
is a constant, so the ranking only needs ``[p_u, 1] . [q_i, b_i]``. The
candidates' augmented factors ``[q_i, b_i]`` (59k x 11 doubles: 5 MB) go to
every task with the function; the users stream through ``mapInArrow`` in
blocks of ``block_size`` with the list of movies each has seen, and each
block is one BLAS product (``block_size`` x movies, in single precision), a
mask of the seen movies and an exact top-k per row that computes in double
precision and sorts only the entries above a bound (:func:`top_k_products`)
-- the same plan as ``ALSModel.recommendForAllUsers`` (blocks, GEMM,
per-block top-k), plus the biases and the exclusion of seen movies it
lacks. Memory per task: one ``block_size`` x movies matrix of floats (64 x
59k: 15 MB).

:func:`_rank_users` is the one ranking of users against candidate movies:
this module's ``mapInArrow`` function runs it on the executors for every
user (its arrays read straight from the Arrow batches), and
:func:`movierec_spark.serving.tables.top_n_table` on the driver for a few custom
users through :func:`rank_block` (with the taste-match boost).

The Arrow function is a vectorised batch function, not a per-row UDF:
Spark has no built-in column function for a top-k over a matrix product.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from movierec_spark import columns as C
from movierec_spark.columns import FEATURES, USER_BIAS
from movierec_spark.serving.movie_table import MovieTable, collect_movie_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from movierec_spark.models.recommender import RecommenderModel

log = logging.getLogger(__name__)

# Users per block. Each block makes a few passes over its users x movies
# matrix of scores; at ml-25m's 59k movies, 64 users (30 MB of doubles, two
# tasks sharing this machine's 32 MB L3 cache) took 3.4-3.5 CPU s where 256
# (120 MB) took 3.8-4.1 for the same 13,003 users in two processes at once
# (bench/topn_blocks.py, bench/NOTES.md); the ranking is per user, so the
# block size does not change it.
DEFAULT_BLOCK_SIZE = 64


def _output_schema():
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField(C.USER_ID, T.IntegerType(), False),
            T.StructField(C.RANK, T.IntegerType(), False),
            T.StructField(C.MOVIE_ID, T.IntegerType(), False),
            T.StructField(C.PREDICTION, T.DoubleType(), False),
        ]
    )


def __getattr__(name: str):
    # OUTPUT_SCHEMA (the Spark schema of the output) is built on first use:
    # the ranking functions here serve the path without pyspark too.
    if name == "OUTPUT_SCHEMA":
        return _output_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_SEEN = "_seen"


def _with_factors(frame: DataFrame, factors: DataFrame | None, key: str) -> DataFrame:
    """``frame`` plus ``features``: ALS factors (``id, features``) joined on ``key``; null without ALS."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if factors is None:
        return frame.withColumn(FEATURES, F.lit(None).cast(T.ArrayType(T.FloatType())))
    return frame.join(
        factors.select(F.col("id").alias(key), F.col("features").alias(FEATURES)), on=key, how="left"
    )


def user_frame(model: RecommenderModel, users: DataFrame | None, seen: DataFrame) -> DataFrame:
    """``user_id, user_bias, features (array or null), _seen (array of movie_id)`` per user (lazy).

    ``users``: who to rank; None for the users of ``seen``, whose rows are
    then its grouping itself (no second pass over ``seen`` for their ids,
    no join).
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    seen_lists = seen.groupBy(C.USER_ID).agg(F.collect_list(F.col(C.MOVIE_ID)).alias(_SEEN))
    if users is not None:
        seen_lists = users.select(C.USER_ID).distinct().join(seen_lists, on=C.USER_ID, how="left")
    out = seen_lists.join(model.user_bias.select(C.USER_ID, USER_BIAS), on=C.USER_ID, how="left")
    out = _with_factors(out, model.als.userFactors if model.als is not None else None, C.USER_ID)
    return out.select(
        F.col(C.USER_ID).cast("int"),
        F.coalesce(F.col(USER_BIAS).cast("double"), F.lit(0.0)).alias(USER_BIAS),
        F.col(FEATURES),
        F.coalesce(F.col(_SEEN), F.array().cast(T.ArrayType(T.IntegerType()))).alias(_SEEN),
    )


def candidate_matrix(movies: MovieTable) -> tuple[np.ndarray, np.ndarray]:
    """``(movie ids ascending, augmented factors [q_i, b_i] transposed: (rank + 1) x movies)``."""
    matrix = np.concatenate([movies.factors, movies.item_bias[:, None]], axis=1)
    return movies.ids, np.ascontiguousarray(matrix.T)


def _chunk_bound(scores: np.ndarray, k: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """``(maxima, bound)``: each row's maxima over chunks of ``chunk`` columns
    (the last chunk may be shorter) and the ``k``-th largest of them, a lower
    bound of the row's ``k``-th largest entry (-inf when there are no more
    than ``k`` chunks)."""
    n_rows, n_cols = scores.shape
    full = n_cols // chunk
    maxima = [scores[:, : full * chunk].reshape(n_rows, full, chunk).max(axis=2)] if full else []
    if full * chunk < n_cols:
        maxima.append(scores[:, full * chunk :].max(axis=1, keepdims=True))
    maxima = np.concatenate(maxima, axis=1) if len(maxima) > 1 else maxima[0]
    n_chunks = maxima.shape[1]
    if n_chunks <= k:
        return maxima, np.full(n_rows, -np.inf)
    return maxima, np.partition(maxima, n_chunks - k, axis=1)[:, n_chunks - k].astype(np.float64)


def _ranks(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, rank)`` of entries by row, then value descending, then column:
    ``order`` the positions of the first ``k`` of each row, ``rank`` theirs (1-based)."""
    order = np.lexsort((cols, -values, rows))
    rows = rows[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ranks = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)])) + 1
    keep = ranks <= k
    return order[keep], ranks[keep]


def top_k_rows(scores: np.ndarray, n: int, chunk: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``n`` largest finite entries, ordered by value desc then column asc.

    Returns ``(row, column, rank)`` arrays (rank 1-based). ``-inf`` marks an
    entry that must not be chosen; a row with fewer finite entries gets fewer.

    Exact, ties included, without sorting or partitioning whole rows (a
    partial sort of every row cost 0.4 s per 256 x 59k block): the ``n``-th
    largest of a row's chunk maxima (chunks of ``chunk`` columns) is a lower
    bound of its ``n``-th largest entry, since ``n`` chunks each hold an
    entry at least that large. Only the entries at or above the bound -- a
    few per chosen one -- are then sorted.
    """
    n_rows, n_cols = scores.shape
    k = min(n, n_cols)
    empty = np.zeros(0, dtype=np.int64)
    if n_rows == 0 or k == 0:
        return empty, empty, empty
    _, bound = _chunk_bound(scores, k, chunk)
    rows, cols = np.nonzero(scores >= bound[:, None])
    values = scores[rows, cols]
    finite = np.isfinite(values)
    rows, cols, values = rows[finite], cols[finite], values[finite]
    if len(rows) == 0:
        return empty, empty, empty
    order, ranks = _ranks(rows, cols, values, k)
    return rows[order], cols[order], ranks


def position_lookup(item_ids: np.ndarray) -> np.ndarray | None:
    """``lookup[movie id]`` = its column (-1: not a candidate), for ids ascending from 0 up to a few times their count; else None."""
    if len(item_ids) == 0 or item_ids[0] < 0 or item_ids[-1] > 8 * len(item_ids) + 1_000_000:
        return None
    lookup = np.full(int(item_ids[-1]) + 1, -1, dtype=np.int64)
    lookup[item_ids] = np.arange(len(item_ids))
    return lookup


def _seen_positions(rows: np.ndarray, movies: np.ndarray, item_ids: np.ndarray,
                    lookup: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(row, column)`` of every seen ``(row, movie id)`` pair whose movie is a candidate (others are ignored).

    ``lookup``: :func:`position_lookup` of ``item_ids``, one array access per
    pair instead of a binary search (a seventh of a block's ranking at ml-25m).
    """
    if len(movies) == 0 or len(item_ids) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    if lookup is not None:
        pos = np.full(len(movies), -1, dtype=np.int64)
        inside = (movies >= 0) & (movies < len(lookup))
        pos[inside] = lookup[movies[inside]]
        hit = pos >= 0
    else:
        pos = np.minimum(np.searchsorted(item_ids, movies), len(item_ids) - 1)
        hit = item_ids[pos] == movies
    return rows[hit], pos[hit]


# Machine epsilon of float32 (2**-23, twice its unit roundoff).
_EPS32 = float(np.finfo(np.float32).eps)


def single_precision(right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What :func:`top_k_products` derives from ``right``: ``(right as float32, each row's largest |entry|)``.

    For a caller that ranks many blocks against the same ``right``.
    """
    return right.astype(np.float32), np.abs(right).max(axis=1, initial=0.0)


def top_k_products(
    left: np.ndarray,
    right: np.ndarray,
    n: int,
    masked: tuple[np.ndarray, np.ndarray],
    boost: np.ndarray | None = None,
    chunk: int = 128,
    prepared: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``n`` largest entries of ``left @ right (+ boost)``, the ``masked`` ones left out.

    Returns ``(row, column, rank, product)``: rank 1-based, ordered by the
    double-precision value descending then column ascending (what
    :func:`top_k_rows` gives for the dense matrix with ``-inf`` at
    ``masked``), and ``product`` the chosen entries of ``left @ right``
    in double precision (without ``boost``). ``masked``: ``(rows,
    columns)`` never to choose; a row with fewer other entries gets fewer.
    ``prepared``: ``single_precision(right)``, if the caller keeps it.

    Exact, though the dense matrix is only made in single precision (half
    the memory traffic of doubles; the product, the mask and one pass for
    the chunk maxima are the whole cost): the ``n``-th largest of a row's
    chunk maxima bounds its ``n``-th entry from below (see
    :func:`top_k_rows`), lowered by twice a bound on the float32 rounding
    error; only the chunks whose maximum reaches that are looked at again,
    and their entries above it are computed in double precision and sorted.
    """
    n_rows, depth = left.shape
    n_cols = right.shape[1]
    k = min(n, n_cols)
    empty = np.zeros(0, dtype=np.int64)
    if n_rows == 0 or k == 0:
        return empty, empty, empty, np.zeros(0)
    right32, right_max = prepared if prepared is not None else single_precision(right)
    approx = left.astype(np.float32) @ right32
    # |float32 result - exact| <= (depth + 2) u sum_j |left_j right_j| for any
    # summation order (u = eps / 2; the inputs, the products and the sums are
    # rounded); eps (depth + 4) bounds it with room to spare, per row.
    err = _EPS32 * (depth + 4) * (np.abs(left) @ right_max)
    if boost is not None:
        approx += boost.astype(np.float32)
        err += 4 * _EPS32 * np.abs(boost).max(axis=1, initial=0.0)
    approx[masked[0], masked[1]] = -np.inf
    maxima, bound = _chunk_bound(approx, k, chunk)
    bound = bound - 2 * err
    chunk_rows, chunk_ids = np.nonzero(maxima >= bound[:, None])
    cols = (chunk_ids[:, None] * chunk + np.arange(chunk)).ravel()
    rows = np.repeat(chunk_rows, chunk)
    inside = cols < n_cols
    rows, cols = rows[inside], cols[inside]
    values = approx[rows, cols]
    near = np.isfinite(values) & (values >= bound[rows])
    rows, cols = rows[near], cols[near]
    if len(rows) == 0:
        return empty, empty, empty, np.zeros(0)
    product = np.einsum("ij,ji->i", left[rows], right[:, cols])
    order, ranks = _ranks(rows, cols, product if boost is None else product + boost[rows, cols], k)
    return rows[order], cols[order], ranks, product[order]


def _rank_users(user_bias, user_aug, seen_rows, seen_movies, item_ids, item_t, n, global_mean, clip,
                boost=None, prepared=None, lookup=None):
    """:func:`rank_block` on arrays: ``user_aug`` the users' ``[p_u, 1]`` rows, seen pairs as two flat arrays."""
    masked = _seen_positions(seen_rows, seen_movies, item_ids, lookup)
    rows, cols, ranks, scores = top_k_products(user_aug, item_t, n, masked, boost, prepared=prepared)
    prediction = global_mean + user_bias[rows] + scores
    if clip is not None:
        prediction = np.clip(prediction, clip[0], clip[1])
    return rows, cols, ranks, prediction


def rank_block(user_bias: np.ndarray, user_factors, seen, item_ids: np.ndarray, item_t: np.ndarray, n: int,
               global_mean: float, clip, boost: np.ndarray | None = None, prepared=None):
    """Each user's ``n`` best unseen candidates: ``(row, column, rank, prediction)`` arrays.

    One row per user: ``user_bias``, ``user_factors`` (a vector, or None for
    a user without factors: ranked by movie bias) and ``seen`` (movie ids
    never to recommend); one column per candidate (:func:`candidate_matrix`).
    The ranking score is ``[p_u, 1] . [q_i, b_i]`` (the constant
    ``mean + b_u`` left out) plus ``boost`` (users x candidates, e.g. the
    taste match, :mod:`movierec_spark.serving.taste`) when given; ties go to the
    smaller movie id. ``prediction`` is ``mean + b_u + b_i + p_u . q_i``,
    clipped to ``clip`` (``(low, high)`` or None). ``prepared``:
    :func:`single_precision` of ``item_t``, for a caller that keeps it.
    """
    rank = item_t.shape[0] - 1
    user_aug = np.zeros((len(user_bias), rank + 1), dtype=np.float64)
    user_aug[:, rank] = 1.0  # picks up the movie bias
    if rank:
        for row, vector in enumerate(user_factors):
            if vector is not None:  # a user without factors ranks by movie bias
                user_aug[row, :rank] = vector
    lists = [np.zeros(0, dtype=np.int64) if s is None else np.asarray(s, dtype=np.int64) for s in seen]
    seen_rows = np.repeat(np.arange(len(lists)), [len(s) for s in lists])
    seen_movies = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    return _rank_users(np.asarray(user_bias, dtype=np.float64), user_aug, seen_rows, seen_movies,
                       item_ids, item_t, n, global_mean, clip, boost, prepared)


def _block_arrays(block, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(user_bias, user_aug, seen_rows, seen_movies)`` of a block of :func:`user_frame` rows (an Arrow record batch).

    Vectorised: the factor lists (all ``rank`` long, null for a user without
    factors) and the seen lists are read from their flat Arrow buffers.
    """
    import pyarrow.compute as pc

    n_users = block.num_rows
    user_bias = block.column(USER_BIAS).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    user_aug = np.zeros((n_users, rank + 1), dtype=np.float64)
    user_aug[:, rank] = 1.0  # picks up the movie bias; a user without factors ranks by it
    if rank:
        features = block.column(FEATURES)
        has = features.is_valid().to_numpy(zero_copy_only=False)
        flat = features.flatten().to_numpy(zero_copy_only=False)
        if len(flat) != rank * int(has.sum()):
            raise ValueError(f"user factors must all have {rank} values, as the movies' have")
        user_aug[has, :rank] = flat.reshape(-1, rank)
    seen = block.column(_SEEN)
    lengths = pc.list_value_length(seen).fill_null(0).to_numpy(zero_copy_only=False)
    seen_rows = np.repeat(np.arange(n_users), lengths)
    seen_movies = seen.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return user_bias, user_aug, seen_rows, seen_movies


def _score_blocks(item_ids: np.ndarray, item_t: np.ndarray, global_mean: float, clip, n: int, block_size: int):
    """The ``mapInArrow`` function: top-N rows for each block of users (Arrow record batches in and out)."""
    import pyarrow as pa

    prepared = single_precision(item_t)
    lookup = position_lookup(item_ids)
    rank = item_t.shape[0] - 1
    schema = pa.schema([
        pa.field(C.USER_ID, pa.int32(), False), pa.field(C.RANK, pa.int32(), False),
        pa.field(C.MOVIE_ID, pa.int32(), False), pa.field(C.PREDICTION, pa.float64(), False),
    ])  # fmt: skip

    def block_top_n(block) -> "pa.RecordBatch":
        users = block.column(C.USER_ID).to_numpy(zero_copy_only=False)
        user_bias, user_aug, seen_rows, seen_movies = _block_arrays(block, rank)
        rows, cols, ranks, prediction = _rank_users(
            user_bias, user_aug, seen_rows, seen_movies, item_ids, item_t, n, global_mean, clip,
            prepared=prepared, lookup=lookup,
        )
        return pa.RecordBatch.from_arrays(
            [
                pa.array(users[rows].astype(np.int32)),
                pa.array(ranks.astype(np.int32)),
                pa.array(item_ids[cols].astype(np.int32)),
                pa.array(prediction.astype(np.float64)),
            ],
            schema=schema,
        )

    def run(batches):
        for batch in batches:
            for start in range(0, batch.num_rows, block_size):
                yield block_top_n(batch.slice(start, block_size))

    return run


def top_n_all_users(
    model: RecommenderModel,
    seen: DataFrame,
    n: int,
    *,
    users: DataFrame | None = None,
    candidates: DataFrame | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    on_driver: bool = False,
) -> DataFrame:
    """Each user's ``n`` best-scored candidate movies they have not seen, without a cross join.

    ``users`` defaults to the users of ``seen``; ``candidates`` to the
    movies the model knows (its movie biases, else its item factors). The
    result equals ``recommend.top_n_unseen(model, users, candidates, seen,
    n)`` (up to float rounding of the score). Collects the candidates'
    factors to the driver (one small action) and returns a lazy frame.

    ``on_driver=True`` collects the users' rows too (their biases, factors
    and seen movies: about as many numbers as ``seen`` has rows) and ranks
    them in this process with the same block function, returning the result
    as a local DataFrame: for small data, where starting the executors'
    Python workers for ``mapInArrow`` (seconds) costs more than the ranking
    (ml-latest-small: 610 users x 9,000 movies, a tenth of a second).

    >>> top = top_n_all_users(model, train, 10)          # doctest: +SKIP
    >>> io.write_table(top, out / "top_n_all")            # doctest: +SKIP
    """
    from pyspark.sql import functions as F

    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    if block_size < 1:
        raise ValueError(f"block_size must be 1 or more, got {block_size}")
    if candidates is None:
        candidates = model.item_bias.select(C.MOVIE_ID)
        if model.als is not None:
            candidates = candidates.unionByName(model.als.itemFactors.select(F.col("id").alias(C.MOVIE_ID)))
    movies = collect_movie_table(model, candidates.select(F.col(C.MOVIE_ID).cast("int")).distinct())
    item_ids, item_t = candidate_matrix(movies)
    log.info("top-%d for every user over %d candidate movies, %d users per block", n, len(item_ids), block_size)
    clip = (float(model.scale.low), float(model.scale.high)) if model.clips else None
    scorer = _score_blocks(item_ids, item_t, float(model.global_mean), clip, n, block_size)
    frame = user_frame(model, users, seen)
    if not on_driver:
        return frame.mapInArrow(scorer, _output_schema())
    blocks = list(scorer(frame.toArrow().to_batches()))
    spark = seen.sparkSession
    if not blocks:
        return spark.createDataFrame([], _output_schema())
    import pyarrow as pa

    return spark.createDataFrame(pa.Table.from_batches(blocks).to_pandas(), _output_schema())
