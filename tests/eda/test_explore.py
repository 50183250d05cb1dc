"""Exploration aggregates against small hand-built tables with known answers."""

from __future__ import annotations

import datetime as dt
import math
import random

import numpy as np
import pytest
from pyspark.sql import Row
from pyspark.sql.types import StructField, StructType
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.eda import explore as X
from movierec_spark.data import schemas
from movierec_spark.data.releases import HALF_STARS, WHOLE_STARS


def _nullable(schema: StructType) -> StructType:
    """The schema with every field nullable: what a damaged file could hold."""
    return StructType([StructField(f.name, f.dataType, True) for f in schema.fields])


@pytest.fixture(scope="module")
def make(spark):
    def _make(schema, rows):
        return spark.createDataFrame(rows, _nullable(schema))

    return _make


def ratings_of(make, triples, ts=0):
    """Ratings from (user, movie, rating) triples, all at timestamp ``ts``."""
    return make(schemas.RATINGS, [(u, m, float(r) if r is not None else None, ts) for u, m, r in triples])


def movies_of(make, rows):
    """Movies from (movie_id, title, year, genres) rows."""
    return make(schemas.MOVIES, rows)


# --- missing and bad data ---


def test_nulls_per_column_counts_null_and_nan(make):
    ratings = make(
        schemas.RATINGS,
        [(1, 10, 4.0, None), (2, None, float("nan"), 5), (3, 12, None, None), (4, 13, 2.0, 7)],
    )
    got = X.nulls_per_column(ratings, "ratings")
    assertDataFrameEqual(
        got,
        [
            Row(table="ratings", column=C.USER_ID, rows=4, nulls=0, null_share=0.0),
            Row(table="ratings", column=C.MOVIE_ID, rows=4, nulls=1, null_share=0.25),
            Row(table="ratings", column=C.RATING, rows=4, nulls=2, null_share=0.5),
            Row(table="ratings", column=C.TIMESTAMP, rows=4, nulls=2, null_share=0.5),
        ],
    )


def test_nulls_per_column_of_an_empty_table_has_no_share(make):
    got = X.nulls_per_column(make(schemas.USERS, []), "users").collect()
    assert [r[X.COLUMN] for r in got] == schemas.USERS.fieldNames()
    assert {(r[X.ROWS], r[X.NULLS], r[X.NULL_SHARE]) for r in got} == {(0, 0, None)}


def test_rejects_by_reason_most_frequent_first_ties_by_name(make):
    rejects = make(
        schemas.REJECTS,
        [
            ("ratings", "rating off scale", "1,2,7,0", "r.csv"),
            ("ratings", "bad user id", "x,2,3,0", "r.csv"),
            ("movies", "bad year", "5,T,Drama", "m.csv"),
            ("ratings", "rating off scale", "1,3,9,0", "r.csv"),
        ],
    )
    assertDataFrameEqual(
        X.rejects_by_reason(rejects),
        [
            Row(table="ratings", reason="rating off scale", rows=2),
            Row(table="movies", reason="bad year", rows=1),
            Row(table="ratings", reason="bad user id", rows=1),
        ],
        checkRowOrder=True,
    )
    assert X.rejects_by_reason(make(schemas.REJECTS, [])).count() == 0


def test_duplicate_pairs_lists_only_repeated_pairs_with_their_range(make):
    ratings = ratings_of(make, [(1, 10, 3), (1, 10, 5), (1, 11, 4), (2, 10, 4), (2, 10, 4), (2, 10, 2)])
    assertDataFrameEqual(
        X.duplicate_pairs(ratings),
        [
            Row(user_id=2, movie_id=10, copies=3, min_rating=2.0, max_rating=4.0),
            Row(user_id=1, movie_id=10, copies=2, min_rating=3.0, max_rating=5.0),
        ],
        checkRowOrder=True,
    )


def test_never_rated_and_rated_but_missing_movies(make):
    movies = movies_of(make, [(10, "A", 1990, ["Drama"]), (11, "B", None, None), (12, "C", 2001, [])])
    ratings = ratings_of(make, [(1, 10, 4), (1, 99, 3), (2, 99, 5), (3, 98, 1)])
    assert [r[C.MOVIE_ID] for r in X.never_rated_movies(ratings, movies).collect()] == [11, 12]
    assertDataFrameEqual(
        X.rated_but_missing_movies(ratings, movies),
        [Row(movie_id=99, ratings=2, users=2), Row(movie_id=98, ratings=1, users=1)],
        checkRowOrder=True,
    )


