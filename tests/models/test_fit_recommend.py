"""Bias baseline against hand computation; ALS fits; top-N properties."""

from __future__ import annotations

import pytest
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark.models.fit import (
    AlsParams,
    BiasedALS,
    BiasParams,
    fit_bias_model,
    fit_biased_als,
    fit_global_mean_model,
    fit_implicit_als,
    fit_popularity_model,
    global_mean,
)
from movierec_spark.models.recommender import KIND_IMPLICIT, RecommenderModel
from movierec_spark.serving.recommend import top_n_unseen
from movierec_spark.data.releases import WHOLE_STARS

RATINGS = [
    (1, 10, 5.0), (1, 20, 4.0), (1, 30, 1.0),
    (2, 10, 4.0), (2, 40, 2.0),
    (3, 20, 3.0), (3, 30, 2.0), (3, 40, 5.0), (3, 50, 4.0),
    (4, 50, 1.0),
]
SCHEMA = "user_id int, movie_id int, rating float"


def small_als(**kwargs):
    """ALS settings for tiny data: few blocks, so a fit is a handful of tasks."""
    return AlsParams(num_user_blocks=2, num_item_blocks=2, **kwargs)


@pytest.fixture(scope="module")
def ratings(spark):
    return spark.createDataFrame(RATINGS, SCHEMA).cache()


def py_biases(rows, user_damping, item_damping, iterations):
    mean = sum(r for _, _, r in rows) / len(rows)
    bu = {u: 0.0 for u, _, _ in rows}
    for _ in range(iterations):
        bi = {}
        for item in {i for _, i, _ in rows}:
            mine = [(u, r) for u, i, r in rows if i == item]
            bi[item] = sum(r - mean - bu[u] for u, r in mine) / (len(mine) + item_damping)
        bu = {}
        for user in {u for u, _, _ in rows}:
            mine = [(i, r) for u, i, r in rows if u == user]
            bu[user] = sum(r - mean - bi[i] for i, r in mine) / (len(mine) + user_damping)
    return mean, bu, bi


@pytest.mark.parametrize("iterations", [1, 3])
def test_damped_biases_match_plain_python(ratings, iterations):
    params = BiasParams(user_damping=2.0, item_damping=3.0, bias_iterations=iterations)
    model = fit_bias_model(ratings, WHOLE_STARS, params)
    mean, bu, bi = py_biases(RATINGS, 2.0, 3.0, iterations)
    assert model.global_mean == pytest.approx(mean)
    assert {r.user_id: r.user_bias for r in model.user_bias.collect()} == pytest.approx(bu)
    assert {r.movie_id: r.item_bias for r in model.item_bias.collect()} == pytest.approx(bi)


def test_global_mean_model_and_empty_training_data(spark, ratings):
    model = fit_global_mean_model(ratings, WHOLE_STARS)
    pairs = spark.createDataFrame([(1, 10), (99, 99)], "user_id int, movie_id int")
    want = sum(r for _, _, r in RATINGS) / len(RATINGS)
    assert [r.prediction for r in model.predict(pairs).collect()] == pytest.approx([want, want])
    with pytest.raises(MovieRecError, match="no ratings"):
        global_mean(spark.createDataFrame([], SCHEMA))


def test_biased_als_beats_the_bias_baseline_on_its_training_data(ratings):
    params = small_als(rank=3, max_iter=8, reg_param=0.01, seed=1, checkpoint_interval=4)
    bias = fit_bias_model(ratings, WHOLE_STARS)
    als = fit_biased_als(ratings, WHOLE_STARS, params, bias_model=bias)
    evaluator = RegressionEvaluator(labelCol="rating")
    train_rmse_bias = evaluator.evaluate(bias.predict(ratings))
    train_rmse_als = evaluator.evaluate(als.predict(ratings))
    assert train_rmse_als < train_rmse_bias
    assert als.params["rank"] == 3 and als.params["user_damping"] == 10.0


