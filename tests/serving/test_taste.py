"""Taste match: profiles of liked movies, the cosine, and the ranking boost."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movierec_spark import columns as C
from movierec_spark.serving.taste import movie_features, taste_match
from movierec_spark.serving.topn_all import rank_block


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


@pytest.fixture(scope="module")
def features(catalog):
    """Each movie's feature list, by movie id (rows 0-5 are movies 1-6)."""
    return [list(r[1]) for r in movie_features(catalog).orderBy(C.MOVIE_ID).collect()]


def test_features_profiles_and_match(features):
    assert set(features[1]) == {"Horror", "Comedy", "decade 1980"} and features[4] == []
    # User 0 liked movies 1 and 2 (a repeat counts once): profile Horror 1, Comedy 0.5, decade 1980 1,
    # norm 1.5. User 1 liked nothing.
    liked = [np.array([0, 1, 1]), np.array([], dtype=int)]
    got = taste_match(features, liked, np.array([2, 3, 4, 5]))
    assert got.shape == (2, 4)
    assert got[0, 0] == pytest.approx((1.0 + 1.0) / (1.5 * math.sqrt(2)))  # movie 3: Horror, decade 1980
    assert got[0, 3] == pytest.approx((0.5 + 1.0) / (1.5 * math.sqrt(2)))  # movie 6: Comedy, decade 1980
    assert got[0, 1] == 0.0 and got[0, 2] == 0.0  # nothing shared; no features at all
    assert (got[1] == 0.0).all()  # a user who liked nothing
    assert taste_match(features, liked).shape == (2, 6)  # every movie by default


def test_boost_reorders_the_ranking_but_not_the_predictions(features):
    # Movies 3-6 with fixed scores (their bias; no factors, mean 0), the user liked 1 and 2 (seen).
    scores = np.array([[3.5, 4.4, 4.0, 3.0]])
    ids = np.array([3, 4, 5, 6])
    match = taste_match(features, [np.array([0, 1])], np.array([2, 3, 4, 5]))

    def ranked(boost):
        rows, cols, ranks, prediction = rank_block(np.zeros(1), [None], [[1, 2]], ids, scores, 4, 0.0, (0.5, 5.0),
                                                   boost=boost)
        return list(ids[cols]), dict(zip(ids[cols].tolist(), prediction.tolist()))

    plain, predictions = ranked(None)
    assert plain == [4, 5, 3, 6]
    # 3: 3.5 + 0.943 = 4.44 > 4: 4.4 + 0 > 6: 3.0 + 0.707 = 3.71 < 5: 4.0
    boosted, boosted_predictions = ranked(1.0 * match)
    assert boosted == [3, 4, 5, 6]
    assert boosted_predictions == predictions == {3: 3.5, 4: 4.4, 5: 4.0, 6: 3.0}
    assert ranked(0.0 * match)[0] == plain
