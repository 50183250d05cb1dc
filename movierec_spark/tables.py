"""Top-N and similar-movie tables for people, as DataFrames, CSV rows and console text.

Inputs: a scorer (a :class:`movierec_spark.model.RecommenderModel`, or a
:class:`movierec_spark.foldin.FoldedInModel` for folded-in users), custom
ratings (``user, user_id, movie_id, rating``), the catalog (``movie_id,
title, year, genres, num_ratings``, see :mod:`movierec_spark.catalog`).

Output of :func:`top_n_table`, ordered by user_id then rank::

    user string, user_id int, rank int, movie_id int, title string, year int,
    genres array<string>, prediction double, num_ratings int, match double,
    because_you_liked string, because_movie_id int, similarity double

``prediction`` is the predicted rating (clipped to the scale). Ranks follow
the unclipped score plus ``content_weight * match``, then the smaller movie
id; ``match`` (0 to 1) says how well the movie's genres and decade fit the
movies the user liked (:mod:`movierec_spark.taste`). Only movies the user
has not rated and with at least ``min_ratings`` ratings are candidates.
``because_you_liked`` is the user's rated movie with ``rating >=
liked_rating`` whose item factors are most cosine-similar to the
recommendation (``similarity``); null when the user liked nothing the model
has factors for, or the model has none.

Output of :func:`similar_table`, ordered by query movie then rank::

    movie_id int, rank int, similar_movie_id int, title string, year int,
    genres array<string>, num_ratings int, similarity double
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from movierec_spark import columns as C
from movierec_spark.catalog import popular_enough
from movierec_spark.factors import FEATURES, item_factors
from movierec_spark.model import ITEM_BIAS, USER_BIAS
from movierec_spark.similar import similar_movies
from movierec_spark.taste import FEATURES as FEATURES_COL
from movierec_spark.taste import MATCH, movie_features

TOP_N_COLUMNS = (
    C.USER, C.USER_ID, C.RANK, C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.PREDICTION,
    C.NUM_RATINGS, MATCH, C.BECAUSE_YOU_LIKED, C.BECAUSE_MOVIE_ID, C.SIMILARITY,
)
_ITEM_FEATURES = "_item_features"
SIMILAR_COLUMNS = (
    C.MOVIE_ID, C.RANK, C.SIMILAR_MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.NUM_RATINGS, C.SIMILARITY,
)


def top_n_table(scorer, custom: DataFrame, catalog: DataFrame, n: int, min_ratings: int,
                liked_rating: float, content_weight: float = 0.0) -> DataFrame:
    """Each custom user's ``n`` best unseen, popular-enough movies, explained.

    Ranked by the scorer's unclipped score plus ``content_weight * match``
    (see :mod:`movierec_spark.taste`), then by movie id.

    Computed on the driver: custom users are a person's ratings (a handful
    of users), and the per-movie side (catalog, item bias, item factors,
    taste features: ~60k x rank numbers at ml-25m scale) is collected in one
    Spark action, so the whole table is a few numpy passes instead of ~35
    Spark jobs (bench/NOTES.md, fold-in). ``scorer`` is a
    :class:`movierec_spark.model.RecommenderModel` or a
    :class:`movierec_spark.foldin.FoldedInModel` (``user_terms``); the
    values are the ones their ``predict`` gives.
    """
    spark = custom.sparkSession
    base = getattr(scorer, "base", scorer)
    has_als = getattr(scorer, "als", None) is not None
    movies = catalog.join(movie_features(catalog), on=C.MOVIE_ID, how="left").join(
        base.item_bias.select(C.MOVIE_ID, ITEM_BIAS), on=C.MOVIE_ID, how="left"
    )
    if has_als:
        movies = movies.join(item_factors(scorer).withColumnRenamed(FEATURES, _ITEM_FEATURES), on=C.MOVIE_ID, how="left")
    movies = movies.toPandas().sort_values(C.MOVIE_ID, kind="stable").reset_index(drop=True)
    rated = custom.select(C.USER, C.USER_ID, C.MOVIE_ID, F.col(C.RATING).cast("double")).toPandas()
    user_ids = sorted({int(u) for u in rated[C.USER_ID]})
    terms = scorer.user_terms(user_ids) if user_ids else None
    rows = []
    if user_ids and len(movies):
        local = _LocalMovies(movies, has_als, bool(getattr(scorer, "factor_products_in_float", False)))
        terms_by_user = {int(r[C.USER_ID]): r for r in terms.to_dict("records")}
        labels = rated.drop_duplicates(C.USER_ID).set_index(C.USER_ID)[C.USER]
        for user_id in user_ids:
            mine = rated[rated[C.USER_ID] == user_id]
            rows.extend(local.top_n(
                user_id, labels[user_id], terms_by_user.get(user_id), mine, base, n, min_ratings,
                float(liked_rating), float(content_weight),
            ))
    types = {f.name: f.dataType for f in catalog.schema.fields}
    schema = T.StructType([
        T.StructField(C.USER, custom.schema[C.USER].dataType),
        T.StructField(C.USER_ID, T.IntegerType()),
        T.StructField(C.RANK, T.IntegerType()),
        T.StructField(C.MOVIE_ID, T.IntegerType()),
        T.StructField(C.TITLE, types[C.TITLE]),
        T.StructField(C.YEAR, types[C.YEAR]),
        T.StructField(C.GENRES, types[C.GENRES]),
        T.StructField(C.PREDICTION, T.DoubleType()),
        T.StructField(C.NUM_RATINGS, types[C.NUM_RATINGS]),
        T.StructField(MATCH, T.DoubleType()),
        T.StructField(C.BECAUSE_YOU_LIKED, T.StringType()),
        T.StructField(C.BECAUSE_MOVIE_ID, T.IntegerType()),
        T.StructField(C.SIMILARITY, T.DoubleType()),
    ])
    # One partition, as before: the n rows per user stay in order in one output file.
    return spark.createDataFrame(rows, schema).coalesce(1)


def _seq_dot(left: np.ndarray, right: np.ndarray, in_float: bool = False) -> np.ndarray:
    """``sum_k left[..., k] * right[..., k]`` added left to right in double, as Spark's ``aggregate`` does."""
    total = np.zeros(np.broadcast_shapes(left.shape[:-1], right.shape[:-1]))
    for k in range(left.shape[-1]):
        product = left[..., k] * right[..., k]
        total = total + (product.astype(np.float32) if in_float else product)
    return total


