"""Synthetic MovieLens: exact sizes, no repeated pair, MovieLens-like skew, learnable taste."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.data import schemas
from movierec_spark.data.synthetic import (
    GENRES,
    SCALE,
    SyntheticSpec,
    activity_curve,
    generate,
    validate_spec,
)

# Many movies per user, so the popularity skew has room to show.
SMALL = SyntheticSpec(ratings=12_000, users=150, movies=1_500, seed=3)


@pytest.fixture(scope="module")
def small(spark):
    data = generate(spark, SMALL)
    return data.ratings.toPandas(), data.movies.toPandas()


def _names_and_types(schema):
    return [(f.name, f.dataType) for f in schema.fields]


# --- the activity curve: driver-side arithmetic, no Spark ---


@pytest.mark.parametrize(
    "spec",
    [SMALL, SyntheticSpec(), SyntheticSpec(ratings=1_000_000, users=6_500, movies=3_700)],
    ids=["small", "ml-25m", "1m"],
)
def test_activity_curve_adds_up_and_respects_the_per_user_cap(spec):
    curve = activity_curve(spec)
    assert curve.users * curve.integral(1.0) == pytest.approx(curve.extra, rel=1e-9)
    # The busiest user (the first 1/U of the curve) stays under the cap.
    busiest = curve.n_min + curve.users * curve.integral(1.0 / curve.users) + 1
    assert busiest <= spec.max_user_ratings


@pytest.mark.parametrize(
    "spec, message",
    [
        (SyntheticSpec(ratings=10, users=20, movies=100), "at least --users"),
        (SyntheticSpec(ratings=10_000, users=10, movies=100), "do not fit"),
        (SyntheticSpec(ratings=100, users=10, movies=1), r"\[synthetic\] movies must be from 2"),
        (SyntheticSpec(ratings=100, users=0, movies=10), r"\[synthetic\] users must be from 1"),
    ],
)
def test_impossible_sizes_are_refused_with_a_reason(spec, message):
    with pytest.raises(MovieRecError, match=message):
        validate_spec(spec)


# --- the tables ---


def test_schemas_match_the_ingested_tables(spark):
    data = generate(spark, SMALL)
    assert _names_and_types(data.ratings.schema) == _names_and_types(schemas.RATINGS)
    assert _names_and_types(data.movies.schema) == _names_and_types(schemas.MOVIES)


def test_exact_counts_ids_and_no_repeated_pair(small):
    ratings, movies = small
    assert len(ratings) == SMALL.ratings
    assert not ratings.duplicated([C.USER_ID, C.MOVIE_ID]).any()
    assert set(ratings[C.USER_ID]) == set(range(1, SMALL.users + 1))
    assert ratings[C.MOVIE_ID].between(1, SMALL.movies).all()
    assert sorted(movies[C.MOVIE_ID]) == list(range(1, SMALL.movies + 1))
    assert ratings[C.USER_ID].value_counts().min() >= SMALL.min_user_ratings
    assert ratings.notna().all().all()


def test_ratings_are_on_the_half_star_scale_with_mostly_whole_stars(small):
    ratings, _ = small
    assert set(ratings[C.RATING].round(4)) <= set(SCALE.values())
    whole = (ratings[C.RATING] % 1 == 0).mean()
    assert 0.55 < whole < 0.95  # half the users never use half stars
    assert 3.0 < ratings[C.RATING].mean() < 4.0
    assert ratings[C.RATING].std() > 0.7


def test_timestamps_fall_in_movielens_years(small):
    ratings, _ = small
    years = pd.to_datetime(ratings[C.TIMESTAMP], unit="s").dt.year
    assert years.min() >= 1995 and years.max() <= 2019
    assert years.nunique() > 15


def test_ratings_come_in_sessions_like_movielens(small):
    ratings, _ = small
    user_days = ratings.groupby([ratings[C.USER_ID], ratings[C.TIMESTAMP] // 86400]).ngroups
    # ml-latest-small: 16.4 ratings per (user, day); ml-100k: 39.8. Uniform
    # timestamps over each user's active period give close to 1.
    per_user_day = len(ratings) / user_days
    assert 8 < per_user_day < 40
    # Every user still has at least one session, and heavy users several.
    days_per_user = ratings.groupby(C.USER_ID)[C.TIMESTAMP].apply(lambda t: (t // 86400).nunique())
    assert days_per_user.min() >= 1 and days_per_user.max() > 3


def test_movies_have_titles_years_and_known_genres(small):
    _, movies = small
    assert movies[C.TITLE].is_unique
    assert movies[C.YEAR].between(1902, 2019).all()
    genres = movies[C.GENRES].map(list)
    assert genres.map(len).between(1, 3).all()
    assert set(g for gs in genres for g in gs) <= set(GENRES)
    assert (genres.map(sorted) == genres).all()


def test_activity_and_popularity_are_skewed_like_movielens(small):
    ratings, _ = small
    per_movie = ratings[C.MOVIE_ID].value_counts()
    per_user = ratings[C.USER_ID].value_counts()
    top_movies = per_movie.iloc[: SMALL.movies // 10].sum() / len(ratings)
    top_users = per_user.iloc[: SMALL.users // 10].sum() / len(ratings)
    # ml-latest-small: the top 10% of movies get 60% of the ratings, the
    # top 10% of users give 48%. A uniform draw would give about 10%.
    assert top_movies > 0.5
    assert top_users > 0.3
    assert per_user.max() > 5 * per_user.median()
    # The most popular movie is rated by many users, but not by all.
    assert 0.3 < per_movie.max() / SMALL.users <= 0.95


def test_same_seed_same_tables_whatever_the_partitioning(spark, small):
    ratings, movies = small
    again = generate(spark, SMALL, partitions=3)
    assert again.ratings.rdd.getNumPartitions() == 3
    assertDataFrameEqual(again.ratings, spark.createDataFrame(ratings, schemas.RATINGS))
    assertDataFrameEqual(again.movies.drop(C.GENRES), spark.createDataFrame(movies.drop(columns=[C.GENRES])))


def test_another_seed_gives_other_ratings(spark, small):
    ratings, _ = small
    other = generate(spark, SyntheticSpec(**{**SMALL.as_dict(), "seed": 4})).ratings.toPandas()
    assert len(other) == len(ratings)
    merged = ratings.merge(other, on=[C.USER_ID, C.MOVIE_ID], how="outer", indicator=True)
    assert (merged["_merge"] != "both").mean() > 0.3


@pytest.mark.parametrize(
    "ratings, users, movies",
    [
        (40, 40, 10),  # one rating each
        (400, 20, 50),  # exactly the minimum of 20 each: no extra to spread
        (None, 30, 40),  # the most that fits: heavy users rate 90% of the movies
        (500, 1, 600),  # a single user
    ],
)
def test_edge_shapes_are_exact_and_never_repeat_a_pair(spark, ratings, users, movies):
    spec = SyntheticSpec(ratings=ratings or 1, users=users, movies=movies, seed=11)
    if ratings is None:
        spec = SyntheticSpec(ratings=spec.max_ratings, users=users, movies=movies, seed=11)
    got = generate(spark, spec).ratings.groupBy(C.USER_ID).agg(
        F.count("*").alias("n"), F.countDistinct(C.MOVIE_ID).alias("distinct"), F.max(C.MOVIE_ID).alias("top")
    )
    stats = got.agg(F.sum("n"), F.sum("distinct"), F.count("*"), F.max("n"), F.max("top")).first()
    assert stats[0] == spec.ratings
    assert stats[1] == spec.ratings  # distinct per user: no pair twice
    assert stats[2] == users
    assert stats[3] <= spec.max_user_ratings and stats[4] <= movies


@pytest.mark.slow
def test_als_learns_the_planted_taste_beyond_biases(spark):
    """ALS beats a damped-bias baseline clearly, as on real MovieLens."""
    from pyspark.ml.recommendation import ALS

    spec = SyntheticSpec(ratings=20_000, users=250, movies=500, seed=5)
    ratings = generate(spark, spec).ratings
    train, test = ratings.randomSplit([0.8, 0.2], seed=1)
    train, test = train.cache(), test.cache()

    mean = train.agg(F.avg(C.RATING)).first()[0]
    damping = 5.0
    item_bias = train.groupBy(C.MOVIE_ID).agg(
        (F.sum(F.col(C.RATING) - mean) / (F.count("*") + damping)).alias("bi")
    )
    user_bias = (
        train.join(item_bias, on=C.MOVIE_ID, how="inner")
        .groupBy(C.USER_ID)
        .agg((F.sum(F.col(C.RATING) - mean - F.col("bi")) / (F.count("*") + damping)).alias("bu"))
    )
    baseline = (
        test.join(item_bias, on=C.MOVIE_ID, how="left")
        .join(user_bias, on=C.USER_ID, how="left")
        .fillna(0.0, subset=["bi", "bu"])
        .select(((F.lit(mean) + F.col("bi") + F.col("bu") - F.col(C.RATING)) ** 2).alias("se"))
    )
    baseline_rmse = math.sqrt(baseline.agg(F.avg("se")).first()[0])

    als = ALS(
        rank=10, maxIter=10, regParam=0.1, seed=1, coldStartStrategy="drop", numUserBlocks=2, numItemBlocks=2,
        userCol=C.USER_ID, itemCol=C.MOVIE_ID, ratingCol=C.RATING,
    )  # fmt: skip
    predicted = als.fit(train).transform(test)
    als_rmse = math.sqrt(predicted.select(((F.col("prediction") - F.col(C.RATING)) ** 2).alias("se")).agg(F.avg("se")).first()[0])
    train.unpersist()
    test.unpersist()
    # The noise (sd 0.5) and star rounding put the floor near 0.55.
    print(f"ALS RMSE {als_rmse:.4f}, bias baseline {baseline_rmse:.4f}")
    assert als_rmse < 0.92 * baseline_rmse, (als_rmse, baseline_rmse)
    assert als_rmse > 0.5


# --- the job ---


def test_job_output_loads_like_an_ingested_release(spark, tmp_path):
    from jobs import generate_synthetic as job
    from movierec_spark.config import load_config, merge
    from movierec_spark.data.load import load_data

    out = tmp_path / "synthetic"
    cfg = merge(
        load_config(),
        {"synthetic": {"ratings": 600, "users": 20, "movies": 80, "seed": 2, "output_dir": str(out)}},
    )
    assert job.run(spark, cfg) == 0
    report = json.loads((out / "ingest_report.json").read_text())
    assert report["summary"]["ratings"] == 600 and report["summary"]["movies"] == 80
    assert report["tables"]["ratings"]["loaded"] == 600 and report["summary"]["rows_rejected"] == 0

    loaded = load_data(spark, {"ingested_dir": str(out)})
    assert loaded.name == "synthetic" and loaded.scale == SCALE
    assert loaded.ratings.count() == 600
    assert _names_and_types(loaded.ratings.schema) == _names_and_types(schemas.RATINGS)
    assert loaded.rejects.count() == 0
    rated = loaded.ratings.select(C.MOVIE_ID).distinct().count()
    assert report["summary"]["rated_movies"] == rated
    # Same seed, same output: a rerun replaces it with identical ratings.
    before = loaded.ratings.toPandas()
    assert job.run(spark, cfg) == 0
    assertDataFrameEqual(spark.read.parquet(str(out / "ratings")), spark.createDataFrame(before, schemas.RATINGS))


def test_job_refuses_bad_sizes_before_starting_spark(tmp_path, capsys):
    from jobs import generate_synthetic as job

    code = job.main(["--ratings", "5", "--users", "10", "--output", str(tmp_path / "x")])
    assert code == 2
    assert "at least --users" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert job.main(["--ratings", "50", "--users", "1"]) == 2
