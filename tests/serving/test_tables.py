"""Top-N tables, "because you liked", similar movies and their console text."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import columns as C
from movierec_spark.data.catalog import CATALOG_COLUMNS, build_catalog
from movierec_spark.serving.foldin import fold_in_local
from movierec_spark.serving.movie_table import MovieTable, collect_movie_table
from movierec_spark.serving.similar import most_similar
from movierec_spark.serving.tables import (
    SIMILAR_SCHEMA,
    TOP_N_COLUMNS,
    TOP_N_SCHEMA,
    for_csv,
    format_similar,
    format_top_n,
    similar_table,
    top_n_table,
)
from movierec_spark.serving.taste import FEATURES, content_features
from tests.tiny_models import CATALOG, GLOBAL_MEAN, ITEM_BIAS, ITEM_FACTORS, tiny_catalog, tiny_model


def _plain(value):
    """A pandas/numpy cell as the Python value Spark expects (NaN and NA as null)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, numbers.Integral)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if value is pd.NA:
        return None
    return value


def to_spark(spark, frame, schema):
    """A small pandas table as a Spark DataFrame of ``schema``, to compare with assertDataFrameEqual."""
    rows = [tuple(_plain(v) for v in row) for row in frame[list(schema.names)].itertuples(index=False, name=None)]
    return spark.createDataFrame(rows, schema).coalesce(1)


