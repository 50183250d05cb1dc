"""Recommendations for people who are not in the release, on Spark.

:class:`CustomRecommender` holds a fitted model (Spark tables) and its
catalog, matches typed titles, checks custom ratings, folds new users in
(or refits with them), and builds the top-N and similar-movie tables
(schemas in :mod:`movierec_spark.serving.tables`). ``jobs/train_als.py``
uses it, and ``jobs/recommend.py`` / ``jobs/similar.py`` when they run on
Spark (many people, a remote or older model folder). A person served from
a saved model folder without Spark goes through
:class:`movierec_spark.serving.local.LocalRecommender` instead; both run the
same driver-side functions (title index, fold-in, top-N, similar movies).

Settings come from the ``[recommend]`` config section: ``top_n``,
``min_ratings`` (fewest ratings a recommended or similar movie may have),
``liked_rating`` (lowest rating that counts as liked, for "because you
liked" and the taste match), ``content_weight`` (how much the taste match
adds to the ranking score, see :mod:`movierec_spark.serving.taste`), ``similar_n``
and ``method`` (``foldin`` or ``retrain``, used by ``train_als.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.serving import custom
from movierec_spark.data.catalog import CATALOG_COLUMNS, build_catalog
from movierec_spark.config import load_config
from movierec_spark.serving.custom import CustomRating
from movierec_spark.models.factors import FEATURES, require_factors
from movierec_spark.serving.foldin import fold_in_local
# check_model_dir is imported from here by the jobs and the notebook too.
from movierec_spark.serving.local import MOVIE_TABLE_COLUMNS, PersonalRatings, check_model_dir, title_index  # noqa: F401 - check_model_dir re-exported for the jobs
from movierec_spark.io import read_catalog, read_movie_table, write_catalog, write_movie_table
from movierec_spark.models.recommender import USER_BIAS, RecommenderModel
from movierec_spark.serving.movie_table import MovieTable, collect_movie_table, movie_table_frame
from movierec_spark.serving.tables import similar_table, to_arrow, top_n_table
from movierec_spark.serving.taste import FEATURES as TASTE_FEATURES
from movierec_spark.serving.taste import content_features
from movierec_spark.data.titles import Movie, TitleIndex
from movierec_spark.settings import RecommendSettings  # the [recommend] section, checked
from movierec_spark.serving.topn_all import user_frame

log = logging.getLogger(__name__)

METHOD_FOLDIN = "foldin"
METHOD_RETRAIN = "retrain"


def movies_with_features(catalog: DataFrame) -> DataFrame:
    """The catalog's columns plus each movie's taste features (the movie table's movie side)."""
    return catalog.select(*CATALOG_COLUMNS, content_features().alias(TASTE_FEATURES))


def save_catalog(model: RecommenderModel, catalog: DataFrame, model_dir: str | Path,
                 movies: MovieTable | None = None) -> None:
    """Save ``catalog`` beside the model saved in ``model_dir``, and the model's movie table.

    The movie table (:func:`movierec_spark.serving.movie_table.movie_table_frame`)
    is what :meth:`CustomRecommender.collect_movie_table` would collect; saved
    as one file, a later ``recommend.py`` reads it on the driver instead of
    joining three tables in Spark (bench/NOTES.md, "a saved movie table").
    ``movies``: that table, when this run has collected it already (the
    custom users' recommendations did): written from the driver with the
    Spark plan's types, so the joins do not run a second time.
    """
    write_catalog(catalog, model_dir)
    table = movie_table_frame(model, movies_with_features(catalog))
    write_movie_table(table if movies is None else to_arrow(movies.frame, table.schema), model_dir)


@dataclass
class CustomRecommender(PersonalRatings):
    """A fitted model plus its catalog, ready for people's own ratings."""

    spark: SparkSession
    model: RecommenderModel
    catalog: DataFrame  # movie_id, title, year, genres, num_ratings
    settings: RecommendSettings = field(default_factory=RecommendSettings)
    _index: TitleIndex | None = field(default=None, repr=False)
    _movies: MovieTable | None = field(default=None, repr=False)
    # The folder the model was loaded from: its saved movie table, if any, is read from there.
    model_dir: Path | None = None

    @classmethod
    def load(cls, spark: SparkSession, model_dir: str | Path, settings: RecommendSettings | None = None,
             data_cfg: Mapping[str, Any] | None = None) -> "CustomRecommender":
        """Load a model saved by ``train_als.py`` and the catalog saved beside it.

        A model folder without ``catalog/`` gets the catalog rebuilt from the
        release that ``data_cfg`` (the ``[data]`` config section) names.
        ``settings`` default to ``conf/movierec.toml``'s ``[recommend]``.
        The model's ALS factors are read as tables, not as an ``ALSModel``
        (``factors_only=True``: everything here reads only the tables), so
        loading runs no Spark job; nor does :meth:`collect_movie_table` when
        the folder holds the movie table :func:`save_catalog` writes.
        """
        if settings is None:
            settings = RecommendSettings.from_config(load_config().get("recommend", {}))
        model = RecommenderModel.load(spark, model_dir, factors_only=True)
        catalog = read_catalog(spark, model_dir)
        if catalog is None:
            if data_cfg is None:
                raise MovieRecError(
                    f"{model_dir} has no catalog/ (movies and rating counts); retrain with "
                    "jobs/train_als.py or name the release with the data flags"
                )
            from movierec_spark.data.load import load_data

            log.warning("%s has no catalog/: rebuilding it from the release in the data flags", model_dir)
            data = load_data(spark, dict(data_cfg))
            catalog = build_catalog(data.movies, data.ratings)
        return cls(spark, model, catalog.cache(), settings, model_dir=Path(model_dir))

    # --- movies ---

    @property
    def index(self) -> TitleIndex:
        """Title look-ups over the catalog (collected once: id, title, year, count).

        Built from the movie table when :meth:`collect_movie_table` already
        ran (it holds the same columns), so a job that collects that first
        pays for one Spark action, not two.
        """
        if self._index is None:
            if self._movies is not None:
                self._index = title_index(self._movies)
            else:
                self._index = TitleIndex.from_frame(self.catalog)
        return self._index

    # --- custom ratings (search, find_movie, read_ratings, ratings_from_pairs, ratings_frame: PersonalRatings) ---

    def custom_frame(self, ratings: Sequence[CustomRating], first_user_id: int | None = None) -> DataFrame:
        """:meth:`ratings_frame`'s rows as a Spark DataFrame."""
        first = self.next_user_id() if first_user_id is None else first_user_id
        return custom.custom_ratings_frame(self.spark, ratings, first)

    # --- recommendations ---

    def collect_movie_table(self, model: RecommenderModel | None = None) -> MovieTable:
        """The catalog with taste features, item bias and factors of ``model``, collected (one Spark action).

        ``model`` defaults to this recommender's; its table is collected once
        and kept, or read from the model folder's saved copy when it has one
        (no Spark job). Fold-in, top-N and similar movies all run on it.
        """
        if model is not None and model is not self.model:
            return collect_movie_table(model, movies_with_features(self.catalog))
        if self._movies is None:
            saved = None
            if self.model_dir is not None:
                saved = read_movie_table(self.model_dir, MOVIE_TABLE_COLUMNS)
            if saved is not None:
                self._movies = MovieTable.from_frame(saved)
            else:
                self._movies = collect_movie_table(self.model, movies_with_features(self.catalog))
        return self._movies

    def fold_in(self, ratings: pd.DataFrame, movies: MovieTable) -> pd.DataFrame:
        """The custom users' ``user_id, user_bias, features``, folded into the model on the driver.

        ``ratings`` from :meth:`ratings_frame`, ``movies`` from
        :meth:`collect_movie_table`; see :func:`movierec_spark.serving.foldin.fold_in_local`.
        """
        return fold_in_local(self.model, movies, ratings)

    def collect_user_terms(self, model: RecommenderModel, custom_df: DataFrame) -> pd.DataFrame:
        """``user_id, user_bias, features`` of the custom users in ``model`` (a refit with them), collected."""
        users = user_frame(model, custom_df.select(C.USER_ID), custom_df.select(C.USER_ID, C.MOVIE_ID))
        return users.select(C.USER_ID, USER_BIAS, FEATURES).toPandas()

    def top_n(self, ratings: pd.DataFrame, users: pd.DataFrame, movies: MovieTable, n: int | None = None,
              min_ratings: int | None = None, content_weight: float | None = None,
              model: RecommenderModel | None = None) -> pd.DataFrame:
        """The top-N table of the custom users (:func:`movierec_spark.serving.tables.top_n_table`), on the driver.

        ``users`` from :meth:`fold_in` (or :meth:`collect_user_terms` for a
        refit ``model``), ``movies`` from :meth:`collect_movie_table` of the
        same model. ``n``, ``min_ratings`` and ``content_weight`` default to
        the settings.
        """
        return top_n_table(
            model or self.model,
            movies,
            ratings,
            users,
            n or self.settings.top_n,
            self.settings.min_ratings if min_ratings is None else min_ratings,
            self.settings.liked_rating,
            self.settings.content_weight if content_weight is None else content_weight,
            genres=self.settings.genres,
        )

    def retrained(self, custom_df: DataFrame, refit: Callable[[DataFrame], RecommenderModel],
                  training: DataFrame) -> RecommenderModel:
        """The exact alternative to fold-in: refit on ``training`` plus the custom ratings."""
        # Training timestamps are kept (a model with a user-day bias needs
        # them); the custom ratings have none.
        timestamp = [C.TIMESTAMP] if C.TIMESTAMP in training.columns else []
        combined = training.select(C.USER_ID, C.MOVIE_ID, C.RATING, *timestamp).unionByName(
            custom_df.select(
                C.USER_ID,
                C.MOVIE_ID,
                F.col(C.RATING).cast(training.schema[C.RATING].dataType),
                *[F.lit(None).cast(training.schema[c].dataType).alias(c) for c in timestamp],
            )
        )
        return refit(combined)

    def similar(self, movie: str | int, movies: MovieTable, n: int | None = None,
                min_ratings: int | None = None) -> tuple[Movie, pd.DataFrame]:
        """``(the movie, its most similar movies)`` by cosine of item factors.

        ``movies`` from :meth:`collect_movie_table`; a model without factors is a MovieRecError.
        """
        found = self.find_movie(movie)
        require_factors(self.model)
        table = similar_table(
            movies,
            found.movie_id,
            n or self.settings.similar_n,
            self.settings.min_ratings if min_ratings is None else min_ratings,
        )
        return found, table
