"""EASE, a linear item-to-item top-N model.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data")
sees the ratings as interactions (``X[u, i] = 1`` when user ``u`` rated
movie ``i``, whatever the stars) and learns the item-to-item weights ``B``
that best rebuild ``X`` from itself, with no movie allowed to explain
itself::

    B = argmin ||X - X B||^2 + reg_param ||B||^2   with diag(B) = 0
      = -P / diag(P)  (column-wise),  P = (X'X + reg_param I)^-1

A user's score for movie ``j`` is the sum of ``B[i, j]`` over the movies
``i`` they rated. Unlike a neighbourhood model it accounts for movies that
are rated together for the same reason, which makes it one of the strongest
top-N models on MovieLens-sized catalogues.

Two options from Steck 2020 ("Autoencoders that don't overfit towards the
Identity") regularise the way dropping each input with probability
``dropout`` would: the penalty on movie ``i`` grows with its rating count,
``Λ = reg_param I + dropout / (1 - dropout) diagMat(X'X)``, so the most-rated
movies explain less of the others. ``diagonal`` picks the solution:
``zero`` is the constrained one above with ``Λ`` for ``reg_param I``
(EDLAE, full rank); ``free`` is DLAE's ``B = (X'X + Λ)^-1 X'X = I - P Λ``
(``P = (X'X + Λ)^-1``), whose off-diagonal weights ``-P[i, j] Λ[j]`` are
kept and whose diagonal is dropped (a movie's weight on itself only ever
scores a movie the user has seen already). ``dropout = 0`` with ``zero``
is plain EASE.

Where the work happens: Spark sums the Gram matrix ``X'X`` over users
(a dense buffer per partition, summed in a tree); the inverse is a
dense ``M x M`` solve on the driver, so the model covers the ``max_items``
most-rated movies (5000 by default: a 200 MB matrix, seconds to invert) and
gives the others no score. The weights, pruned to each movie's
``neighbours`` largest, go back to Spark as a table, and scoring is a join
of a user's ratings with it.

The weights are scored as :class:`~movierec_spark.models.item_weights.ItemWeightsModel`
scores any item-to-item weights table (RP3beta's too).

Input: ratings ``user_id, movie_id`` (other columns ignored). Scores:
``predict(pairs)`` returns ``pairs`` plus ``prediction`` (the score; not a
rating).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.models.item_weights import SOURCE, WEIGHT, ItemWeightsModel
from movierec_spark.session import default_parallelism
from movierec_spark.settings import EaseSettings, parse_section

log = logging.getLogger(__name__)

EASE = "ease"
_INDEX = "_item_index"
_ROW, _COUNTS = "_row", "_counts"
# Gram rows per Arrow batch a partition sends (20 KB each at 5000 movies).
_GRAM_ROWS_PER_BATCH = 256

# How the weights' diagonal is handled (see the module docstring).
DIAGONAL_ZERO = "zero"  # EASE: constrained to 0 while solving
DIAGONAL_FREE = "free"  # DLAE: solved freely, then dropped
DIAGONALS = (DIAGONAL_ZERO, DIAGONAL_FREE)


_EASE = EaseSettings()


@dataclass(frozen=True)
class EaseParams:
    """``[ease]``: the L2 penalty and dropout, the diagonal, how many movies, how many weights each keeps
    (defaults and ranges: conf/movierec.toml's, held by movierec_spark.settings)."""

    reg_param: float = _EASE.reg_param
    max_items: int = _EASE.max_items
    neighbours: int = _EASE.neighbours
    dropout: float = _EASE.dropout
    diagonal: str = _EASE.diagonal

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "EaseParams":
        keys = ("reg_param", "max_items", "neighbours", "dropout", "diagonal")
        known = {k: section[k] for k in keys if k in section}
        return cls(**known).validate()

    def validate(self) -> "EaseParams":
        parse_section("ease", asdict(self))
        return self


def item_index(ratings: DataFrame, max_items: int) -> list[int]:
    """The ``max_items`` most-rated movies, most rated first (ties: lower id first)."""
    counts = ratings.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).alias("_n"))
    rows = counts.orderBy(F.col("_n").desc(), F.col(C.MOVIE_ID).asc()).limit(max_items).collect()
    return [row[C.MOVIE_ID] for row in rows]