class _LocalMovies:
    """The collected per-movie table, as arrays, and one user's top-N over it."""

    def __init__(self, movies: pd.DataFrame, has_als: bool, in_float: bool):
        self.frame = movies
        self.ids = movies[C.MOVIE_ID].to_numpy(dtype=np.int64)
        self.position = {int(m): i for i, m in enumerate(self.ids)}
        self.item_bias = movies[ITEM_BIAS].fillna(0.0).to_numpy(dtype=np.float64)
        self.num_ratings = movies[C.NUM_RATINGS].to_numpy()
        self.features = [list(f) if f is not None else [] for f in movies[FEATURES_COL]]
        self.in_float = in_float
        self.factors = None
        if has_als:
            column = movies[_ITEM_FEATURES]
            self.has = column.notna().to_numpy()
            known = [np.asarray(f, dtype=np.float32) for f in column[self.has]]
            rank = len(known[0]) if known else 0
            self.factors = np.zeros((len(movies), rank), dtype=np.float32)
            if known:
                self.factors[self.has] = np.stack(known)
            lengths = np.sqrt(_seq_dot(self.factors.astype(np.float64), self.factors.astype(np.float64)))
            with np.errstate(invalid="ignore", divide="ignore"):
                self.units = self.factors.astype(np.float64) / lengths[:, None]
            self.unit_ok = self.has & (lengths > 0)

    def _scores(self, terms, global_mean: float) -> np.ndarray:
        bias = float(terms[USER_BIAS]) if terms is not None else 0.0
        raw = float(global_mean) + bias + self.item_bias
        user = None if terms is None else terms.get(FEATURES)
        if self.factors is not None and user is not None and len(user):
            user = np.asarray(user, dtype=np.float32)
            if self.in_float:
                factor = _seq_dot(self.factors, user[None, :], in_float=True)
            else:
                factor = _seq_dot(self.factors.astype(np.float64), user.astype(np.float64)[None, :])
            raw = raw + np.where(self.has, factor, 0.0)
        return raw

    def _match(self, liked: list[int]) -> np.ndarray:
        counts: dict[str, int] = {}
        for i in liked:
            for feature in self.features[i]:
                counts[feature] = counts.get(feature, 0) + 1
        profile = {k: v / len(liked) for k, v in counts.items()} if liked else {}
        norm = math.sqrt(sum(v * v for v in profile.values()))
        out = np.zeros(len(self.ids))
        if norm > 0:
            for i, features in enumerate(self.features):
                if features:
                    total = 0.0
                    for feature in features:
                        total = total + profile.get(feature, 0.0)
                    out[i] = total / (norm * math.sqrt(len(features)))
        return out

    def _because(self, index: int, liked_factors: np.ndarray):
        if self.factors is None or not self.has[index] or not len(liked_factors):
            return None, None, None
        others = liked_factors[self.ids[liked_factors] != self.ids[index]]
        if not len(others):
            return None, None, None
        if not self.unit_ok[index]:
            best, similarity = others[0], None  # every similarity null: the smallest id
        else:
            sims = _seq_dot(self.units[others], self.units[index][None, :])
            sims = np.where(self.unit_ok[others], sims, -np.inf)
            pick = np.lexsort((self.ids[others], -sims))[0]
            best = others[pick]
            similarity = float(sims[pick]) if np.isfinite(sims[pick]) else None
        row = self.frame.iloc[best]
        year = row[C.YEAR]
        label = row[C.TITLE] if pd.isna(year) else f"{row[C.TITLE]} ({int(year)})"
        return label, int(self.ids[best]), similarity

    def top_n(self, user_id, user, terms, rated: pd.DataFrame, base, n, min_ratings, liked_rating,
              content_weight):
        raw = self._scores(terms, base.global_mean)
        seen = np.isin(self.ids, rated[C.MOVIE_ID].to_numpy(dtype=np.int64))
        liked_ids = sorted({int(m) for m in rated.loc[rated[C.RATING] >= liked_rating, C.MOVIE_ID]})
        liked = [self.position[m] for m in liked_ids if m in self.position]
        match = self._match(liked)
        score = raw + content_weight * match if content_weight else raw
        candidates = np.nonzero((self.num_ratings >= min_ratings) & ~seen)[0]
        top = candidates[np.lexsort((self.ids[candidates], -score[candidates]))][:n]
        prediction = raw
        if base.clips:
            prediction = np.minimum(np.maximum(raw, base.scale.low), base.scale.high)
        liked_factors = np.array([i for i in liked if self.factors is not None and self.has[i]], dtype=np.int64)
        rows = []
        for rank, i in enumerate(top, start=1):
            movie = self.frame.iloc[i]
            genres = movie[C.GENRES]
            rows.append((
                user, int(user_id), rank, int(self.ids[i]), movie[C.TITLE],
                None if pd.isna(movie[C.YEAR]) else int(movie[C.YEAR]),
                None if genres is None else list(genres),
                float(prediction[i]), int(movie[C.NUM_RATINGS]), float(match[i]),
                *self._because(i, liked_factors),
            ))
        return rows