def test_same_seed_same_factors(ratings, spark):
    params = small_als(rank=2, max_iter=3, seed=5)
    pairs = spark.createDataFrame([(1, 40), (2, 30), (4, 10)], "user_id int, movie_id int")
    first = [r.prediction for r in fit_biased_als(ratings, WHOLE_STARS, params).predict(pairs).orderBy("user_id").collect()]
    again = [r.prediction for r in fit_biased_als(ratings, WHOLE_STARS, params).predict(pairs).orderBy("user_id").collect()]
    assert first == again


@pytest.mark.parametrize(
    "change, message",
    [({"rank": 0}, "rank"), ({"reg_param": -0.1}, "reg_param"), ({"max_iter": 2.5}, "max_iter"),
     ({"alpha": float("nan")}, "alpha"), ({"nonnegative": "yes"}, "nonnegative")],
)
def test_bad_als_parameters_are_refused(change, message):
    with pytest.raises(MovieRecError, match=message):
        AlsParams().with_(**change).validate()


def _check_top_n(top, ratings_rows, n, users):
    rows = top.collect()
    seen = {(u, m) for u, m, _ in ratings_rows}
    by_user = {}
    for r in rows:
        by_user.setdefault(r.user_id, []).append(r)
    assert set(by_user) == set(users)
    for user, recs in by_user.items():
        recs.sort(key=lambda r: r.rank)
        assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
        assert len(recs) <= n
        assert not {(user, r.movie_id) for r in recs} & seen
        predictions = [r.prediction for r in recs]
        assert predictions == sorted(predictions, reverse=True)
    return by_user


def test_top_n_unseen_properties_with_biased_als(spark, ratings):
    model = fit_biased_als(ratings, WHOLE_STARS, small_als(rank=2, max_iter=5, seed=3))
    users = spark.createDataFrame([(1,), (2,), (4,), (7,)], "user_id int")  # 7 is unknown
    candidates = ratings.select("movie_id").distinct()
    top = top_n_unseen(model, users, candidates, ratings, 2)
    assert top.columns == ["user_id", "rank", "movie_id", "prediction"]
    by_user = _check_top_n(top, RATINGS, 2, [1, 2, 4, 7])
    assert len(by_user[1]) == 2  # 5 movies, 3 seen
    # The unknown user falls back to mean + movie bias: the best-biased movies.
    item_bias = {r.movie_id: r.item_bias for r in model.item_bias.collect()}
    best = sorted(item_bias, key=lambda m: (-item_bias[m], m))[:2]
    assert [r.movie_id for r in by_user[7]] == best


def test_top_n_unseen_breaks_ties_by_movie_id_and_ranks_clipped_scores(spark):
    # Every movie of equal bias: ranking must fall back to movie id.
    from movierec_spark.models.recommender import RecommenderModel

    flat = RecommenderModel(
        global_mean=4.9,
        user_bias=spark.createDataFrame([(1, 0.0)], "user_id int, user_bias double"),
        item_bias=spark.createDataFrame([(m, b) for m, b in [(5, 0.0), (3, 0.0), (9, 0.0), (4, 0.5), (8, 0.3)]],
                                        "movie_id int, item_bias double"),
        als=None,
        scale=WHOLE_STARS,
    )
    users = spark.createDataFrame([(1,)], "user_id int")
    candidates = spark.createDataFrame([(m,) for m in (9, 8, 5, 4, 3)], "movie_id int")
    seen = spark.createDataFrame([(1, 5)], "user_id int, movie_id int")
    rows = top_n_unseen(flat, users, candidates, seen, 3).orderBy("rank").collect()
    # 4 (5.4) and 8 (5.2) are both clipped to 5.0 but keep their order.
    assert [(r.movie_id, r.prediction) for r in rows] == [(4, 5.0), (8, 5.0), (3, 4.9)]


