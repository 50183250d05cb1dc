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

import numbers
from typing import Iterable, Mapping, Sequence

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movierec_spark import columns as C
from movierec_spark.catalog import popular_enough
from movierec_spark.factors import item_factors
from movierec_spark.recommend import top_n_unseen
from movierec_spark.similar import because_you_liked, similar_movies
from movierec_spark.taste import MATCH, ContentBoost, movie_features, taste_profiles, with_match

TOP_N_COLUMNS = (
    C.USER, C.USER_ID, C.RANK, C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.PREDICTION,
    C.NUM_RATINGS, MATCH, C.BECAUSE_YOU_LIKED, C.BECAUSE_MOVIE_ID, C.SIMILARITY,
)
SIMILAR_COLUMNS = (
    C.MOVIE_ID, C.RANK, C.SIMILAR_MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.NUM_RATINGS, C.SIMILARITY,
)


def title_label(title: str = C.TITLE, year: str = C.YEAR):
    """``"Title (1999)"``, or the bare title when the year is unknown."""
    return F.when(F.col(year).isNull(), F.col(title)).otherwise(
        F.format_string("%s (%d)", F.col(title), F.col(year))
    )


def liked_movies(custom: DataFrame, liked_rating: float) -> DataFrame:
    """``user_id, movie_id`` of the movies each user rated ``liked_rating`` or more."""
    return custom.filter(F.col(C.RATING) >= F.lit(float(liked_rating))).select(C.USER_ID, C.MOVIE_ID)


def top_n_table(scorer, custom: DataFrame, catalog: DataFrame, n: int, min_ratings: int,
                liked_rating: float, content_weight: float = 0.0) -> DataFrame:
    """Each custom user's ``n`` best unseen, popular-enough movies, explained.

    Ranked by the scorer's unclipped score plus ``content_weight * match``
    (see :mod:`movierec_spark.taste`), then by movie id.
    """
    users = custom.select(C.USER_ID).distinct()
    seen = custom.select(C.USER_ID, C.MOVIE_ID)
    candidates = popular_enough(catalog, min_ratings).select(C.MOVIE_ID)
    liked = liked_movies(custom, liked_rating)
    features = movie_features(catalog)
    # One row per user, used twice (the ranking boost inside ``top`` and the
    # table's match column): cached so its four aggregations run once.
    profiles = taste_profiles(liked, features).cache()
    ranker = ContentBoost(scorer, profiles, features, content_weight) if content_weight else scorer
    # Used twice (the table and its explanations): cached so the scoring runs once.
    top = top_n_unseen(ranker, users, candidates, seen, n).cache()
    labels = custom.select(C.USER, C.USER_ID).distinct()
    table = with_match(
        top.join(labels, on=C.USER_ID, how="left")
        .join(catalog.select(C.MOVIE_ID, C.TITLE, C.YEAR, C.GENRES, C.NUM_RATINGS), on=C.MOVIE_ID, how="left"),
        profiles,
        features,
    )
    if getattr(scorer, "als", None) is not None:
        reasons = because_you_liked(top, liked, item_factors(scorer))
        because_titles = catalog.select(
            F.col(C.MOVIE_ID).alias(C.BECAUSE_MOVIE_ID), title_label().alias(C.BECAUSE_YOU_LIKED)
        )
        reasons = reasons.join(because_titles, on=C.BECAUSE_MOVIE_ID, how="left")
        table = table.join(reasons, on=[C.USER_ID, C.MOVIE_ID], how="left")
    else:
        table = (
            table.withColumn(C.BECAUSE_YOU_LIKED, F.lit(None).cast("string"))
            .withColumn(C.BECAUSE_MOVIE_ID, F.lit(None).cast("int"))
            .withColumn(C.SIMILARITY, F.lit(None).cast("double"))
        )
    # n rows per custom user: one sorted partition. A global orderBy would
    # first run a sampling job over the whole plan to pick range boundaries.
    return table.select(*TOP_N_COLUMNS).repartition(1).sortWithinPartitions(C.USER_ID, C.RANK)


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