def gram_matrix(ratings: DataFrame, movies: list[int]) -> np.ndarray:
    """``X'X`` over ``movies`` (in that order): co-rating counts, counted by Spark, summed here.

    Each partition adds its users' co-rated pairs into one dense buffer
    (float32, exact for counts below 2^24; 100 MB at 5000 movies) and sends
    its non-zero rows to the driver as Arrow, which adds them up. Partitions
    are coalesced to the number of cores, so there is one buffer per core.
    (DataFrame operations only: the same code runs over Spark Connect.)
    """
    spark = ratings.sparkSession
    size = len(movies)
    index = spark.createDataFrame(
        pd.DataFrame({C.MOVIE_ID: movies, _INDEX: range(size)}).astype({C.MOVIE_ID: "int32", _INDEX: "int32"})
    )
    per_user = (
        ratings.select(C.USER_ID, C.MOVIE_ID)
        .distinct()
        .join(F.broadcast(index), on=C.MOVIE_ID, how="inner")
        .groupBy(C.USER_ID)
        .agg(F.collect_list(_INDEX).alias(_INDEX))
        .select(_INDEX)
    )

    def partial_gram(batches):
        import pyarrow as pa

        gram = np.zeros((size, size), dtype=np.float32)
        for batch in batches:
            lists = batch.column(0)
            offsets, values = lists.offsets.to_numpy(), lists.values.to_numpy().astype(np.int64)
            for start, end in zip(offsets[:-1], offsets[1:]):
                rated = values[start:end]
                gram[np.ix_(rated, rated)] += 1.0
        rows = np.flatnonzero(gram.any(axis=1))
        for chunk in np.array_split(rows, max(1, len(rows) // _GRAM_ROWS_PER_BATCH)):
            if len(chunk):
                # Each row's float32 counts as one binary value: Spark moves bytes, not 5000 floats a row.
                offsets = pa.py_buffer(np.arange(0, (len(chunk) + 1) * size * 4, size * 4, dtype=np.int32))
                counts = pa.Array.from_buffers(pa.binary(), len(chunk), [None, offsets, pa.py_buffer(gram[chunk])])
                yield pa.RecordBatch.from_arrays([pa.array(chunk, pa.int32()), counts], [_ROW, _COUNTS])

    schema = f"{_ROW} int, {_COUNTS} binary"
    table = per_user.coalesce(default_parallelism(spark)).mapInArrow(partial_gram, schema).toArrow()
    gram = np.zeros((size, size), dtype=np.float64)
    for batch in table.to_batches():  # a batch's rows are distinct: one partition's
        if batch.num_rows:
            rows, counts = batch.column(0).to_numpy(), batch.column(1)
            first = int(np.frombuffer(counts.buffers()[1], dtype=np.int32, count=1, offset=counts.offset * 4)[0])
            values = np.frombuffer(counts.buffers()[2], dtype=np.float32, count=len(rows) * size, offset=first)
            gram[rows] += values.reshape(-1, size)
    return gram


def ease_weights(gram: np.ndarray, reg_param: float, dropout: float = 0.0, diagonal: str = DIAGONAL_ZERO) -> np.ndarray:
    """The weights ``B`` from the Gram matrix ``G``, with ``diag(B) = 0``.

    ``P = (G + Λ)^-1``, ``Λ = reg_param I + dropout / (1 - dropout) diagMat(G)``;
    ``zero``: EASE's ``B = -P / diag(P)`` by column; ``free``: DLAE's
    ``B = I - P Λ``, diagonal dropped.
    """
    penalty = reg_param + dropout / (1.0 - dropout) * np.diag(gram).astype(np.float64)
    penalised = np.array(gram, dtype=np.float64, copy=True)
    penalised[np.diag_indices_from(penalised)] += penalty
    precision = np.linalg.inv(penalised)
    if diagonal == DIAGONAL_FREE:
        weights = -precision * penalty[None, :]
    else:
        weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def prune(weights: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``neighbours`` largest weights by size, as ``(row, column, weight)`` arrays.

    Zero weights (the diagonal) are never kept.
    """
    keep = min(neighbours, weights.shape[1])
    size = np.abs(weights)
    if keep < weights.shape[1]:
        columns = np.argpartition(-size, keep - 1, axis=1)[:, :keep]
    else:
        columns = np.tile(np.arange(weights.shape[1]), (weights.shape[0], 1))
    rows = np.repeat(np.arange(weights.shape[0]), columns.shape[1])
    columns = columns.ravel()
    values = weights[rows, columns]
    nonzero = values != 0.0
    return rows[nonzero], columns[nonzero], values[nonzero]


class EaseModel(ItemWeightsModel):
    """EASE weights and the ratings they score (:func:`fit_ease`); ``params``: :class:`EaseParams`."""

    NAME = EASE
    PARAMS = EaseParams


def fit_ease(ratings: DataFrame, params: EaseParams = EaseParams()) -> EaseModel:
    """Fit EASE on ``ratings`` (``user_id, movie_id``; every rating counts as 1)."""
    params.validate()
    movies = item_index(ratings, params.max_items)
    if not movies:
        raise MovieRecError("EASE needs at least one rating to learn from")
    gram = gram_matrix(ratings, movies)
    solved = ease_weights(gram, float(params.reg_param), float(params.dropout), params.diagonal)
    rows, columns, values = prune(solved, params.neighbours)
    ids = np.asarray(movies, dtype=np.int32)
    table = pd.DataFrame({SOURCE: ids[rows], C.MOVIE_ID: ids[columns], WEIGHT: values.astype(np.float64)})
    spark = ratings.sparkSession
    # Checkpointed (written to the checkpoint folder now): the table came from
    # the driver, and every later scan of it would ship it inside a task.
    weights = spark.createDataFrame(table, f"{SOURCE} int, {C.MOVIE_ID} int, {WEIGHT} double").checkpoint()
    log.info("EASE on the %d most-rated movies: %d weights kept", len(movies), len(table))
    return EaseModel(weights=weights, seen=ratings.select(C.USER_ID, C.MOVIE_ID), params=params)
