"""Neighbourhood CF: similarities and predictions against a plain-Python kNN."""

from __future__ import annotations

import math

import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark.models.knn import (
    NEIGHBOURS,
    KNNModel,
    KNNParams,
    fit_knn,
    residuals,
    similarities,
)
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.data.releases import WHOLE_STARS

MU = 3.4
USER_BIAS = {1: 0.3, 2: -0.4, 3: 0.1, 4: 0.6, 5: -0.2}
ITEM_BIAS = {10: 0.5, 20: -0.3, 30: 0.2, 40: -0.6, 50: 0.0}
# (user, movie, rating): 5 users, 5 movies, varied overlaps so that some pairs
# share one rater, some several, and some similarities come out negative.
RATINGS = [
    (1, 10, 5.0), (1, 20, 3.0), (1, 30, 4.0), (1, 40, 1.0),
    (2, 10, 4.0), (2, 20, 2.0), (2, 40, 3.0), (2, 50, 2.0),
    (3, 10, 2.0), (3, 30, 5.0), (3, 40, 4.0), (3, 50, 3.0),
    (4, 20, 5.0), (4, 30, 4.0), (4, 50, 5.0),
    (5, 10, 3.0), (5, 20, 4.0), (5, 30, 1.0), (5, 40, 2.0), (5, 50, 4.0),
]  # fmt: skip
# Pairs to predict: known users and movies, a rated pair, a duplicate, an
# unseen movie (60) and an unseen user (9).
PAIRS = [(1, 50), (2, 30), (3, 20), (4, 10), (4, 40), (1, 10), (1, 50), (4, 60), (9, 20)]


def base(u: int, i: int) -> float:
    return MU + USER_BIAS.get(u, 0.0) + ITEM_BIAS.get(i, 0.0)


def reference_similarities(params: KNNParams) -> dict[tuple[int, int], float]:
    """The shrunk positive similarities, straight from the definitions."""
    item_based = params.kind == "item"
    profiles: dict[int, dict[int, float]] = {}  # key -> {over: value}
    for u, i, r in RATINGS:
        key, over = (i, u) if item_based else (u, i)
        value = r - base(u, i) if params.similarity == "pearson_baseline" else r
        profiles.setdefault(key, {})[over] = value
    sims = {}
    for a in profiles:
        for b in profiles:
            common = sorted(set(profiles[a]) & set(profiles[b]))
            n = len(common)
            if a == b or n < params.min_support:
                continue
            xs = [profiles[a][o] for o in common]
            ys = [profiles[b][o] for o in common]
            if params.similarity == "pearson":
                mx, my = sum(xs) / n, sum(ys) / n
                xs, ys = [x - mx for x in xs], [y - my for y in ys]
            norm = math.sqrt(sum(x * x for x in xs) * sum(y * y for y in ys))
            raw = sum(x * y for x, y in zip(xs, ys)) / norm if norm > 1e-6 else 0.0
            shrunk = raw * n / (n + params.shrinkage)
            if shrunk > 0:
                sims[(a, b)] = shrunk
    return sims


def reference_predict(params: KNNParams, u: int, i: int) -> tuple[float, int]:
    """(prediction, neighbours used) by the formula in the module docstring."""
    sims = reference_similarities(params)
    rated = {(uu, ii): r for uu, ii, r in RATINGS}
    if params.kind == "item":
        cands = [(sims[(i, j)], j, r - base(u, j)) for (uu, j), r in rated.items() if uu == u and (i, j) in sims]
    else:
        cands = [(sims[(u, v)], v, r - base(v, i)) for (v, ii), r in rated.items() if ii == i and (u, v) in sims]
    top = sorted(cands, key=lambda c: (-c[0], c[1]))[: params.k]
    pred = base(u, i)
    if top:
        pred += sum(s * e for s, _, e in top) / sum(abs(s) for s, _, _ in top)
    return min(max(pred, WHOLE_STARS.low), WHOLE_STARS.high), len(top)


@pytest.fixture(scope="module")
def baseline(spark):
    return RecommenderModel(
        global_mean=MU,
        user_bias=spark.createDataFrame(list(USER_BIAS.items()), "user_id int, user_bias double"),
        item_bias=spark.createDataFrame(list(ITEM_BIAS.items()), "movie_id int, item_bias double"),
        als=None,
        scale=WHOLE_STARS,
    )


@pytest.fixture(scope="module")
def ratings(spark):
    return spark.createDataFrame(RATINGS, "user_id int, movie_id int, rating float")


@pytest.fixture(scope="module")
def pairs(spark):
    # An extra column rides along and must come back untouched.
    return spark.createDataFrame(
        [(u, i, f"row{n}") for n, (u, i) in enumerate(PAIRS)], "user_id int, movie_id int, tag string"
    )


