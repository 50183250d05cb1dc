"""Top-N and similar-movie tables for people, as pandas tables, CSV rows and console text.

Inputs: the model the scores come from (a
:class:`movierec_spark.models.recommender.RecommenderModel`: global mean, rating scale),
its per-movie table on the driver (:class:`movierec_spark.serving.movie_table.MovieTable`
of the catalog, ``movie_id, title, year, genres, num_ratings``, with the
taste features, see ``CustomRecommender.collect_movie_table``), custom
ratings (``user, user_id, movie_id, rating``) and the users' terms
(``user_id, user_bias, features``: a fold-in's result, or the model's own).
Nothing here imports pyspark or runs a Spark action: the per-user work is
numpy over the collected table, the same functions the many-users path
(:mod:`movierec_spark.serving.topn_all`) runs on the executors, so the Spark
jobs and the path without a JVM (:mod:`movierec_spark.serving.local`) build
the same tables.

Output of :func:`top_n_table`, ordered by user_id then rank::

    user string, user_id int, rank int, movie_id int, title string, year int,
    genres array<string>, prediction double, num_ratings int, match double,
    because_you_liked string, because_movie_id int, similarity double, basis string

``prediction`` is the predicted rating (clipped to the scale). Ranks follow
the unclipped score plus ``content_weight * match``, then the smaller movie
id; ``match`` (0 to 1) says how well the movie's genres and decade fit the
movies the user liked (:mod:`movierec_spark.serving.taste`). Only movies the user
has not rated and with at least ``min_ratings`` ratings are candidates.
``because_you_liked`` is the user's rated movie with ``rating >=
liked_rating`` whose item factors are most cosine-similar to the
recommendation (``similarity``); null when the user liked nothing the model
has factors for, or the model has none.

``basis`` is ``personal`` for those lists. A person whose ratings say
nothing the model can use -- none of the rated movies has factors in the
model, or every rating is the same (one rating included), so nothing
separates what they like from what they do not -- gets the ``popular``
list instead: the most-liked movies (by ``mean + b_i``, the model's
prediction for someone it knows nothing about, plus the taste boost) with
at least ``min_ratings`` ratings, only in the genres of the movies they
liked when they liked any (unless fewer than ``n`` such movies are left);
``prediction`` is then that ``mean + b_i``.

Output of :func:`similar_table`, ordered by rank::

    movie_id int, rank int, similar_movie_id int, title string, year int,
    genres array<string>, num_ratings int, similarity double

:func:`to_arrow` makes either an Arrow table (for Parquet output).
"""

from __future__ import annotations

import difflib
import numbers
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.columns import FEATURES as USER_FEATURES
from movierec_spark.columns import USER_BIAS
from movierec_spark.serving.movie_table import MovieTable
from movierec_spark.serving.similar import most_similar, unit_factors
from movierec_spark.serving.taste import FEATURES, MATCH, feature_counts, taste_match
from movierec_spark.serving.topn_all import candidate_matrix, rank_block, single_precision

# How a list was made (the ``basis`` column): from the person's folded-in
# ratings, or, when they gave none the model can use, the most-liked movies.
BASIS_PERSONAL = "personal"
# Users ranked together by top_n_table (a file of many people goes in blocks).
USERS_PER_BLOCK = 256
BASIS_POPULAR = "popular"

# The tables' types, as Arrow (what a job writes, with or without Spark);
# TOP_N_SCHEMA and SIMILAR_SCHEMA are the same as Spark schemas (below).
_INT, _DOUBLE, _STRING = pa.int32(), pa.float64(), pa.string()
# The catalog's columns of a listed movie, in both tables.
_MOVIE_DETAILS = ((C.TITLE, _STRING), (C.YEAR, _INT), (C.GENRES, pa.list_(pa.field("element", _STRING))))
TOP_N_ARROW = pa.schema([
    (C.USER, _STRING), (C.USER_ID, _INT), (C.RANK, _INT), (C.MOVIE_ID, _INT), *_MOVIE_DETAILS,
    (C.PREDICTION, _DOUBLE), (C.NUM_RATINGS, _INT), (MATCH, _DOUBLE),
    (C.BECAUSE_YOU_LIKED, _STRING), (C.BECAUSE_MOVIE_ID, _INT), (C.SIMILARITY, _DOUBLE), (C.BASIS, _STRING),
])
TOP_N_COLUMNS = tuple(TOP_N_ARROW.names)
SIMILAR_ARROW = pa.schema([
    (C.MOVIE_ID, _INT), (C.RANK, _INT), (C.SIMILAR_MOVIE_ID, _INT), *_MOVIE_DETAILS,
    (C.NUM_RATINGS, _INT), (C.SIMILARITY, _DOUBLE),
])
SIMILAR_COLUMNS = tuple(SIMILAR_ARROW.names)
_SPARK_SCHEMAS = {"TOP_N_SCHEMA": TOP_N_ARROW, "SIMILAR_SCHEMA": SIMILAR_ARROW}