def test_top_n_unseen_of_nothing_is_empty(spark, ratings):
    model = fit_bias_model(ratings, WHOLE_STARS)
    no_users = spark.createDataFrame([], "user_id int")
    assert top_n_unseen(model, no_users, ratings, ratings, 3).count() == 0


def test_implicit_and_popularity_models_rank_unseen_movies(spark, ratings):
    implicit = fit_implicit_als(ratings, WHOLE_STARS, small_als(rank=2, max_iter=5, alpha=5.0, seed=2))
    assert implicit.kind == KIND_IMPLICIT and implicit.params["confidence"] == "binary"
    popular = fit_popularity_model(ratings, WHOLE_STARS)
    users = spark.createDataFrame([(1,), (4,)], "user_id int")
    candidates = ratings.select("movie_id").distinct()
    for model in (implicit, popular):
        _check_top_n(top_n_unseen(model, users, candidates, ratings, 3), RATINGS, 3, [1, 4])
    # Popularity: movies 10, 20, 30, 40 and 50 are each rated twice (tie -> id).
    top4 = top_n_unseen(popular, users, candidates, ratings, 3).filter("user_id = 4").orderBy("rank")
    assert [r.movie_id for r in top4.collect()] == [10, 20, 30]


def test_biased_als_estimator_tunes_with_train_validation_split(spark, ratings):
    estimator = BiasedALS(scale=WHOLE_STARS, rank=2, maxIter=3, seed=1, numBlocks=2)
    grid = ParamGridBuilder().addGrid(estimator.regParam, [0.01, 1.0]).build()
    tvs = TrainValidationSplit(
        estimator=estimator, estimatorParamMaps=grid, evaluator=RegressionEvaluator(labelCol="rating"),
        trainRatio=0.7, parallelism=2, seed=3,
    )
    fitted = tvs.fit(ratings)
    assert len(fitted.validationMetrics) == 2
    assert all(m == m for m in fitted.validationMetrics)  # no NaN: cold rows get fallbacks
    assert fitted.bestModel.transform(ratings).count() == len(RATINGS)


# --- the user-day bias ---

DAY = 86_400
# user 1 rates high on day 0 and low on day 1; user 2 has no timestamp on one row.
TIMED = [
    (1, 10, 5.0, 0 * DAY + 10), (1, 20, 5.0, 0 * DAY + 50), (1, 30, 2.0, 1 * DAY + 5),
    (1, 40, 1.0, 1 * DAY + 90), (2, 10, 4.0, 3 * DAY), (2, 20, 3.0, None), (2, 30, 3.0, 3 * DAY + 7),
]
TIMED_SCHEMA = "user_id int, movie_id int, rating float, timestamp long"