def _cos(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


N = 4
CUSTOM = [("ann", 100, 10, 5.0), ("ann", 100, 20, 2.0), ("bob", 101, 30, 4.5), ("bob", 101, 70, 1.0),
          ("cy", 102, 20, 3.0)]


def _movies(spark, model):
    catalog = tiny_catalog(spark)
    return collect_movie_table(model, catalog.select(*CATALOG_COLUMNS, content_features().alias(FEATURES)))


def _ratings(rows):
    frame = pd.DataFrame(rows, columns=[C.USER, C.USER_ID, C.MOVIE_ID, C.RATING])
    return frame.astype({C.USER_ID: np.int32, C.MOVIE_ID: np.int32, C.RATING: np.float32})


@pytest.fixture(scope="module")
def custom(spark):
    return spark.createDataFrame(CUSTOM, "user string, user_id int, movie_id int, rating float")


@pytest.fixture(scope="module")
def folded(spark):
    model = tiny_model(spark)
    movies = _movies(spark, model)
    return model, movies, fold_in_local(model, movies, _ratings(CUSTOM))


@pytest.fixture(scope="module")
def table(spark, folded):
    model, movies, users = folded
    got = top_n_table(model, movies, _ratings(CUSTOM), users, n=N, min_ratings=20, liked_rating=4.0)
    return to_spark(spark, got, TOP_N_SCHEMA), got


def test_top_n_is_the_hand_computed_table(spark):
    """Two users with given terms; every value below is worked out by hand from tests/tiny_models.py.

    dee (bias 1.5, factors [1, 0.5]) liked 10 and 40, saw 20; unseen popular
    movies: 50 (3 + 1.5 + 0.25 = 4.75, no factors, no features), 70 and 80
    (3 + 1.5 + 0.3 + 0.2 + 0.1 = 5.1, clipped to 5; match: profile Action .5,
    Sci-Fi 1, Horror .5, decade 1990 .5, decade 1970 .5, norm sqrt 2; Twin A
    has Comedy and decade 1990: 0.5 / (sqrt 2 sqrt 2) = 0.25), twins tie and
    70 comes first; "because": cos(70, 10) = 1/sqrt 2 beats cos(70, 40) < 0.
    eve rated one movie (nothing to fold in: the popular list, her bias -0.1
    and missing factors set aside) and liked nothing: by 3 + b_i, no match, no reason.
    """
    model = tiny_model(spark)
    movies = _movies(spark, model)
    rated = _ratings([("dee", 200, 10, 5.0), ("dee", 200, 40, 4.0), ("dee", 200, 20, 1.0), ("eve", 201, 70, 2.0)])
    users = pd.DataFrame({C.USER_ID: [200, 201], "user_bias": [1.5, -0.1], "features": [[1.0, 0.5], None]})
    got = top_n_table(model, movies, rated, users, n=3, min_ratings=20, liked_rating=4.0, content_weight=1.0)
    reason = ("Matrix, The (1999)", 10, 1 / math.sqrt(2), "personal")
    none = (None, None, None, "popular")
    expected = spark.createDataFrame(
        [
            ("dee", 200, 1, 70, "Twin A", 1990, ["Comedy"], 5.0, 25, 0.25, *reason),
            ("dee", 200, 2, 80, "Twin B", 1990, ["Comedy"], 5.0, 25, 0.25, *reason),
            ("dee", 200, 3, 50, "No Factors", None, [], 4.75, 40, 0.0, None, None, None, "personal"),
            ("eve", 201, 1, 40, "Alien", 1979, ["Horror", "Sci-Fi"], 4.0, 30, 0.0, *none),
            ("eve", 201, 2, 10, "Matrix, The", 1999, ["Action", "Sci-Fi"], 3.5, 100, 0.0, *none),
            ("eve", 201, 3, 80, "Twin B", 1990, ["Comedy"], 3.3, 25, 0.0, *none),
        ],
        TOP_N_SCHEMA,
    )
    assertDataFrameEqual(to_spark(spark, got, TOP_N_SCHEMA), expected, checkRowOrder=True, rtol=1e-12)
    # Without the taste boost the order is by predicted score alone: the same here, 5.1 > 4.75.
    plain = top_n_table(model, movies, rated, users, n=3, min_ratings=20, liked_rating=4.0, content_weight=0.0)
    assert list(plain.movie_id) == list(got.movie_id)


def test_top_n_of_no_users_is_empty(spark, folded):
    model, movies, users = folded
    got = top_n_table(model, movies, _ratings([]), users.iloc[:0], n=3, min_ratings=20, liked_rating=4.0)
    assert tuple(got.columns) == TOP_N_COLUMNS and got.empty


def test_top_n_has_the_documented_columns_and_no_seen_or_obscure_movie(table, custom):
    frame, got = table
    assert tuple(frame.columns) == TOP_N_COLUMNS
    seen = {(r.user_id, r.movie_id) for r in custom.collect()}
    assert not seen & set(zip(got.user_id, got.movie_id))
    assert (got.num_ratings >= 20).all()
    # ann rated 10 and 20: of the popular-enough movies exactly 40, 50, 70, 80 remain.
    assert got.groupby("user").size().to_dict() == {"ann": 4, "bob": 4, "cy": 4}
    assert set(got[got.user == "ann"].movie_id) == {40, 50, 70, 80}
    assert list(got.user_id) == sorted(got.user_id)


def test_top_n_order_is_by_score_then_movie_id(spark, table, custom, folded):
    _, got = table
    users = {r.user_id: r for r in folded[2].itertuples()}
    for user_id, rows in got.groupby("user_id"):
        state = users[user_id]
        candidates = [m for m, (_, _, _, n) in CATALOG.items() if n >= 20 and m not in set(
            r.movie_id for r in custom.filter(f"user_id = {user_id}").collect())]

        # cy rated one movie: the popular list, by mean + b_i alone.
        personal = set(rows.basis) == {"personal"}
        assert personal == (user_id != 102) and set(rows.basis) <= {"personal", "popular"}

        def score(m):
            if not personal:
                return GLOBAL_MEAN + ITEM_BIAS.get(m, 0.0)
            factor = float(np.dot(state.features, ITEM_FACTORS[m])) if m in ITEM_FACTORS else 0.0
            return GLOBAL_MEAN + state.user_bias + ITEM_BIAS.get(m, 0.0) + factor

        expected = sorted(candidates, key=lambda m: (-round(score(m), 9), m))[:N]
        assert list(rows.sort_values("rank").movie_id) == expected
        assert list(rows["rank"]) == list(range(1, N + 1))
        np.testing.assert_allclose(
            rows.prediction, [min(5.0, max(0.5, score(m))) for m in expected], rtol=1e-6
        )
    # 70 and 80 are the same movie to the model: when both are listed, 70 comes first.
    for _, rows in got.groupby("user_id"):
        ids = list(rows.movie_id)
        if 70 in ids and 80 in ids:
            assert ids.index(70) < ids.index(80)


def test_because_you_liked_is_the_most_similar_liked_movie(table):
    _, got = table
    ann = got[got.user == "ann"]
    # ann liked only movie 10 (rated 5; 20 got a 2): every reason is 10, where it has factors.
    with_factors = ann[ann.movie_id.isin(ITEM_FACTORS.keys())]
    assert set(with_factors.because_movie_id) == {10}
    assert set(with_factors.because_you_liked) == {"Matrix, The (1999)"}
    for row in with_factors.itertuples():
        assert row.similarity == pytest.approx(_cos(ITEM_FACTORS[10], ITEM_FACTORS[row.movie_id]), rel=1e-6)
    # movie 50 has no factors, cy liked nothing (a 3): no reason rather than an invented one.
    assert ann[ann.movie_id == 50].because_movie_id.isna().all() and len(ann[ann.movie_id == 50]) == 1
    assert got[got.user == "cy"].because_movie_id.isna().all()


def _factor_table(factors):
    frame = pd.DataFrame({C.MOVIE_ID: list(factors), "item_bias": 0.0, "_item_features": list(factors.values())})
    return MovieTable.from_frame(frame)


def test_because_you_liked_breaks_ties_by_movie_id():
    # Recommended 1 and 4; liked 2 and 3, both in 1's direction: the smaller id wins.
    movies = _factor_table({1: [1.0, 0.0], 2: [2.0, 0.0], 3: [1.0, 0.0], 4: [0.0, 1.0]})
    query, candidate, rank, similarity = most_similar(movies, movies.positions([1, 4]), movies.positions([2, 3]), 1)
    got = [(int(movies.ids[[0, 3][q]]), int(movies.ids[[1, 2][c]]), int(r), s)
           for q, c, r, s in zip(query, candidate, rank, similarity)]
    assert got == [(1, 2, 1, 1.0), (4, 2, 1, 0.0)]


def test_similar_movies_by_cosine_with_ties_and_without_itself():
    movies = _factor_table(
        {1: [1.0, 0.0], 2: [3.0, 0.0], 3: [1.0, 0.0], 4: [1.0, 1.0], 5: [0.0, 0.0], 6: [-1.0, 0.0]}
    )
    everything = np.arange(6)
    query, candidate, rank, similarity = most_similar(movies, movies.positions([1, 5]), everything, 3)
    # movie 5 has no direction: no neighbours; movie 6 (opposite) is last, beyond n.
    assert list(query) == [0, 0, 0]
    assert list(movies.ids[candidate]) == [2, 3, 4] and list(rank) == [1, 2, 3]
    np.testing.assert_allclose(similarity, [1.0, 1.0, _cos([1, 0], [1, 1])], rtol=1e-12)


def test_similar_table_respects_min_ratings_and_names_movies(spark):
    got = similar_table(_movies(spark, tiny_model(spark)), 10, n=10, min_ratings=20)
    # 30 has 5 ratings; 50 and 60 have no factors; 10 is the query itself.
    assert list(got.similar_movie_id) == sorted(
        [20, 40, 70, 80], key=lambda m: (-round(_cos(ITEM_FACTORS[10], ITEM_FACTORS[m]), 9), m)
    )
    assert list(got["rank"]) == [1, 2, 3, 4] and set(got.movie_id) == {10}
    assert got.loc[got.similar_movie_id == 40, "title"].item() == "Alien"
    assert tuple(to_spark(spark, got, SIMILAR_SCHEMA).columns) == tuple(SIMILAR_SCHEMA.names)
    text = format_similar(got, "Matrix, The (1999)")
    assert text.splitlines()[0] == "Movies most like Matrix, The (1999)"
    assert "Alien (1979)" in text and "Horror|Sci-Fi" in text
    assert similar_table(_movies(spark, tiny_model(spark)), 50, n=10, min_ratings=20).empty  # no factors


def test_catalog_counts_ratings_and_keeps_unrated_movies(spark):
    movies = spark.createDataFrame(
        [(1, "A", 2000, ["Drama"]), (2, "B", None, [])], "movie_id int, title string, year int, genres array<string>"
    )
    ratings = spark.createDataFrame([(7, 1, 4.0), (8, 1, 3.0)], "user_id int, movie_id int, rating float")
    expected = spark.createDataFrame(
        [(1, "A", 2000, ["Drama"], 2), (2, "B", None, [], 0)],
        "movie_id int, title string, year int, genres array<string>, num_ratings int",
    )
    assertDataFrameEqual(build_catalog(movies, ratings), expected)


def test_console_and_csv_forms(table):
    _, got = table
    text = format_top_n(got)
    blocks = text.split("\n\n")
    assert len(blocks) == 3 and blocks[0].startswith("Top 4 for ann (user id 100)")
    header = blocks[0].splitlines()[1]
    assert "movie" in header and "because you liked" in header and "predicted" in header
    assert "No Factors" in text and "Twin A (1990)" in text and "Alien (1979)" in text
    csv = for_csv(got)
    assert set(csv.genres) >= {"Horror|Sci-Fi", "Comedy", ""}
    assert format_top_n(got, max_users=1).endswith("... and 2 more users (see the CSV/Parquet output)")
    assert format_top_n(pd.DataFrame(columns=list(TOP_N_COLUMNS))) == "(no recommendations)"


def test_title_index_from_the_movie_table_is_the_catalogs(spark):
    from movierec_spark.serving.personal import CustomRecommender

    fresh = CustomRecommender(spark, tiny_model(spark), tiny_catalog(spark))
    collected = CustomRecommender(spark, tiny_model(spark), tiny_catalog(spark))
    collected.collect_movie_table()
    assert collected.index.movies == fresh.index.movies  # 50 has no year
    assert collected.index.movies[50].year is None and collected.index.movies[10].num_ratings == 100
