"""Movies alike by the model's taste dimensions: cosine similarity of ALS item factors.

Input: item factors (``movie_id``, ``features`` array<float>, from
:func:`movierec_spark.factors.item_factors`).

* :func:`similar_movies`: for each query movie, the ``n`` other candidate
  movies with the highest cosine similarity. Output::

      movie_id int, rank int, similar_movie_id int, similarity double

* :func:`because_you_liked`: for each (user, recommended movie) pair, the
  movie the user rated and liked that is most similar to it. Output::

      user_id int, movie_id int, because_movie_id int, similarity double

Ties are broken by the smaller movie id, so results are deterministic. A
movie whose factors are all zero has no direction and matches nothing.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from movierec_spark import columns as C
from movierec_spark.factors import FEATURES, dot, unit

_UNIT = "_unit"
_OTHER_UNIT = "_other_unit"


def unit_factors(factors: DataFrame) -> DataFrame:
    """``movie_id, _unit``: each movie's factor vector scaled to length 1."""
    return factors.select(C.MOVIE_ID, unit(FEATURES).alias(_UNIT)).filter(F.col(_UNIT).isNotNull())


def similar_movies(factors: DataFrame, queries: DataFrame, candidates: DataFrame, n: int) -> DataFrame:
    """The ``n`` candidates most similar to each query movie (never the movie itself).

    ``queries`` and ``candidates`` hold ``movie_id``; queries are few (they are
    broadcast), candidates may be the whole catalog.
    """
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    units = unit_factors(factors)
    query_units = F.broadcast(units.join(queries.select(C.MOVIE_ID).distinct(), on=C.MOVIE_ID, how="inner"))
    others = units.join(candidates.select(C.MOVIE_ID).distinct(), on=C.MOVIE_ID, how="inner").select(
        F.col(C.MOVIE_ID).alias(C.SIMILAR_MOVIE_ID), F.col(_UNIT).alias(_OTHER_UNIT)
    )
    pairs = query_units.crossJoin(others).filter(F.col(C.MOVIE_ID) != F.col(C.SIMILAR_MOVIE_ID))
    order = Window.partitionBy(C.MOVIE_ID).orderBy(F.col(C.SIMILARITY).desc(), F.col(C.SIMILAR_MOVIE_ID).asc())
    return (
        pairs.select(C.MOVIE_ID, C.SIMILAR_MOVIE_ID, dot(_UNIT, _OTHER_UNIT).alias(C.SIMILARITY))
        .withColumn(C.RANK, F.row_number().over(order))
        .filter(F.col(C.RANK) <= n)
        .select(C.MOVIE_ID, F.col(C.RANK).cast("int"), C.SIMILAR_MOVIE_ID, C.SIMILARITY)
    )


def because_you_liked(recommended: DataFrame, liked: DataFrame, factors: DataFrame) -> DataFrame:
    """For each ``recommended`` (user_id, movie_id), the most similar ``liked`` movie.

    ``liked`` holds (user_id, movie_id) of movies each user rated highly.
    Pairs whose user liked nothing with factors get no row.
    """
    units = unit_factors(factors)
    liked_units = liked.select(C.USER_ID, F.col(C.MOVIE_ID).alias(C.BECAUSE_MOVIE_ID)).join(
        units.withColumnRenamed(C.MOVIE_ID, C.BECAUSE_MOVIE_ID).withColumnRenamed(_UNIT, _OTHER_UNIT),
        on=C.BECAUSE_MOVIE_ID,
        how="inner",
    )
    pairs = (
        recommended.select(C.USER_ID, C.MOVIE_ID)
        .join(units, on=C.MOVIE_ID, how="inner")
        .join(liked_units, on=C.USER_ID, how="inner")
        .filter(F.col(C.MOVIE_ID) != F.col(C.BECAUSE_MOVIE_ID))
    )
    order = Window.partitionBy(C.USER_ID, C.MOVIE_ID).orderBy(
        F.col(C.SIMILARITY).desc(), F.col(C.BECAUSE_MOVIE_ID).asc()
    )
    return (
        pairs.select(C.USER_ID, C.MOVIE_ID, C.BECAUSE_MOVIE_ID, dot(_UNIT, _OTHER_UNIT).alias(C.SIMILARITY))
        .withColumn("_best", F.row_number().over(order))
        .filter(F.col("_best") == 1)
        .drop("_best")
    )