def test_support_filter_one_pass(make):
    # user 1: 3 ratings, user 2: 2, user 3: 1; movie 10: 3, movie 11: 2, movie 12: 1
    ratings = ratings_of(make, [(1, 10, 4), (1, 11, 4), (1, 12, 4), (2, 10, 3), (2, 11, 3), (3, 10, 5)])
    got = {r[X.ENTITY]: r for r in X.support_filter(ratings, 2, 3).collect()}
    # Users below 2: user 3. Movies below 3: 11 and 12. A rating goes when its
    # user or its movie is below: (1,11) (1,12) (2,11) (3,10) -> 4 of 6.
    assert (got["users"][X.TOTAL], got["users"][X.REMOVED], got["users"][X.KEPT]) == (3, 1, 2)
    assert (got["movies"][X.TOTAL], got["movies"][X.REMOVED]) == (3, 2)
    assert (got["ratings"][X.TOTAL], got["ratings"][X.REMOVED], got["ratings"][X.KEPT]) == (6, 4, 2)
    assert got["ratings"][X.REMOVED_SHARE] == pytest.approx(4 / 6)
    nothing = {r[X.ENTITY]: r[X.REMOVED] for r in X.support_filter(ratings, 0, 1).collect()}
    assert nothing == {"users": 0, "movies": 0, "ratings": 0}


def test_support_filter_of_no_ratings(make):
    got = X.support_filter(ratings_of(make, []), 5, 5).collect()
    assert {(r[X.ENTITY], r[X.TOTAL], r[X.REMOVED], r[X.REMOVED_SHARE]) for r in got} == {
        ("users", 0, 0, None),
        ("movies", 0, 0, None),
        ("ratings", 0, 0, None),
    }


# --- ratings ---


def test_rating_distribution_covers_the_scale_and_flags_off_scale_values(make):
    ratings = ratings_of(make, [(1, 1, 5), (2, 1, 5), (3, 1, 3), (4, 1, 3.5), (5, 1, None)])
    got = X.rating_distribution(ratings, WHOLE_STARS)
    assertDataFrameEqual(
        got,
        [
            Row(rating=1.0, on_scale=True, ratings=0, share=0.0),
            Row(rating=2.0, on_scale=True, ratings=0, share=0.0),
            Row(rating=3.0, on_scale=True, ratings=1, share=0.25),
            Row(rating=3.5, on_scale=False, ratings=1, share=0.25),
            Row(rating=4.0, on_scale=True, ratings=0, share=0.0),
            Row(rating=5.0, on_scale=True, ratings=2, share=0.5),
        ],
        checkRowOrder=True,
    )


def test_rating_distribution_of_no_ratings_is_all_zero(make):
    got = X.rating_distribution(ratings_of(make, []), HALF_STARS).collect()
    assert [r[C.RATING] for r in got] == HALF_STARS.values()
    assert {(r[X.RATINGS], r[X.SHARE]) for r in got} == {(0, None)}


def test_count_quantiles_match_numpy_per_entity(spark):
    rng = random.Random(7)
    per_user = [rng.choice([1, 2, 2, 3, 7, 7, 7, 40]) for _ in range(37)]
    per_movie = [rng.randint(1, 500) for _ in range(20)]
    hist = _hist(spark, "users", per_user).unionByName(_hist(spark, "movies", per_movie))
    probs = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
    rows = X.count_quantiles(hist, probs).collect()
    assert [r[X.ENTITY] for r in rows] == ["users", "movies"]
    for row, values in zip(rows, (per_user, per_movie)):
        got = [row["p0"], row["p10"], row["p25"], row["median"], row["p75"], row["p90"], row["p99"], row["p100"]]
        assert got == pytest.approx(list(np.quantile(values, probs)))
        assert (row["count"], row["min"], row["max"]) == (len(values), min(values), max(values))
        assert row["mean"] == pytest.approx(np.mean(values))


