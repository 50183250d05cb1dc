"""Taste match: profiles of liked movies, the cosine, and the ranking boost."""

from __future__ import annotations

import math

import pytest

from movierec_spark import columns as C
from movierec_spark.recommend import top_n_unseen
from movierec_spark.taste import ContentBoost, movie_features, taste_profiles, with_match


@pytest.fixture(scope="module")
def catalog(spark):
    return spark.createDataFrame(
        [
            (1, "A", 1980, ["Horror"]),
            (2, "B", 1985, ["Horror", "Comedy"]),
            (3, "C", 1981, ["Horror"]),
            (4, "D", 1950, ["Drama"]),
            (5, "E", None, []),
            (6, "F", 1989, ["Comedy"]),
        ],
        "movie_id int, title string, year int, genres array<string>",
    )


class FixedScores:
    """A scorer with a given score per movie (the prediction is the score clipped to 5)."""

    als = None

    def __init__(self, spark, scores):
        self.scores = spark.createDataFrame(list(scores.items()), "movie_id int, _s double")

    def predict(self, pairs, score_col=None):
        from pyspark.sql import functions as F

        out = pairs.join(self.scores, on=C.MOVIE_ID, how="left")
        out = out.withColumn(C.PREDICTION, F.least(F.col("_s"), F.lit(5.0)))
        if score_col:
            out = out.withColumn(score_col, F.col("_s"))
        return out.drop("_s")


def test_features_profiles_and_match(spark, catalog):
    features = {r.movie_id: set(r[1]) for r in movie_features(catalog).collect()}
    assert features[2] == {"Horror", "Comedy", "decade 1980"} and features[5] == set()
    liked = spark.createDataFrame([(7, 1), (7, 2), (7, 2)], "user_id int, movie_id int")  # a repeat counts once
    profile = taste_profiles(liked, movie_features(catalog)).first()
    assert profile[C.USER_ID] == 7
    assert profile["_profile"] == {"Horror": 1.0, "Comedy": 0.5, "decade 1980": 1.0}
    assert profile["_profile_norm"] == pytest.approx(1.5)
    pairs = spark.createDataFrame([(7, m) for m in (3, 4, 5, 6)] + [(8, 3)], "user_id int, movie_id int")
    got = {(r.user_id, r.movie_id): r.match for r in with_match(pairs, taste_profiles(liked, movie_features(catalog)),
                                                                   movie_features(catalog)).collect()}
    assert got[(7, 3)] == pytest.approx((1.0 + 1.0) / (1.5 * math.sqrt(2)))
    assert got[(7, 6)] == pytest.approx((0.5 + 1.0) / (1.5 * math.sqrt(2)))
    assert got[(7, 4)] == 0.0 and got[(7, 5)] == 0.0  # nothing shared; no features at all
    assert got[(8, 3)] == 0.0  # a user who liked nothing


def test_boost_reorders_the_ranking_but_not_the_predictions(spark, catalog):
    liked = spark.createDataFrame([(7, 1), (7, 2)], "user_id int, movie_id int")
    features = movie_features(catalog)
    profiles = taste_profiles(liked, features)
    scorer = FixedScores(spark, {3: 3.5, 4: 4.4, 5: 4.0, 6: 3.0})
    users = spark.createDataFrame([(7,)], "user_id int")
    candidates = catalog.select(C.MOVIE_ID)
    seen = liked
    plain = top_n_unseen(scorer, users, candidates, seen, 4).orderBy(C.RANK).collect()
    assert [r.movie_id for r in plain] == [4, 5, 3, 6]
    boosted = top_n_unseen(ContentBoost(scorer, profiles, features, 1.0), users, candidates, seen, 4)
    rows = boosted.orderBy(C.RANK).collect()
    # 3: 3.5 + 0.943 = 4.44 > 4: 4.4 + 0 > 6: 3.0 + 0.707 = 3.71 < 5: 4.0
    assert [r.movie_id for r in rows] == [3, 4, 5, 6]
    assert {r.movie_id: r.prediction for r in rows} == {3: 3.5, 4: 4.4, 5: 4.0, 6: 3.0}
    none = top_n_unseen(ContentBoost(scorer, profiles, features, 0.0), users, candidates, seen, 4)
    assert [r.movie_id for r in none.orderBy(C.RANK).collect()] == [4, 5, 3, 6]
