"""Top-N recommendations: each user's best-scored movies they have not rated.

Input: a model (anything with ``predict(pairs, score_col=None)`` as
:class:`movierec_spark.models.recommender.RecommenderModel` has), ``users`` (``user_id``),
``candidates`` (``movie_id``) and ``seen`` (``user_id``, ``movie_id``: pairs
never to recommend). Output of :func:`top_n_unseen`::

    user_id int, rank int (1 = best), movie_id int, prediction double

at most ``n`` rows per user, ranked by the model's unclipped score
descending, ties broken by ``movie_id`` ascending, so the same model and
inputs always give the same table.
"""

from __future__ import annotations

from typing import Protocol

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from movierec_spark import columns as C

_SCORE = "_rank_score"


class Scorer(Protocol):
    """What :func:`top_n_unseen` needs of a model."""

    def predict(self, pairs: DataFrame, score_col: str | None = None) -> DataFrame:
        """``pairs`` plus ``prediction`` (and the unclipped score in ``score_col``)."""
        ...


def candidate_pairs(users: DataFrame, candidates: DataFrame, seen: DataFrame) -> DataFrame:
    """Every (user, candidate movie) pair the user has not rated."""
    return (
        users.select(C.USER_ID)
        .distinct()
        .crossJoin(candidates.select(C.MOVIE_ID).distinct())
        .join(seen.select(C.USER_ID, C.MOVIE_ID), on=[C.USER_ID, C.MOVIE_ID], how="left_anti")
    )


def rank_top_n(scored: DataFrame, n: int, score_col: str = C.PREDICTION) -> DataFrame:
    """Keep each user's ``n`` best rows of ``scored`` with a 1-based ``rank``.

    Ordered by ``score_col`` descending then ``movie_id`` ascending.
    """
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    order = Window.partitionBy(C.USER_ID).orderBy(F.col(score_col).desc_nulls_last(), F.col(C.MOVIE_ID).asc())
    return scored.withColumn(C.RANK, F.row_number().over(order)).filter(F.col(C.RANK) <= n)


def top_n_unseen(
    model: Scorer, users: DataFrame, candidates: DataFrame, seen: DataFrame, n: int
) -> DataFrame:
    """Each user's ``n`` best-scored candidate movies they have not seen.

    Returns ``user_id, rank, movie_id, prediction``. Users with fewer than
    ``n`` unseen candidates get fewer rows; a user absent from the model
    still gets the model's cold-start fallback ranking.
    """
    scored = model.predict(candidate_pairs(users, candidates, seen), score_col=_SCORE)
    return rank_top_n(scored, n, _SCORE).select(
        F.col(C.USER_ID), F.col(C.RANK).cast("int"), F.col(C.MOVIE_ID), F.col(C.PREDICTION).cast("double")
    )


