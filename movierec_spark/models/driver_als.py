"""Explicit ALS solved in the driver process: MLlib's equations, a compiled kernel, no shuffle.

MLlib's ALS is built for factor matrices too big for one machine: every
half-iteration shuffles factor blocks between its user and item blocks,
which dominates the fit on one machine however it is tuned (timings:
docs/performance.md). At MovieLens sizes the whole problem fits one
process: ml-25m's 20M training ratings are 240 MB as int32 ids and float32
values, its factors 9 MB at rank 10. Solved there by a compiled loop (the
design of single-machine libraries such as LensKit) the same fit runs
without a shuffle.

:func:`fit_explicit` solves the problem ``pyspark.ml.recommendation.ALS``
solves with ``implicitPrefs=False, nonnegative=False``: alternately for every
movie, then every user, the ridge regression

    (Y_u^T Y_u + regParam * n_u * I) x_u = Y_u^T r_u

over the factors Y_u of the n_u movies (users) the row rated, scaled by the
row's rating count as MLlib's ALS-WR does, solved by a Cholesky
factorisation in double precision, rows in parallel on the driver's cores
(numba). The factors start as MLlib's: standard normal vectors scaled to
unit length, the users' first; they come from numpy's generator, not
MLlib's, so a fit is the same model but not bit for bit MLlib's
(tests/test_driver_als.py compares the two on ml-100k).

The ratings reach the driver once, through Arrow (``DataFrame.toArrow``);
the result is a real ``ALSModel`` built from the two factor tables, so
``transform``, ``save`` and ``ALSModel.load`` work as after ``ALS.fit``.

fit.py uses it when ``[als] solver`` is ``"driver"``, or ``"auto"`` with a
local master (``local[*]``: the driver's machine is all the cluster there is,
so nothing is lost by not distributing the fit). On a cluster ``"auto"`` keeps
MLlib's distributed ALS.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from numba import njit, prange
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.data.schemas import ALS_FACTORS
from movierec_spark.session import default_parallelism

log = logging.getLogger(__name__)

# Ids are mapped to rows through a lookup array of max id + 1 entries while
# that stays small next to the ratings (MovieLens ids: below 300,000);
# sparser ids are mapped by sorting instead.
_LOOKUP_SLACK = 1 << 22


# --- compiled kernels (numba; cached on disk after the first compilation) ---


@njit(cache=True)
def _lookup_rows(ids, size):
    """``(unique ids ascending, row of each id)`` for ids in ``[0, size)``, by a presence table."""
    present = np.zeros(size, np.bool_)
    for v in ids:
        present[v] = True
    row_of = np.full(size, -1, np.int32)
    n = 0
    for v in range(size):
        if present[v]:
            row_of[v] = n
            n += 1
    unique = np.empty(n, np.int32)
    rows = np.empty(len(ids), np.int32)
    for v in range(size):
        if present[v]:
            unique[row_of[v]] = v
    for p in range(len(ids)):
        rows[p] = row_of[ids[p]]
    return unique, rows


@njit(cache=True)
def _compressed(rows, cols, values, n_rows):
    """The ratings grouped by row (compressed sparse rows): ``(offsets, cols, values)``.

    A counting sort: row ``i``'s entries are ``offsets[i]:offsets[i + 1]``,
    in input order.
    """
    offsets = np.zeros(n_rows + 1, np.int64)
    for r in rows:
        offsets[r + 1] += 1
    for i in range(n_rows):
        offsets[i + 1] += offsets[i]
    fill = offsets[:-1].copy()
    out_cols = np.empty(len(cols), cols.dtype)
    out_values = np.empty(len(values), values.dtype)
    for p in range(len(rows)):
        r = rows[p]
        q = fill[r]
        out_cols[q] = cols[p]
        out_values[q] = values[p]
        fill[r] = q + 1
    return offsets, out_cols, out_values


@njit(cache=True, parallel=True)
def solve_rows(offsets, cols, values, other, reg_param, out):
    """One half-iteration: ``out[i]`` solves row i's ridge regression on the ``other`` side's factors.

    ``(A + reg_param * n_i * I) x = b`` with ``A = sum y y^T`` and ``b = sum
    r y`` over row i's n_i entries; A's lower triangle is built and factored
    in place (Cholesky). A row without entries gets zeros (MLlib never
    solves one).
    """
    k = other.shape[1]
    for i in prange(len(offsets) - 1):
        start = offsets[i]
        end = offsets[i + 1]
        a = np.zeros((k, k))
        b = np.zeros(k)
        for p in range(start, end):
            j = cols[p]
            r = values[p]
            for x in range(k):
                v = other[j, x]
                b[x] += r * v
                for y in range(x + 1):
                    a[x, y] += v * other[j, y]
        if end == start:
            out[i, :] = 0.0
            continue
        penalty = reg_param * (end - start)
        for x in range(k):
            a[x, x] += penalty
        for x in range(k):  # a = L L^T, L in the lower triangle
            s = a[x, x]
            for z in range(x):
                s -= a[x, z] * a[x, z]
            d = np.sqrt(s)
            a[x, x] = d
            for y in range(x + 1, k):
                t = a[y, x]
                for z in range(x):
                    t -= a[y, z] * a[x, z]
                a[y, x] = t / d
        for x in range(k):  # L w = b
            t = b[x]
            for z in range(x):
                t -= a[x, z] * b[z]
            b[x] = t / a[x, x]
        for x in range(k - 1, -1, -1):  # L^T x = w
            t = b[x]
            for z in range(x + 1, k):
                t -= a[z, x] * b[z]
            b[x] = t / a[x, x]
        for x in range(k):
            out[i, x] = b[x]


# --- numpy side ---


def dense_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique ids ascending, each id's index into them as int32)``."""
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    if len(ids) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    low, high = int(ids.min()), int(ids.max())
    if low >= 0 and high < len(ids) + _LOOKUP_SLACK:
        return _lookup_rows(ids, high + 1)
    unique, rows = np.unique(ids, return_inverse=True)
    return unique.astype(np.int32), rows.astype(np.int32)


