"""The catalog a saved model recommends from: movies plus how many rated each.

Recommending needs titles, years and genres to show, and per-movie rating
counts to keep obscure movies out of top-N lists; a saved ALS model holds
neither. ``jobs/train_als.py`` therefore saves the catalog beside the model
(``MODEL_DIR/catalog/``, see :func:`movierec_spark.io.write_catalog`), built
from the release's movies and all its ratings (``num_ratings`` is how many
people rated the movie in the release), and ``jobs/recommend.py`` /
``jobs/similar.py`` / the notebook read it from there. A model saved without
one gets it rebuilt from the release named by the data flags.

Input: movies (``movie_id``, ``title``, ``year``, ``genres``) and ratings
(``movie_id``, ...). Output of :func:`build_catalog`::

    movie_id int, title string, year int, genres array<string>, num_ratings int

one row per movie of the movies table; ``num_ratings`` is 0 for movies
nobody rated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from movierec_spark import columns as C

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CATALOG_COLUMNS = (C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.NUM_RATINGS)


def build_catalog(movies: DataFrame, ratings: DataFrame) -> DataFrame:
    """Movies with the number of ``ratings`` each has (0 when none)."""
    from pyspark.sql import functions as F

    counts = ratings.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).cast("int").alias(C.NUM_RATINGS))
    return (
        movies.select(C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES)
        .join(counts, on=C.MOVIE_ID, how="left")
        .withColumn(C.NUM_RATINGS, F.coalesce(F.col(C.NUM_RATINGS), F.lit(0)))
        .select(*CATALOG_COLUMNS)
    )


