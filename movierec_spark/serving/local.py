"""A person's recommendations at once: a saved model served without Spark.

:class:`LocalRecommender` loads a model folder that ``jobs/train_als.py``
wrote (``OUTPUT/model``) with pyarrow and numpy only: ``metadata.json``
(global mean, scale, the fold-in's objective, the largest user id) and
``movie_table/`` (per movie: catalog columns, rating count, taste features,
item bias, item factors; :func:`movierec_spark.serving.personal.save_catalog`
writes it). For a person's ratings it matches titles, folds them in,
ranks the unseen movies and explains them with the same functions the
Spark jobs call (:func:`movierec_spark.serving.foldin.fold_in_local`,
:func:`movierec_spark.serving.tables.top_n_table`,
:func:`movierec_spark.serving.tables.similar_table`), so both give the same
tables. It imports no pyspark and starts no JVM: the notebook, the
``movierec-recommend`` command and ``jobs/recommend.py`` / ``jobs/similar.py``
for a few people use it; a file of thousands of people still folds in on
Spark (``jobs/recommend.py`` decides, :func:`serves_locally`).

>>> rec = LocalRecommender.load("output/train_als/model")          # doctest: +SKIP
>>> mine = rec.ratings_from_pairs("me", [("The Matrix", 5), ("Heat", 2)])  # doctest: +SKIP
>>> rec.recommend(mine)                                              # doctest: +SKIP

Needs a model folder with ``movie_table/`` (every model ``train_als.py``
saves since the movie table exists); an older one is refused with the
command that rebuilds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.columns import FEATURES, ITEM_BIAS
from movierec_spark.data.catalog import CATALOG_COLUMNS
from movierec_spark.data.titles import Movie, TitleIndex
from movierec_spark.models.factors import require_factors
from movierec_spark.models.saved import SavedModel
from movierec_spark.serving import custom
from movierec_spark.serving.custom import CustomRating
from movierec_spark.serving.foldin import FoldInSettings, fold_in_local
from movierec_spark.serving.movie_table import MovieTable
from movierec_spark.serving.tables import similar_table, top_n_table
from movierec_spark.serving.taste import FEATURES as TASTE_FEATURES
from movierec_spark.settings import RecommendSettings

log = logging.getLogger(__name__)

MOVIE_TABLE_COLUMNS = (*CATALOG_COLUMNS, TASTE_FEATURES, ITEM_BIAS)
# More people than this in one ratings file fold in on Spark (jobs/recommend.py).
LOCAL_MAX_USERS = 1000


def check_model_dir(path: str | Path | None) -> Path:
    """The model folder, refused (before any work) if it holds no saved model."""
    if not path:
        raise MovieRecError("no model: pass --model DIR (train_als.py writes one to OUTPUT/model)")
    folder = Path(path).expanduser()
    if not (folder / "metadata.json").is_file():
        raise MovieRecError(
            f"{folder} is not a saved model (no metadata.json); train one with "
            "./spark-submit.sh jobs/train_als.py --output DIR and pass --model DIR/model"
        )
    return folder


def title_index(movies: MovieTable) -> TitleIndex:
    """Title look-ups over a movie table (id, title, year, rating count)."""
    frame = movies.frame
    return TitleIndex.from_rows(zip(
        frame[C.MOVIE_ID], frame[C.TITLE],
        [None if pd.isna(y) else int(y) for y in frame[C.YEAR]], frame[C.NUM_RATINGS],
    ))


def find_movie(index: TitleIndex, movie: str | int) -> Movie:
    """A movie by id or by title; an unknown or ambiguous one is a MovieRecError."""
    text = str(movie).strip()
    if text.isdigit():
        found = index.movies.get(int(text))
        if found is None:
            raise MovieRecError(f"movie id {text} is not in the catalog")
        return found
    match = index.match(text)
    if match.movie is None:
        raise MovieRecError(match.describe())
    return match.movie


def read_item_gram(model_dir: str | Path) -> np.ndarray:
    """``Y'Y`` over every item factor of the saved ALS model (an implicit fold-in needs it), with pyarrow."""
    import pyarrow.parquet as pq

    table = pq.read_table(str(Path(model_dir) / "als" / "itemFactors"), columns=[FEATURES])
    vectors = table.column(FEATURES).combine_chunks()
    flat = vectors.flatten().to_numpy(zero_copy_only=False).astype(np.float64)
    matrix = flat.reshape(len(vectors), -1) if len(vectors) else np.zeros((0, 0))
    return matrix.T @ matrix


def read_movies(model_dir: str | Path) -> MovieTable:
    """The model folder's ``movie_table/`` as a :class:`MovieTable`; a folder without one is a MovieRecError."""
    from movierec_spark import io

    frame = io.read_movie_table(model_dir, MOVIE_TABLE_COLUMNS)
    if frame is None:
        raise MovieRecError(
            f"{model_dir} has no movie_table/ (saved by train_als.py since the movie table exists); "
            "retrain it with ./spark-submit.sh jobs/train_als.py, or use ./spark-submit.sh jobs/recommend.py"
        )
    return MovieTable.from_frame(frame)