def __getattr__(name: str):
    # TOP_N_SCHEMA and SIMILAR_SCHEMA, the Spark schemas of the two tables,
    # are built from the Arrow ones on first use: the path without a JVM
    # (movierec_spark.serving.local) builds these tables with no pyspark import.
    if name in _SPARK_SCHEMAS:
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(_SPARK_SCHEMAS[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def title_label(title, year) -> str:
    """``"Title (1999)"``, or the bare title when the year is unknown."""
    return title if year is None or pd.isna(year) else f"{title} ({int(year)})"


def _optional_int(value):
    return None if value is None or pd.isna(value) else int(value)


def _movie_columns(movies: MovieTable, rows: np.ndarray) -> dict:
    """The catalog columns of these table rows (nullable ints as Python ints or None)."""
    frame = movies.frame
    return {
        C.TITLE: frame[C.TITLE].to_numpy()[rows],
        C.YEAR: pd.Series([_optional_int(y) for y in frame[C.YEAR].to_numpy()[rows]], dtype=object),
        C.GENRES: [None if g is None else list(g) for g in frame[C.GENRES].to_numpy()[rows]],
    }


def _because_you_liked(movies: MovieTable, user_rows: np.ndarray, picked: np.ndarray,
                       liked: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """For each recommendation (its user's index, its table row): the most similar liked row and cosine.

    -1 and NaN where the user liked nothing with factors or the movie has none.
    """
    because = np.full(len(picked), -1, dtype=np.int64)
    similarity = np.full(len(picked), np.nan)
    units = movies.derived("unit factors", lambda: unit_factors(movies))
    for user, rows in enumerate(liked):
        mine = np.flatnonzero(user_rows == user)
        if len(mine) and len(rows):
            query, candidate, _, cosine = most_similar(movies, picked[mine], rows, 1, units)
            because[mine[query]] = rows[candidate]
            similarity[mine[query]] = cosine
    return because, similarity


def _candidates(movies: MovieTable, min_ratings: int):
    """What ranking against the movies with ``min_ratings`` ratings needs, kept with the table.

    ``(rows, ids, [q_i, b_i] transposed, its single-precision form, their taste feature counts and lengths)``.
    """
    def compute():
        rows = np.flatnonzero(movies.frame[C.NUM_RATINGS].to_numpy() >= int(min_ratings))
        item_ids, item_t = candidate_matrix(movies)
        chosen_t = np.ascontiguousarray(item_t[:, rows])
        counts = _taste_counts(movies)[rows]
        return rows, item_ids[rows], chosen_t, single_precision(chosen_t), (counts, np.sqrt(counts.sum(axis=1)))

    return movies.derived(("candidates", int(min_ratings)), compute)


def _taste_counts(movies: MovieTable) -> np.ndarray:
    return movies.derived("taste counts", lambda: feature_counts(list(movies.frame[FEATURES])))


def _popular_users(model, movies: MovieTable, seen: Sequence[np.ndarray], ratings: Sequence[np.ndarray]) -> np.ndarray:
    """Which users get the ``popular`` list: their ratings give the model nothing to fold in.

    ``seen``/``ratings``: per user, the movie ids they rated and the ratings.
    """
    popular = np.zeros(len(seen), dtype=bool)
    for user, (ids, values) in enumerate(zip(seen, ratings)):
        rows = movies.positions(ids)
        known = rows >= 0
        if model.has_factors:
            known[known] = movies.has_factors[rows[known]]
        popular[user] = not known.any() or len(np.unique(values[known])) < 2
    return popular


def check_genres(movies: MovieTable, named: Sequence[str]) -> None:
    """Refuse a genre no movie of the table has, naming the closest one and the table's genres."""
    known = movies.derived("genres", lambda: sorted({g for gs in movies.frame[C.GENRES] if gs is not None for g in gs}))
    by_case = {g.casefold(): g for g in known}
    for name in named:
        if name.casefold() not in by_case:
            close = difflib.get_close_matches(name.casefold(), list(by_case), n=1)
            hint = f" (did you mean {by_case[close[0]]}?)" if close else ""
            raise MovieRecError(f"unknown genre {name!r}{hint}; the model's genres: {', '.join(known)}")


def _outside_genres(movies: MovieTable, candidates: np.ndarray, liked: np.ndarray, n: int,
                    named: Sequence[str] = ()) -> np.ndarray:
    """Ids of the candidates sharing no genre with ``named`` (else with the ``liked`` rows); none when fewer than ``n`` share one."""
    genres = movies.frame[C.GENRES].to_numpy()
    wanted = {g.casefold() for g in named} or {g.casefold() for row in liked if genres[row] is not None for g in genres[row]}
    if not wanted:
        return np.zeros(0, dtype=np.int64)
    inside = np.array([genres[c] is not None and not wanted.isdisjoint(g.casefold() for g in genres[c])
                       for c in candidates], dtype=bool)
    if inside.sum() < n:
        return np.zeros(0, dtype=np.int64)
    return movies.ids[candidates[~inside]]


def top_n_table(model, movies: MovieTable, ratings: pd.DataFrame, users: pd.DataFrame, n: int,
                min_ratings: int, liked_rating: float, content_weight: float = 0.0,
                people: Mapping[int, str] | None = None, genres: Sequence[str] = ()) -> pd.DataFrame:
    """Each custom user's ``n`` best unseen, popular-enough movies, explained.

    ``model`` gives the global mean, scale and whether it has factors (for a
    fold-in: the model the users were folded into; a RecommenderModel or a
    :class:`movierec_spark.models.saved.SavedModel`); ``movies`` its
    per-movie table with the catalog and taste features; ``ratings`` the
    users' own ratings; ``users`` their terms (``user_id, user_bias,
    features``; a user without a row gets the model's cold-start ranking).
    Ranked by the unclipped score plus ``content_weight * match``, then by
    movie id. A user whose ratings the model cannot use gets the
    ``popular`` list (module docstring), as do ``people`` (``user_id ->
    user``) without a rating in ``ratings``: the most liked movies of
    ``genres`` if named, else of the genres of the movies they liked.
    """
    if n < 1:
        raise ValueError(f"n must be 1 or more, got {n}")
    check_genres(movies, genres)
    everyone = np.union1d(ratings[C.USER_ID].to_numpy(dtype=np.int64), np.fromiter(people or (), dtype=np.int64))
    if len(everyone) > USERS_PER_BLOCK:
        # Blocks of users bound the users x movies matrices (scores, taste match) of a large file.
        blocks = []
        for start in range(0, len(everyone), USERS_PER_BLOCK):
            block = everyone[start:start + USERS_PER_BLOCK]
            mine = ratings[ratings[C.USER_ID].isin(block)]
            theirs = {u: p for u, p in (people or {}).items() if u in set(block.tolist())}
            blocks.append(top_n_table(model, movies, mine, users, n, min_ratings, liked_rating, content_weight, theirs,
                                      genres))
        return pd.concat(blocks, ignore_index=True)
    labels = ratings.drop_duplicates(C.USER_ID).set_index(C.USER_ID)[C.USER]
    if people:
        extra = {u: label for u, label in people.items() if u not in labels.index}
        labels = pd.concat([labels, pd.Series(extra, dtype=object)]) if extra else labels
    user_ids = np.sort(labels.index.to_numpy(dtype=np.int64))
    terms = users.set_index(C.USER_ID).reindex(user_ids)
    by_user = {u: group for u, group in ratings.groupby(C.USER_ID)}
    nobody = ratings.iloc[:0]
    by_user.update({u: nobody for u in user_ids if u not in by_user})
    seen = [by_user[u][C.MOVIE_ID].to_numpy(dtype=np.int64) for u in user_ids]
    liked = []
    for u in user_ids:
        mine = by_user[u]
        rows = movies.positions(mine.loc[mine[C.RATING] >= float(liked_rating), C.MOVIE_ID])
        liked.append(np.unique(rows[rows >= 0]))
    candidates, candidate_ids, candidate_t, prepared, scored = _candidates(movies, min_ratings)
    match = taste_match(None, liked, candidates, counts=_taste_counts(movies), scored=scored)
    clip = (float(model.scale.low), float(model.scale.high)) if model.clips else None
    factors = [None if not isinstance(f, (list, np.ndarray)) else f for f in terms[USER_FEATURES]]
    bias = terms[USER_BIAS].fillna(0.0).to_numpy(dtype=np.float64)
    popular = _popular_users(model, movies, seen, [by_user[u][C.RATING].to_numpy(dtype=np.float64) for u in user_ids])
    for user in np.flatnonzero(popular):
        bias[user], factors[user] = 0.0, None
        seen[user] = np.concatenate([seen[user], _outside_genres(movies, candidates, liked[user], n, genres)])
    rows, cols, ranks, prediction = rank_block(
        bias, factors, seen, candidate_ids, candidate_t, n, float(model.global_mean), clip,
        boost=float(content_weight) * match if content_weight else None, prepared=prepared,
    )
    picked = candidates[cols]
    if model.has_factors:
        because, similarity = _because_you_liked(movies, rows, picked, liked)
    else:
        because, similarity = np.full(len(picked), -1), np.full(len(picked), np.nan)
    frame = movies.frame
    reasons = [
        (None, None) if b < 0 else (title_label(frame[C.TITLE].iat[b], frame[C.YEAR].iat[b]), int(movies.ids[b]))
        for b in because
    ]
    table = pd.DataFrame({
        C.USER: labels.reindex(user_ids).to_numpy()[rows],
        C.USER_ID: user_ids[rows].astype(np.int32),
        C.RANK: ranks.astype(np.int32),
        C.MOVIE_ID: movies.ids[picked].astype(np.int32),
        **_movie_columns(movies, picked),
        C.PREDICTION: prediction.astype(np.float64),
        C.NUM_RATINGS: frame[C.NUM_RATINGS].to_numpy()[picked].astype(np.int32),
        MATCH: match[rows, cols],
        C.BECAUSE_YOU_LIKED: [r[0] for r in reasons],
        C.BECAUSE_MOVIE_ID: pd.Series([r[1] for r in reasons], dtype=object),
        C.SIMILARITY: similarity,
        C.BASIS: np.where(popular[rows], BASIS_POPULAR, BASIS_PERSONAL).astype(object),
    })
    return table[list(TOP_N_COLUMNS)]


def similar_table(movies: MovieTable, movie_id: int, n: int, min_ratings: int) -> pd.DataFrame:
    """The ``n`` movies most similar to ``movie_id`` by cosine of item factors, with titles.

    Candidates have at least ``min_ratings`` ratings; a movie the table does
    not hold or without factors gets an empty table.
    """
    query = movies.positions([movie_id])
    candidates = np.flatnonzero(movies.frame[C.NUM_RATINGS].to_numpy() >= int(min_ratings))
    if query[0] < 0:
        query, candidates = query[:0], candidates[:0]
    _, cols, ranks, similarity = most_similar(movies, query, candidates, n)
    picked = candidates[cols]
    table = pd.DataFrame({
        C.MOVIE_ID: np.full(len(picked), int(movie_id), dtype=np.int32),
        C.RANK: ranks.astype(np.int32),
        C.SIMILAR_MOVIE_ID: movies.ids[picked].astype(np.int32),
        **_movie_columns(movies, picked),
        C.NUM_RATINGS: movies.frame[C.NUM_RATINGS].to_numpy()[picked].astype(np.int32),
        C.SIMILARITY: similarity.astype(np.float64),
    })
    return table[list(SIMILAR_COLUMNS)]


def to_arrow(frame: pd.DataFrame, schema) -> pa.Table:
    """A small pandas table (``top_n_table``'s, ``similar_table``'s) as an Arrow table of ``schema``'s types.

    ``schema``: an Arrow schema (``TOP_N_ARROW``, ``SIMILAR_ARROW``) or a
    Spark one. What a job writes on the driver
    (:func:`movierec_spark.io.staged_table`) instead of going through Spark:
    for a few hundred rows already in this process, a Spark write is a job
    of its own, most of ``recommend.py``'s run from a saved model.
    """
    if not isinstance(schema, pa.Schema):
        from pyspark.sql.pandas.types import to_arrow_schema

        schema = to_arrow_schema(schema)
    columns = frame[list(schema.names)]
    columns.attrs = {}  # Spark Connect's toPandas keeps query metrics there: not the table's metadata
    return pa.Table.from_pandas(columns, schema=schema, preserve_index=False)


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
            row["_label"] = title_label(row[C.TITLE], row[C.YEAR])
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
        row["_label"] = title_label(row[C.TITLE], row[C.YEAR])
    return f"Movies most like {query_label}\n" + format_rows(rows, SIMILAR_CONSOLE)
