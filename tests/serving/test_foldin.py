"""Fast fold-in: the per-user solve, its Spark wiring, and agreement with ALS itself."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.serving.foldin import FoldInSettings, fold_in, nnls, solve_user
from movierec_spark.models.recommender import KIND_IMPLICIT
from movierec_spark.data.releases import HALF_STARS
from tests.tiny_models import ITEM_FACTORS
from tests.tiny_models import tiny_model as _tiny_model

EXPLICIT = FoldInSettings(global_mean=3.5, user_damping=2.0, reg_param=0.1, implicit=False,
                          alpha=1.0, confidence="binary", nonnegative=False)


def test_explicit_solve_is_damped_bias_then_ridge_regression():
    rng = np.random.default_rng(1)
    factors = rng.normal(size=(6, 3))
    ratings = np.array([5.0, 4.0, 3.5, 2.0, 4.5, 1.0, 3.0])  # the last movie has no factors
    item_bias = np.array([0.3, -0.2, 0.0, -0.5, 0.1, -1.0, 0.4])
    bias, vector = solve_user(ratings, item_bias, factors, EXPLICIT)
    # b_u: damped mean of what the mean and movie biases leave, over all 7 ratings.
    assert bias == pytest.approx(np.sum(ratings - 3.5 - item_bias) / (7 + 2.0))
    # p_u: least squares on the 6 factored residuals with ridge sqrt(reg * 6), solved another way.
    residual = ratings[:6] - 3.5 - bias - item_bias[:6]
    stacked = np.vstack([factors, np.sqrt(0.1 * 6) * np.eye(3)])
    expected = np.linalg.lstsq(stacked, np.concatenate([residual, np.zeros(3)]), rcond=None)[0]
    np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)


def test_implicit_solve_matches_weighted_least_squares_over_every_movie():
    rng = np.random.default_rng(2)
    everything = rng.normal(size=(8, 3))  # all the model's movies
    rated = [1, 4, 6]
    settings = FoldInSettings(0.0, None, 0.05, True, alpha=2.0, confidence="rating", nonnegative=False)
    strength = np.array([4.0, 1.0, 2.5])
    bias, vector = solve_user(strength, np.zeros(3), everything[rated], settings, gram=everything.T @ everything)
    # Hu, Koren & Volinsky: confidence 1 + alpha * r on rated movies, 1 elsewhere; preference 1 / 0.
    confidence = np.ones(8)
    confidence[rated] = 1 + 2.0 * strength
    preference = np.zeros(8)
    preference[rated] = 1.0
    lhs = everything.T @ (confidence[:, None] * everything) + 0.05 * 3 * np.eye(3)
    expected = np.linalg.solve(lhs, everything.T @ (confidence * preference))
    assert bias == 0.0
    np.testing.assert_allclose(vector, expected, rtol=1e-5, atol=1e-6)


def test_nnls_meets_the_optimality_conditions():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(10, 4))
    gram, rhs = m.T @ m + 0.5 * np.eye(4), rng.normal(size=4) * 3
    x = nnls(gram, rhs)
    gradient = gram @ x - rhs
    assert (x >= 0).all() and (x > 0).any() and (x == 0).any()
    np.testing.assert_allclose(gradient[x > 0], 0.0, atol=1e-8)
    assert (gradient[x == 0] >= -1e-8).all()


def test_settings_come_from_the_model_and_refuse_unknown_objectives(spark):
    model = _tiny_model(spark)
    assert FoldInSettings.of(model) == FoldInSettings(3.0, 1.0, 0.1, False, 1.0, "binary", False)
    model.params = {"reg_param": 0.1}
    with pytest.raises(MovieRecError, match="user_damping"):
        FoldInSettings.of(model)
    model.kind = KIND_IMPLICIT
    assert FoldInSettings.of(model).user_damping is None


# --- Spark wiring on a hand-built model ---


def test_fold_in_groups_by_user_and_predicts_like_the_model(spark):
    model = _tiny_model(spark)
    ratings = spark.createDataFrame(
        [(100, 10, 5.0), (100, 20, 2.0), (100, 50, 4.0), (101, 30, 4.0), (102, 50, 1.0)],
        "user_id int, movie_id int, rating float",
    )
    folded = fold_in(model, ratings)
    users = {r.user_id: r for r in folded.users.collect()}
    assert set(users) == {100, 101, 102}
    settings = FoldInSettings.of(model)
    # user 100: movie 50 has a bias but no factors (counts for b_u only)
    bias, vector = solve_user(
        np.array([5.0, 2.0, 4.0]), np.array([0.5, -0.5, 0.25]),
        np.array([ITEM_FACTORS[10], ITEM_FACTORS[20]]), settings,
    )
    assert users[100].user_bias == pytest.approx(bias)
    np.testing.assert_allclose(users[100].features, vector, rtol=1e-6)
    # user 102 rated only a movie without factors: a bias and no factors.
    assert users[102].features is None
    assert users[102].user_bias == pytest.approx((1.0 - 3.0 - 0.25) / (1 + 1.0))

    pairs = spark.createDataFrame([(100, 30), (100, 40), (102, 10), (7, 20), (100, 99)], "user_id int, movie_id int")
    got = {(r.user_id, r.movie_id): (r.prediction, r.score) for r in folded.predict(pairs, score_col="score").collect()}
    p = users[100].features
    raw_30 = 3.0 + users[100].user_bias + 0.0 + p[0] * 1.0 + p[1] * 1.0
    raw_40 = 3.0 + users[100].user_bias + 1.0 + p[0] * 0.5 - p[1] * 1.0
    assert got[(100, 30)][1] == pytest.approx(raw_30, rel=1e-6)
    assert got[(100, 40)][1] == pytest.approx(raw_40, rel=1e-6)
    assert got[(100, 40)][0] == pytest.approx(min(max(raw_40, 0.5), 5.0), rel=1e-6)
    assert got[(102, 10)][0] == pytest.approx(3.0 + users[102].user_bias + 0.5)  # no factors: biases only
    assert got[(7, 20)][0] == pytest.approx(2.5)  # not folded in: cold-start mean + b_i
    assert got[(100, 99)][0] == pytest.approx(3.0 + users[100].user_bias)  # unknown movie


def test_fold_in_clips_to_the_scale_but_keeps_the_raw_score(spark):
    model = _tiny_model(spark)
    model.params["user_damping"] = 0.0
    ratings = spark.createDataFrame([(100, 40, 5.0), (100, 10, 5.0)], "user_id int, movie_id int, rating float")
    folded = fold_in(model, ratings)
    row = folded.predict(spark.createDataFrame([(100, 40)], "user_id int, movie_id int"), score_col="s").first()
    assert row.prediction == 5.0 and row.s > 5.0


# --- against Spark's own ALS ---


def _model_users(model):
    biases = {r.user_id: r.user_bias for r in model.user_bias.collect()}
    factors = {r.id: np.array(r.features) for r in model.als.userFactors.collect()}
    return biases, factors


def test_folding_training_users_back_in_reproduces_their_als_solution(spark, tmp_path_factory):
    """ALS updates users last in every iteration: same objective, same answer."""
    from movierec_spark.models.recommender import RecommenderModel
    from tests.tiny_models import saved_trained_model, trained_ratings

    model = RecommenderModel.load(spark, saved_trained_model(spark, tmp_path_factory))
    some = trained_ratings(spark).filter(F.col(C.USER_ID) <= 6)
    folded = {r.user_id: r for r in fold_in(model, some).users.collect()}
    biases, factors = _model_users(model)
    assert set(folded) == set(range(1, 7))
    for user, row in folded.items():
        assert row.user_bias == pytest.approx(biases[user], abs=1e-9)
        np.testing.assert_allclose(row.features, factors[user], atol=1e-5)


def test_implicit_fold_in_reproduces_implicit_als(spark):
    from movierec_spark.models.fit import AlsParams, fit_implicit_als
    from tests.tiny_models import trained_ratings

    ratings = trained_ratings(spark)
    params = AlsParams(rank=3, max_iter=6, reg_param=0.05, alpha=2.0, num_user_blocks=2, num_item_blocks=2)
    model = fit_implicit_als(ratings, HALF_STARS, params, confidence="rating")
    folded = {r.user_id: r for r in fold_in(model, ratings.filter(F.col(C.USER_ID) <= 4)).users.collect()}
    factors = {r.id: np.array(r.features) for r in model.als.userFactors.collect()}
    for user, row in folded.items():
        assert row.user_bias == 0.0
        np.testing.assert_allclose(row.features, factors[user], atol=1e-4)