def test_rating_summary_against_plain_python(make):
    triples = [(1, 10, 4), (1, 11, 3), (2, 10, 5), (3, 12, 4.5), (3, 10, 1), (3, 11, 4)]
    ratings = make(
        schemas.RATINGS, [(u, m, float(r), 1_000_000_000 + i * 86_400) for i, (u, m, r) in enumerate(triples)]
    )
    movies = movies_of(make, [(m, str(m), None, None) for m in (10, 11, 12, 13)])
    row = X.rating_summary(ratings, movies).collect()[0]
    values = [float(r) for _, _, r in triples]
    assert sorted(values)[2:4] == [4.0, 4.0]
    assert (row[X.RATINGS], row[X.USERS], row[X.MOVIES], row["catalog_movies"]) == (6, 3, 3, 4)
    assert row["density"] == pytest.approx(6 / 9)
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["stddev"] == pytest.approx(np.std(values, ddof=1))
    assert row["median"] == np.median(values)
    # An even count with different middle values: the median lies between them.
    two = ratings_of(make, [(1, 1, 3), (1, 2, 4)])
    assert X.rating_summary(two).collect()[0]["median"] == 3.5
    assert (row["min"], row["max"]) == (1.0, 5.0)
    assert row["first_rated"] == dt.datetime(2001, 9, 9, 1, 46, 40)
    assert row["last_rated"] == dt.datetime(2001, 9, 14, 1, 46, 40)


def test_rating_summary_of_no_ratings_is_one_row_of_zeros_and_nulls(make):
    rows = X.rating_summary(ratings_of(make, [])).collect()
    assert len(rows) == 1
    row = rows[0]
    assert (row[X.RATINGS], row[X.USERS], row["density"], row["median"], row["mean"]) == (0, 0, None, None, None)


def test_count_quantiles_and_histogram(make):
    # user u has u ratings for u = 1..10 (55 ratings)
    ratings = ratings_of(make, [(u, m, 3) for u in range(1, 11) for m in range(u)])
    counts = X.user_counts(ratings)
    hist = X.count_histogram(counts, "users")
    row = X.count_quantiles(hist, [0.1, 0.5, 0.9]).collect()[0]
    assert row.asDict() == pytest.approx(
        {X.ENTITY: "users", "count": 10, "min": 1, "p10": 1.9, "median": 5.5, "p90": 9.1, "max": 10, "mean": 5.5}
    )
    rows = hist.collect()
    assert [(r[X.PER_ENTITY], r[X.ENTITIES]) for r in rows] == [(n, 1) for n in range(1, 11)]


# --- long tail ---


def _hist(spark, entity, per_entity):
    counts = spark.createDataFrame([(i, n) for i, n in enumerate(per_entity)], f"{C.MOVIE_ID} int, {X.RATINGS} long")
    return X.count_histogram(counts, entity)


@pytest.fixture(scope="module")
def skewed_counts(spark):
    """Ten movies: counts 5, 5, 3 and seven 1s (20 ratings); two ties."""
    per_movie = [5, 5, 3, 1, 1, 1, 1, 1, 1, 1]
    return per_movie, _hist(spark, "movies", per_movie)


def test_top_shares_split_tied_groups_exactly(skewed_counts):
    per_movie, counts = skewed_counts
    got = X.top_shares(counts, [0.1, 0.2, 0.25, 0.5, 1.0]).collect()
    ranked = sorted(per_movie, reverse=True)
    for row in got:
        k = math.ceil(row[X.TOP_SHARE] * len(per_movie) - 1e-9)
        assert row[X.ENTITIES] == k
        assert row[X.RATINGS] == sum(ranked[:k])
        assert row[X.RATING_SHARE] == pytest.approx(sum(ranked[:k]) / sum(per_movie))
    assert [(r[X.ENTITIES], r[X.RATINGS]) for r in got] == [(1, 5), (2, 10), (3, 13), (5, 15), (10, 20)]


def test_top_shares_take_at_least_one_and_keep_entities_apart(spark):
    hist = _hist(spark, "movies", [4, 1]).unionByName(_hist(spark, "users", [1, 1, 1, 2]))
    got = [(r[X.ENTITY], r[X.ENTITIES], r[X.RATINGS], r[X.RATING_SHARE]) for r in X.top_shares(hist, [0.01]).collect()]
    assert got == [("users", 1, 2, 0.4), ("movies", 1, 4, 0.8)]