def similar_table(model, queries: DataFrame, catalog: DataFrame, n: int, min_ratings: int) -> DataFrame:
    """The ``n`` movies most similar to each query movie, with titles."""
    candidates = popular_enough(catalog, min_ratings).select(C.MOVIE_ID)
    similar = similar_movies(item_factors(model), queries, candidates, n)
    details = catalog.select(
        F.col(C.MOVIE_ID).alias(C.SIMILAR_MOVIE_ID), C.TITLE, C.YEAR, C.GENRES, C.NUM_RATINGS
    )
    return (
        similar.join(details, on=C.SIMILAR_MOVIE_ID, how="left")
        .select(*SIMILAR_COLUMNS)
        .orderBy(C.MOVIE_ID, C.RANK)
    )


def for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """A table with ``genres`` written the MovieLens way (``Action|Drama``) for CSV."""
    out = frame.copy()
    if C.GENRES in out.columns:
        out[C.GENRES] = [("|".join(g) if g is not None else None) for g in out[C.GENRES]]
    return out


# --- console text ---


def _cell(value, width: int) -> str:
    if value is None or (_is_number(value) and value != value):  # None or NaN
        text = ""
    elif isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        text = f"{value:.2f}"
    elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        text = "|".join(str(v) for v in (value.tolist() if hasattr(value, "tolist") else value))
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def format_rows(rows: Iterable[Mapping], columns: Sequence[tuple[str, str, int]]) -> str:
    """A fixed-width text table; ``columns`` are ``(key, header, width)``, numbers right-aligned."""
    rows = list(rows)

    def line(cells: Sequence[str], numeric: Sequence[bool]) -> str:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, (_, _, w), num in zip(cells, columns, numeric)
        ]
        return "  ".join(parts).rstrip()

    numeric = [
        bool(rows) and all(_is_number(r.get(key)) or r.get(key) is None for r in rows)
        and any(r.get(key) is not None for r in rows)
        for key, _, _ in columns
    ]
    out = [line([h for _, h, _ in columns], numeric)]
    out.append(line(["-" * w for _, _, w in columns], [False] * len(columns)))
    for row in rows:
        out.append(line([_cell(row.get(key), w) for key, _, w in columns], numeric))
    return "\n".join(out)


