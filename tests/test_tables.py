"""Top-N tables, "because you liked", similar movies and their console text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import columns as C
from movierec_spark.catalog import build_catalog
from movierec_spark.foldin import fold_in
from movierec_spark.similar import because_you_liked, similar_movies
from movierec_spark.tables import (
    TOP_N_COLUMNS,
    for_csv,
    format_similar,
    format_top_n,
    similar_table,
    top_n_table,
)
from tests.tiny_models import CATALOG, GLOBAL_MEAN, ITEM_BIAS, ITEM_FACTORS, tiny_catalog, tiny_model


def _cos(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


N = 4


@pytest.fixture(scope="module")
def custom(spark):
    return spark.createDataFrame(
        [("ann", 100, 10, 5.0), ("ann", 100, 20, 2.0), ("bob", 101, 30, 4.5), ("bob", 101, 70, 1.0),
         ("cy", 102, 20, 3.0)],
        "user string, user_id int, movie_id int, rating float",
    )


@pytest.fixture(scope="module")
def table(spark, custom):
    scorer = fold_in(tiny_model(spark), custom)
    frame = top_n_table(scorer, custom, tiny_catalog(spark), n=N, min_ratings=20, liked_rating=4.0)
    return frame, frame.toPandas()


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


def test_top_n_order_is_by_score_then_movie_id(spark, table, custom):
    _, got = table
    users = {r.user_id: r for r in fold_in(tiny_model(spark), custom).users.collect()}
    for user_id, rows in got.groupby("user_id"):
        state = users[user_id]
        candidates = [m for m, (_, _, _, n) in CATALOG.items() if n >= 20 and m not in set(
            r.movie_id for r in custom.filter(f"user_id = {user_id}").collect())]

        def score(m):
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


def test_because_you_liked_breaks_ties_by_movie_id(spark):
    factors = spark.createDataFrame(
        [(1, [1.0, 0.0]), (2, [2.0, 0.0]), (3, [1.0, 0.0]), (4, [0.0, 1.0])], "movie_id int, features array<float>"
    )
    recommended = spark.createDataFrame([(9, 1), (9, 4)], "user_id int, movie_id int")
    liked = spark.createDataFrame([(9, 3), (9, 2)], "user_id int, movie_id int")
    got = because_you_liked(recommended, liked, factors).orderBy(C.MOVIE_ID)
    expected = spark.createDataFrame(
        [(9, 1, 2, 1.0), (9, 4, 2, 0.0)], "user_id int, movie_id int, because_movie_id int, similarity double"
    )
    assertDataFrameEqual(got.select(*expected.columns), expected, checkRowOrder=True)


def test_similar_movies_by_cosine_with_ties_and_without_itself(spark):
    factors = spark.createDataFrame(
        [(1, [1.0, 0.0]), (2, [3.0, 0.0]), (3, [1.0, 0.0]), (4, [1.0, 1.0]), (5, [0.0, 0.0]), (6, [-1.0, 0.0])],
        "movie_id int, features array<float>",
    )
    queries = spark.createDataFrame([(1,), (5,)], "movie_id int")
    candidates = factors.select("movie_id")
    got = similar_movies(factors, queries, candidates, n=3)
    expected = spark.createDataFrame(
        [(1, 1, 2, 1.0), (1, 2, 3, 1.0), (1, 3, 4, _cos([1, 0], [1, 1]))],
        "movie_id int, rank int, similar_movie_id int, similarity double",
    )
    # movie 5 has no direction: no neighbours; movie 6 (opposite) is last, beyond n.
    assertDataFrameEqual(got, expected, checkRowOrder=False, rtol=1e-6)


def test_similar_table_respects_min_ratings_and_names_movies(spark):
    catalog = tiny_catalog(spark)
    queries = spark.createDataFrame([(10,)], "movie_id int")
    got = similar_table(tiny_model(spark), queries, catalog, n=10, min_ratings=20).toPandas()
    # 30 has 5 ratings; 50 and 60 have no factors; 10 is the query itself.
    assert list(got.similar_movie_id) == sorted(
        [20, 40, 70, 80], key=lambda m: (-round(_cos(ITEM_FACTORS[10], ITEM_FACTORS[m]), 9), m)
    )
    assert got.loc[got.similar_movie_id == 40, "title"].item() == "Alien"
    text = format_similar(got, "Matrix, The (1999)")
    assert text.splitlines()[0] == "Movies most like Matrix, The (1999)"
    assert "Alien (1979)" in text and "Horror|Sci-Fi" in text


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