def test_lorenz_points_and_gini_match_the_sample_formula(skewed_counts):
    per_movie, counts = skewed_counts
    points = X.lorenz_points(counts).collect()
    assert [r[X.ENTITY_SHARE] for r in points] == pytest.approx([0.0, 0.7, 0.8, 1.0])
    assert [r[X.RATING_SHARE] for r in points] == pytest.approx([0.0, 7 / 20, 10 / 20, 1.0])
    xs = sorted(per_movie)
    n = len(xs)
    expected_gini = 2 * sum((i + 1) * x for i, x in enumerate(xs)) / (n * sum(xs)) - (n + 1) / n
    assert X.gini(counts).collect()[0][X.GINI] == pytest.approx(expected_gini)


def test_gini_is_zero_when_equal_and_computed_per_entity(spark, skewed_counts):
    _, movies = skewed_counts
    hist = movies.unionByName(_hist(spark, "users", [4] * 5))
    got = {r[X.ENTITY]: r[X.GINI] for r in X.gini(hist).collect()}
    assert got["users"] == pytest.approx(0.0)
    assert got["movies"] > 0.3


def test_long_tail_of_no_ratings_is_empty(spark):
    hist = _hist(spark, "movies", [])
    assert X.top_shares(hist).count() == 0
    assert X.lorenz_points(hist).count() == 0
    assert X.gini(hist).count() == 0
    assert X.count_quantiles(hist).count() == 0


# --- movies ---


@pytest.fixture(scope="module")
def film_ratings(make):
    """Movie 1: one 5-star. Movie 2: twenty 4.5s. Movies 3 and 4: tied at 4.0 x 5.

    Movie 5 (thirty 1-star ratings, not in the catalogue) pulls the global
    mean down to about 2.95.
    """
    triples = [(1, 1, 5.0)]
    triples += [(100 + u, 2, 4.5) for u in range(20)]
    triples += [(200 + u, m, 4.0) for m in (3, 4) for u in range(5)]
    triples += [(300 + u, 5, 1.0) for u in range(30)]
    movies = movies_of(
        make,
        [(1, "One Hit", 2000, ["Drama"]), (2, "Classic", 1972, ["Crime", "Drama"]),
         (3, "Twin A", 1999, None), (4, "Twin B", 1999, []), (6, "Unseen", 2010, ["Drama"])],
    )
    return triples, ratings_of(make, triples), movies


def test_damped_mean_keeps_a_single_five_star_off_the_top(film_ratings):
    triples, ratings, movies = film_ratings
    stats = X.movie_stats(ratings, movies, damping=10.0)
    mu = sum(r for *_, r in triples) / len(triples)
    best = X.best_rated(stats, 3).collect()
    assert [r[C.MOVIE_ID] for r in best] == [2, 3, 4]  # 3 and 4 tie: lower id first
    assert [r[C.RANK] for r in best] == [1, 2, 3]
    assert best[0][X.DAMPED_MEAN] == pytest.approx((20 * 4.5 + 10 * mu) / 30)
    one_hit = stats.filter(f"{C.MOVIE_ID} = 1").collect()[0]
    assert one_hit[X.DAMPED_MEAN] == pytest.approx((5.0 + 10 * mu) / 11)
    assert one_hit[X.MEAN_RATING] == 5.0
    # Without damping the single 5-star would win: the damping is what matters.
    undamped = X.best_rated(X.movie_stats(ratings, movies, damping=0.0), 1).collect()
    assert undamped[0][C.MOVIE_ID] == 1


def test_most_rated_ties_by_id_and_keeps_movies_missing_from_the_catalogue(film_ratings):
    _, ratings, movies = film_ratings
    top = X.most_rated(X.movie_stats(ratings, movies, damping=5.0), 4).collect()
    assert [(r[C.RANK], r[C.MOVIE_ID], r[X.RATINGS]) for r in top] == [(1, 5, 30), (2, 2, 20), (3, 3, 5), (4, 4, 5)]
    assert top[2][C.TITLE] == "Twin A" and top[0][C.TITLE] is None


def test_genre_stats_count_catalogue_movies_and_weight_means_by_ratings(film_ratings):
    _, ratings, movies = film_ratings
    assertDataFrameEqual(
        X.genre_stats(ratings, movies),
        [
            Row(genre="Drama", movies=3, ratings=21, mean_rating=(5.0 + 20 * 4.5) / 21),
            Row(genre="Crime", movies=1, ratings=20, mean_rating=4.5),
            Row(genre=X.NO_GENRE, movies=2, ratings=10, mean_rating=4.0),
        ],
        checkRowOrder=True,
    )