def test_day_bias_is_the_damped_mean_of_what_the_other_biases_leave_that_day(spark, tmp_path):
    ratings = spark.createDataFrame(TIMED, TIMED_SCHEMA)
    params = BiasParams(user_damping=1.0, item_damping=2.0, bias_iterations=2, day_bias=True, day_damping=0.5)
    model = fit_bias_model(ratings, WHOLE_STARS, params)
    mean, bu, bi = py_biases([(u, i, r) for u, i, r, _ in TIMED], 1.0, 2.0, 2)
    want = {}
    for u, i, r, t in TIMED:
        if t is not None:
            want.setdefault((u, t // DAY), []).append(r - mean - bu[u] - bi[i])
    want = {key: sum(v) / (len(v) + 0.5) for key, v in want.items()}
    got = {(r.user_id, r.day): r.day_bias for r in model.day_bias.collect()}
    assert got == pytest.approx(want)
    assert want[(1, 0)] > 0 > want[(1, 1)]

    # Pairs with a timestamp on a known day get the day's bias; pairs without
    # a timestamp, or on another day, get none; a round trip keeps it.
    model.save(tmp_path / "m")
    loaded = RecommenderModel.load(spark, tmp_path / "m")
    pairs = spark.createDataFrame(
        [(1, 50, 0 * DAY + 70), (1, 50, 1 * DAY), (1, 50, 9 * DAY), (1, 50, None)], TIMED_SCHEMA.replace("rating float, ", "")
    )
    base = mean + bu[1]  # movie 50 is unknown: no item bias
    for m in (model, loaded):
        got = [r.prediction for r in m.predict(pairs).orderBy(F.col("timestamp").asc_nulls_last()).collect()]
        assert got == pytest.approx([base + want[(1, 0)], base + want[(1, 1)], base, base])
    without_time = m.predict(pairs.drop("timestamp")).collect()
    assert [r.prediction for r in without_time] == pytest.approx([base] * 4)


def test_biased_als_fits_the_residuals_the_day_bias_leaves(spark):
    ratings = spark.createDataFrame(TIMED, TIMED_SCHEMA)
    params = BiasParams(day_bias=True, day_damping=0.0, user_damping=0.0, item_damping=0.0)
    bias = fit_bias_model(ratings, WHOLE_STARS, params)
    model = fit_biased_als(ratings, WHOLE_STARS, small_als(rank=2, max_iter=2), params, bias)
    assert model.day_bias is bias.day_bias
    # With no damping the day bias absorbs a whole one-rating day: the
    # residual ALS sees for (2, 10) is 0 once the day term is in.
    from movierec_spark.models.fit import residuals

    resid = {(r.user_id, r.movie_id): r._residual for r in residuals(ratings, bias).collect()}
    plain = {(r.user_id, r.movie_id): r._residual for r in residuals(ratings.drop("timestamp"), bias).collect()}
    assert resid[(2, 20)] == pytest.approx(plain[(2, 20)])  # no timestamp: no day term
    assert sum(v * v for v in resid.values()) < sum(v * v for v in plain.values())


def test_day_bias_without_timestamps_is_skipped_with_a_warning(ratings, caplog):
    model = fit_bias_model(ratings, WHOLE_STARS, BiasParams(day_bias=True))
    assert model.day_bias is None and model.params["day_bias"] is False
    assert "no timestamp" in caplog.text


def _plan(frame) -> str:
    """The physical plan Spark chose for ``frame`` (before adaptive execution re-plans it)."""
    return frame._jdf.queryExecution().executedPlan().toString()


def test_bias_passes_and_day_scoring_broadcast_their_tables(spark):
    """The bias tables join the ratings by broadcast, never by a sort-merge
    join that shuffles every rating (at ml-25m ~200 MB per bias pass and a
    sort of the 20M training rows for the day bias, bench/NOTES.md)."""
    ratings = spark.createDataFrame(TIMED, TIMED_SCHEMA)
    # Broadcast only where asked: automatic broadcasting off, so the plan
    # shows the join strategy the code chose.
    before = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        model = fit_bias_model(ratings, WHOLE_STARS, BiasParams(day_bias=True, bias_iterations=2))
        for frame in (model.user_bias, model.item_bias, model.day_bias, model.predict(ratings)):
            plan = _plan(frame)
            assert "SortMergeJoin" not in plan and "BroadcastHashJoin" in plan, plan
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", before)


def test_day_bias_joins_on_one_packed_long_key(spark):
    """The (user, day) lookup packs both ids into one long: Spark then builds
    a long-keyed hash table instead of one over binary rows, cheaper per
    probe for the 20M residuals ALS reads at ml-25m (bench/NOTES.md)."""
    ratings = spark.createDataFrame(TIMED, TIMED_SCHEMA)
    model = fit_bias_model(ratings, WHOLE_STARS, BiasParams(day_bias=True))
    plan = _plan(model.predict(ratings))
    # HashJoin packs integral keys of 8 bytes or less in all: int user, int day.
    assert "shiftleft(cast(input[0, int, " in plan and "as bigint), 32)" in plan, plan