def serves_locally(model_dir: str | Path, users: int) -> bool:
    """Whether ``users`` people are served without Spark from ``model_dir``: a local folder with a movie table, and not too many people."""
    return "://" not in str(model_dir) and (Path(model_dir) / "movie_table").is_dir() and users <= LOCAL_MAX_USERS


class PersonalRatings:
    """Titles and a person's ratings, the same for both recommenders (this one and ``personal.CustomRecommender``).

    A subclass provides ``index`` (a :class:`TitleIndex` of the catalog) and
    ``model`` (its ``scale`` and ``max_user_id()``).
    """

    def search(self, text: str, limit: int = 10) -> list[Movie]:
        """Catalog movies whose title words start with the typed words, most rated first."""
        return self.index.search(text, limit)

    def find_movie(self, movie: str | int) -> Movie:
        """A movie by id or by title; an unknown or ambiguous one is a MovieRecError."""
        return find_movie(self.index, movie)

    def read_ratings(self, path: str | Path) -> list[CustomRating]:
        """A custom ratings CSV file, checked and matched (CustomRatingsError lists every problem)."""
        return custom.read_custom_ratings(path, self.index, self.model.scale)

    def ratings_from_pairs(self, user: str, pairs: Iterable[tuple[int | str, float]]) -> list[CustomRating]:
        """Ratings given as ``(movie id or title, rating)`` pairs (the notebook's); none is a CustomRatingsError."""
        return custom.from_pairs(user, pairs, self.index, self.model.scale)

    def next_user_id(self) -> int:
        """The first id above every user the model knows (1 for an empty model; from metadata, no Spark job)."""
        return (self.model.max_user_id() or 0) + 1

    def ratings_frame(self, ratings: Sequence[CustomRating], first_user_id: int | None = None) -> pd.DataFrame:
        """``user, user_id, movie_id, rating`` with ids no training user has (pandas, no Spark)."""
        first = self.next_user_id() if first_user_id is None else first_user_id
        return custom.ratings_table(ratings, first)


@dataclass
class LocalRecommender(PersonalRatings):
    """A saved model's scalars and movie table in this process: title search, fold-in, top-N, similar movies."""

    model: SavedModel  # or a RecommenderModel, whose tables jobs/recommend.py loaded in Spark
    movies: MovieTable
    settings: RecommendSettings = field(default_factory=RecommendSettings)
    gram: np.ndarray | None = field(default=None, repr=False)  # implicit models: Y'Y of the item factors
    _index: TitleIndex | None = field(default=None, repr=False)

    @classmethod
    def load(cls, model_dir: str | Path, settings: RecommendSettings | None = None) -> "LocalRecommender":
        """Read a model folder ``train_als.py`` wrote; ``settings`` default to ``conf/movierec.toml``'s ``[recommend]``."""
        if settings is None:
            from movierec_spark.config import load_config

            settings = RecommendSettings.from_config(load_config().get("recommend", {}))
        model = SavedModel.read(model_dir)
        objective = FoldInSettings.of(model)  # refuses a model that does not record it, before any rating
        movies = read_movies(model_dir)
        gram = read_item_gram(model_dir) if objective.implicit and model.has_factors else None
        return cls(model, movies, settings, gram)

    # --- movies ---

    @property
    def index(self) -> TitleIndex:
        if self._index is None:
            self._index = title_index(self.movies)
        return self._index

    # --- recommendations ---

    def fold_in(self, ratings: pd.DataFrame) -> pd.DataFrame:
        """``user_id, user_bias, features`` of the people in ``ratings`` (:meth:`ratings_frame`)."""
        return fold_in_local(self.model, self.movies, ratings, self.gram)

    def top_n(self, ratings: pd.DataFrame, users: pd.DataFrame, n: int | None = None,
              people: Mapping[int, str] | None = None) -> pd.DataFrame:
        """The top-N table (:func:`movierec_spark.serving.tables.top_n_table`) with the ``[recommend]`` settings."""
        return top_n_table(
            self.model, self.movies, ratings, users, n or self.settings.top_n, self.settings.min_ratings,
            self.settings.liked_rating, self.settings.content_weight, people, self.settings.genres,
        )

    def recommend(self, ratings: Sequence[CustomRating], n: int | None = None, user: str | None = None) -> pd.DataFrame:
        """Fold in, rank and explain: the top-N table of everyone in ``ratings``.

        ``user``: a person to list even with no ratings at all (they get the
        ``popular`` list, as does anyone whose ratings the model cannot use).
        """
        first = self.next_user_id()
        rated = self.ratings_frame(ratings, first)
        people = None
        if user is not None and user not in set(rated[C.USER]):
            people = {first + len(custom.user_ids(ratings, first)): user}
        return self.top_n(rated, self.fold_in(rated), n, people)

    def similar(self, movie: str | int, n: int | None = None, min_ratings: int | None = None) -> tuple[Movie, pd.DataFrame]:
        """``(the movie, its most similar movies)`` by cosine of item factors."""
        found = self.find_movie(movie)
        require_factors(self.model)
        table = similar_table(
            self.movies, found.movie_id, n or self.settings.similar_n,
            self.settings.min_ratings if min_ratings is None else min_ratings,
        )
        return found, table