def test_ratings_by_release_year_with_unknown_years(film_ratings):
    _, ratings, movies = film_ratings
    assertDataFrameEqual(
        X.ratings_by_release_year(ratings, movies),
        [
            Row(year=None, movies=1, ratings=30, mean_rating=1.0),  # movie 5 is not in the catalogue
            Row(year=1972, movies=1, ratings=20, mean_rating=4.5),
            Row(year=1999, movies=2, ratings=10, mean_rating=4.0),
            Row(year=2000, movies=1, ratings=1, mean_rating=5.0),
        ],
        checkRowOrder=True,
    )


# --- time ---


def test_ratings_by_month_in_utc_with_a_missing_timestamp(spark, make):
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"  # conf/spark-defaults.conf
    jan_end = int(dt.datetime(2018, 1, 31, 23, 59, 59, tzinfo=dt.timezone.utc).timestamp())
    feb_start = jan_end + 1
    ratings = make(
        schemas.RATINGS,
        [(1, 1, 4.0, jan_end), (2, 1, 2.0, jan_end), (1, 2, 5.0, feb_start), (3, 3, 3.0, None)],
    )
    assertDataFrameEqual(
        X.ratings_by_period(ratings, "month"),
        [
            Row(period=None, ratings=1, users=1, mean_rating=3.0, stddev_rating=None),
            Row(period=dt.date(2018, 1, 1), ratings=2, users=2, mean_rating=3.0, stddev_rating=math.sqrt(2)),
            Row(period=dt.date(2018, 2, 1), ratings=1, users=1, mean_rating=5.0, stddev_rating=None),
        ],
        checkRowOrder=True,
    )
    years = X.ratings_by_period(ratings, "year").collect()
    assert [(r[X.PERIOD], r[X.RATINGS]) for r in years] == [(None, 1), (dt.date(2018, 1, 1), 3)]


# --- users ---


def test_age_groups_fit_exact_ages_and_ml1m_codes(make):
    users = make(
        schemas.USERS,
        [(1, "M", 7, "student", None), (2, "F", 18, "writer", None), (3, "F", 24, None, None),
         (4, "M", 56, "retired", None), (5, "M", 73, "retired", None), (6, None, None, "writer", None),
         (7, "F", 1, "K-12 student", None)],
    )
    ratings = ratings_of(make, [(1, 1, 2), (2, 1, 4), (3, 1, 5), (4, 1, 3), (4, 2, 4), (5, 1, 1)])
    age = X.demographic_breakdown(users, ratings, C.AGE).collect()
    assert [(r[X.GROUP], r[X.USERS], r[X.RATINGS]) for r in age] == [
        ("under 18", 2, 1), ("18-24", 2, 2), ("56+", 2, 3), (X.UNKNOWN, 1, 0)
    ]
    assert age[1][X.MEAN_RATING] == pytest.approx(4.5)
    assert age[3][X.MEAN_RATING] is None  # nobody in it rated anything
    assert sum(r[X.USER_SHARE] for r in age) == pytest.approx(1.0)
    gender = X.demographic_breakdown(users, ratings, C.GENDER).collect()
    assert [(r[X.GROUP], r[X.USERS]) for r in gender] == [("F", 3), ("M", 3), (X.UNKNOWN, 1)]


@pytest.mark.parametrize(
    "call",
    [
        lambda r, m: X.support_filter(r, -1, 2),
        lambda r, m: X.movie_stats(r, m, damping=-1.0),
        lambda r, m: X.most_rated(X.movie_stats(r, m, 1.0), 0),
        lambda r, m: X.ratings_by_period(r, "week"),
        lambda r, m: X.top_shares(X.count_histogram(X.movie_counts(r), "movies"), [0.0]),
        lambda r, m: X.count_quantiles(X.count_histogram(X.user_counts(r), "users"), [0.5, 0.5]),
        lambda r, m: X.demographic_breakdown(m, r, "zip_code"),
    ],
)
def test_bad_arguments_are_user_errors(make, call):
    with pytest.raises(MovieRecError):
        call(ratings_of(make, []), movies_of(make, []))