TOP_N_CONSOLE = (
    (C.RANK, "#", 2),
    ("_label", "movie", 44),
    (C.GENRES, "genres", 26),
    (C.PREDICTION, "predicted", 9),
    (C.NUM_RATINGS, "ratings", 7),
    (MATCH, "match", 5),
    (C.BECAUSE_YOU_LIKED, "because you liked", 40),
)


def format_top_n(frame: pd.DataFrame, max_users: int | None = 20) -> str:
    """The top-N table as text, one block per user (at most ``max_users`` blocks)."""
    if frame.empty:
        return "(no recommendations)"
    blocks = []
    users = list(dict.fromkeys(zip(frame[C.USER_ID], frame[C.USER])))
    for user_id, user in users[: max_users or len(users)]:
        rows = frame[frame[C.USER_ID] == user_id].to_dict("records")
        for row in rows:
            row["_label"] = row[C.TITLE] if pd.isna(row[C.YEAR]) else f"{row[C.TITLE]} ({int(row[C.YEAR])})"
        blocks.append(f"Top {len(rows)} for {user} (user id {user_id})\n" + format_rows(rows, TOP_N_CONSOLE))
    if max_users and len(users) > max_users:
        blocks.append(f"... and {len(users) - max_users} more users (see the CSV/Parquet output)")
    return "\n\n".join(blocks)


SIMILAR_CONSOLE = (
    (C.RANK, "#", 2),
    ("_label", "movie", 50),
    (C.GENRES, "genres", 30),
    (C.SIMILARITY, "cosine", 6),
    (C.NUM_RATINGS, "ratings", 7),
)


def format_similar(frame: pd.DataFrame, query_label: str) -> str:
    """The similar-movies table as text under a heading naming the query movie."""
    rows = frame.to_dict("records")
    for row in rows:
        row["_label"] = row[C.TITLE] if pd.isna(row[C.YEAR]) else f"{row[C.TITLE]} ({int(row[C.YEAR])})"
    return f"Movies most like {query_label}\n" + format_rows(rows, SIMILAR_CONSOLE)