def initial_factors(n_rows: int, rank: int, seed: int) -> np.ndarray:
    """Standard normal rows scaled to unit length, as MLlib's ALS starts (its own generator aside)."""
    factors = np.random.default_rng(seed).standard_normal((n_rows, rank))
    factors /= np.linalg.norm(factors, axis=1, keepdims=True)
    return factors


def alternate(
    users: np.ndarray, movies: np.ndarray, ratings: np.ndarray, rank: int, max_iter: int, reg_param: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ALS on rating triples: ``(user ids, user factors, movie ids, movie factors)``, ids ascending.

    Each of ``max_iter`` iterations solves every movie, then every user.
    """
    user_ids, user_rows = dense_rows(users)
    movie_ids, movie_rows = dense_rows(movies)
    values = np.ascontiguousarray(ratings, dtype=np.float32)
    by_user = _compressed(user_rows, movie_rows, values, len(user_ids))
    by_movie = _compressed(movie_rows, user_rows, values, len(movie_ids))
    user_factors = initial_factors(len(user_ids), rank, seed)
    movie_factors = np.zeros((len(movie_ids), rank))
    reg = float(reg_param)
    for iteration in range(max_iter):
        started = time.perf_counter()
        solve_rows(*by_movie, user_factors, reg, movie_factors)
        solve_rows(*by_user, movie_factors, reg, user_factors)
        log.debug("driver ALS iteration %d/%d: %.2f s", iteration + 1, max_iter, time.perf_counter() - started)
    return user_ids, user_factors, movie_ids, movie_factors


# --- Spark side ---


def _factor_table(ids: np.ndarray, factors: np.ndarray):
    """An Arrow table with ALSModel's factor schema (``id int, features array<float>``)."""
    import pyarrow as pa

    rank = factors.shape[1]
    offsets = pa.array(np.arange(0, (len(ids) + 1) * rank, rank, dtype=np.int32))
    features = pa.ListArray.from_arrays(
        offsets,
        pa.array(factors.astype(np.float32).ravel()),
        type=pa.list_(pa.field("element", pa.float32(), nullable=False)),
    )
    return pa.table({"id": pa.array(ids, pa.int32()), "features": features})


def _threads(spark) -> int:
    """Kernel threads: the driver's cores Spark was given (``local[N]``), within numba's pool."""
    import numba

    return max(1, min(numba.config.NUMBA_NUM_THREADS, default_parallelism(spark)))


def fit_explicit(
    ratings: DataFrame, rating_col: str, *, rank: int, max_iter: int, reg_param: float, seed: int
) -> ALSModel:
    """An ``ALSModel`` of ``ratings`` (``user_id, movie_id, rating_col``), fitted in the driver.

    The same model as ``ALS(rank, maxIter, regParam, implicitPrefs=False,
    nonnegative=False).fit`` up to its random start; ``coldStartStrategy``
    is ``"nan"`` as fit.py asks of MLlib's. An empty input or a null value is
    a MovieRecError.
    """
    import numba

    spark = ratings.sparkSession
    started = time.perf_counter()
    log.info("driver ALS: collecting the ratings through Arrow")
    table = ratings.select(
        C.USER_ID, C.MOVIE_ID, ratings[rating_col].cast("float").alias(rating_col)
    ).toArrow()
    for name in table.column_names:
        if table.column(name).null_count:
            raise MovieRecError(f"ALS input column {name} has {table.column(name).null_count} null values")
    if table.num_rows == 0:
        raise MovieRecError("ALS has no ratings to fit; use a smaller test fraction or more data")
    collected = time.perf_counter()
    users, movies, values = (table.column(name).to_numpy() for name in (C.USER_ID, C.MOVIE_ID, rating_col))
    threads = _threads(spark)
    previous_threads = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        user_ids, user_factors, movie_ids, movie_factors = alternate(
            users, movies, values, rank, max_iter, reg_param, seed
        )
    finally:
        numba.set_num_threads(previous_threads)
    solved = time.perf_counter()
    log.info(
        "driver ALS: %d ratings of %d users x %d movies collected in %.1f s, rank %d x %d iterations "
        "solved in %.1f s on %d threads",
        len(values), len(user_ids), len(movie_ids), collected - started, rank, max_iter,
        solved - collected, threads,
    )  # fmt: skip
    user_table = spark.createDataFrame(_factor_table(user_ids, user_factors), schema=ALS_FACTORS)
    item_table = spark.createDataFrame(_factor_table(movie_ids, movie_factors), schema=ALS_FACTORS)
    return als_model(user_table, item_table, rank)


def als_model(user_factors: DataFrame, item_factors: DataFrame, rank: int) -> ALSModel:
    """A pyspark ``ALSModel`` over two factor tables, with fit.py's column names and cold-start strategy.

    ``ALSModel``'s constructor is Spark-internal (``private[ml]`` in Scala,
    public in the bytecode py4j calls); everything else is the public model.
    """
    jvm = user_factors.sparkSession._jvm
    uid = jvm.org.apache.spark.ml.util.Identifiable.randomUID("als")
    java_model = jvm.org.apache.spark.ml.recommendation.ALSModel(uid, rank, user_factors._jdf, item_factors._jdf)
    java_model.setUserCol(C.USER_ID).setItemCol(C.MOVIE_ID).setColdStartStrategy("nan")
    model = ALSModel(java_model)
    model._transfer_params_from_java()
    return model