CASES = [
    KNNParams(kind="item", similarity="pearson_baseline", k=40, shrinkage=100.0),
    KNNParams(kind="item", similarity="pearson", k=2, shrinkage=1.0, min_support=2),
    KNNParams(kind="item", similarity="cosine", k=1, shrinkage=0.0),
    KNNParams(kind="user", similarity="pearson_baseline", k=2, shrinkage=2.0),
    KNNParams(kind="user", similarity="cosine", k=3, shrinkage=5.0, min_support=3),
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: f"{p.kind}-{p.similarity}-k{p.k}")
def test_similarities_and_predictions_match_plain_python(spark, ratings, baseline, pairs, params):
    model = fit_knn(ratings, baseline, params)
    expected_sims = spark.createDataFrame(
        [(a, b, s) for (a, b), s in reference_similarities(params).items()],
        f"{params.key} int, neighbour_id int, similarity double",
    )
    assertDataFrameEqual(
        model.similarities.select(params.key, "neighbour_id", "similarity"), expected_sims, rtol=1e-9, atol=1e-12
    )
    expected_rows = [(u, i, f"row{n}", *reference_predict(params, u, i)) for n, (u, i) in enumerate(PAIRS)]
    # The example must exercise both branches: neighbours found, and fallbacks
    # (the unseen movie and the unseen user at least).
    assert sum(r[-1] == 0 for r in expected_rows) >= 2 and sum(r[-1] > 0 for r in expected_rows) >= 4
    expected = spark.createDataFrame(
        expected_rows, f"user_id int, movie_id int, tag string, prediction double, {NEIGHBOURS} int"
    )
    assertDataFrameEqual(model.predict(pairs, with_neighbours=True), expected, rtol=1e-9, atol=1e-12)


def test_equal_similarities_pick_the_smaller_neighbour_id(spark, baseline):
    resid = spark.createDataFrame(
        [(1, 20, 0.5), (1, 30, -0.5), (1, 40, 0.25)], "user_id int, movie_id int, residual double"
    )
    sims = spark.createDataFrame(
        [(10, 30, 0.5, 3), (10, 20, 0.5, 3), (10, 40, 0.2, 9)],
        "movie_id int, neighbour_id int, similarity double, support long",
    )
    model = KNNModel(baseline=baseline, residuals=resid, similarities=sims, params=KNNParams(k=1))
    [row] = model.predict(spark.createDataFrame([(1, 10)], "user_id int, movie_id int")).collect()
    assert row.prediction == pytest.approx(base(1, 10) + 0.5)  # movie 20, not 30


def test_join_cap_bounds_the_ratings_per_user_in_the_self_join(spark, ratings, baseline):
    capped = KNNParams(similarity="cosine", shrinkage=0.0, join_cap=2, seed=7)
    sims = similarities(residuals(ratings, baseline), capped).persist()
    supports = [r.support for r in sims.collect()]
    # Each user keeps 2 of their movies, so adds 1 to the support of exactly
    # one pair (cosines of positive ratings are all kept), in both directions.
    assert sum(supports) == 2 * len(USER_BIAS)
    again = similarities(residuals(ratings, baseline), capped)
    assertDataFrameEqual(again, sims)  # the seeded choice is deterministic
    sims.unpersist()


def test_save_and_load_round_trip(spark, ratings, baseline, pairs, tmp_path):
    params = KNNParams(kind="user", k=2, shrinkage=3.0)
    model = fit_knn(ratings, baseline, params)
    before = model.predict(pairs)
    model.save(tmp_path / "knn")
    loaded = KNNModel.load(spark, tmp_path / "knn")
    assert loaded.params == params
    assertDataFrameEqual(loaded.predict(pairs), before, rtol=1e-12)
    assert before.columns == ["user_id", "movie_id", "tag", "prediction"]
    with pytest.raises(FileExistsError):
        model.save(tmp_path / "knn")


def test_loading_a_folder_that_is_not_a_knn_model_says_so(spark, baseline, tmp_path):
    with pytest.raises(MovieRecError, match="not a saved kNN model"):
        KNNModel.load(spark, tmp_path)
    baseline.save(tmp_path / "bias")
    with pytest.raises(MovieRecError, match="damaged"):
        KNNModel.load(spark, tmp_path / "bias")


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(kind="both"), "kind"),
        (dict(similarity="jaccard"), "similarity"),
        (dict(k=0), "k "),
        (dict(shrinkage=-1.0), "shrinkage"),
        (dict(min_support=0), "min_support"),
        (dict(join_cap=1), "join_cap"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(bad, message):
    with pytest.raises(MovieRecError, match=message):
        KNNParams(**bad).validate()


def test_params_from_config_ignore_other_keys():
    assert KNNParams.from_config({"k": 5, "enabled": True}) == KNNParams(k=5)
