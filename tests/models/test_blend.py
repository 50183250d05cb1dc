"""The blend: weights, cross-validated RMSE and the keep rule against plain Python."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import MovieRecError
from movierec_spark.models.blend import (
    BLEND,
    MOVIE_SUPPORT,
    USER_SUPPORT,
    BlendModel,
    fit_blend,
    fit_blend_weights,
    fold_of,
    pred_col,
    support_tables,
    validation_split,
    with_predictions,
    with_support,
)
from movierec_spark.models.ease import EaseModel, EaseParams, fit_ease
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.data.releases import WHOLE_STARS

USERS = range(1, 13)
MOVIES = range(1, 11)


def bias_model(spark, mean, user_bias, item_bias):
    return RecommenderModel(
        global_mean=mean,
        user_bias=spark.createDataFrame(list(user_bias.items()), "user_id int, user_bias double"),
        item_bias=spark.createDataFrame(list(item_bias.items()), "movie_id int, item_bias double"),
        als=None,
        scale=WHOLE_STARS,
    )


@pytest.fixture(scope="module")
def example(spark):
    """Two bias models that each see half the signal, and ratings made of both plus noise."""
    rng = random.Random(3)
    ub = {u: rng.uniform(-0.8, 0.8) for u in USERS}
    ib = {i: rng.uniform(-0.8, 0.8) for i in MOVIES}
    a = {"mean": 3.0, "user_bias": ub, "item_bias": {i: 0.0 for i in MOVIES}}
    b = {"mean": 3.2, "user_bias": {u: 0.0 for u in USERS}, "item_bias": ib}
    rows = []
    for u in USERS:
        for i in MOVIES:
            pa, pb = 3.0 + ub[u], 3.2 + ib[i]
            rows.append((u, i, float(0.1 + 0.7 * pa + 0.5 * pb - 0.15 * 3.0 + rng.gauss(0, 0.2)), pa, pb))
    models = {"a": bias_model(spark, **a), "b": bias_model(spark, **b)}
    ratings = spark.createDataFrame([r[:3] for r in rows], "user_id int, movie_id int, rating double")
    return models, ratings, rows


def plain_fit(rows, ridge=0.0):
    """Least squares with intercept in numpy: (coefficients, rmse of a, of b)."""
    x = np.array([[1.0, pa, pb] for *_, pa, pb in rows])
    y = np.array([r[2] for r in rows])
    penalty = np.diag([0.0, 1.0, 1.0]) * ridge * len(rows)
    coef = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    return coef, x, y


def test_scored_pairs_carry_one_column_per_model(example):
    models, ratings, rows = example
    scored = with_predictions(ratings, models)
    assert scored.columns == ["user_id", "movie_id", "rating", pred_col("a"), pred_col("b")]
    got = {(r.user_id, r.movie_id): (r.pred_a, r.pred_b) for r in scored.collect()}
    assert got == {(u, i): pytest.approx((pa, pb)) for u, i, _, pa, pb in rows}


def test_weights_rmse_and_cross_validation_match_numpy(example):
    models, ratings, rows = example
    scored = with_predictions(ratings, models)
    folds, seed = 3, 5
    report = fit_blend_weights(scored, ["a", "b"], folds=folds, ridge=0.0, seed=seed)

    coef, x, y = plain_fit(rows)
    assert report.rows == len(rows)
    assert [report.intercept, report.weights["a"], report.weights["b"]] == pytest.approx(list(coef), rel=1e-8)
    assert report.rmse["a"] == pytest.approx(math.sqrt(np.mean((y - x[:, 1]) ** 2)))
    assert report.rmse["b"] == pytest.approx(math.sqrt(np.mean((y - x[:, 2]) ** 2)))

    # Cross-validation by hand on the same fold assignment.
    fold = {(r.user_id, r.movie_id): r.f for r in scored.select("user_id", "movie_id", fold_of(folds, seed).alias("f")).collect()}
    assert len(set(fold.values())) == folds
    index = np.array([fold[(u, i)] for u, i, *_ in rows])
    sse = 0.0
    for k in range(folds):
        train, held = index != k, index == k
        c = np.linalg.solve(x[train].T @ x[train], x[train].T @ y[train])
        sse += float(np.sum((y[held] - x[held] @ c) ** 2))
    assert report.rmse[BLEND] == pytest.approx(math.sqrt(sse / len(rows)))
    assert report.kept and report.rmse[BLEND] < min(report.rmse["a"], report.rmse["b"])


def test_ridge_shrinks_the_weights_but_not_the_intercept(example):
    models, ratings, rows = example
    report = fit_blend_weights(with_predictions(ratings, models), ["a", "b"], ridge=0.5)
    coef, _, _ = plain_fit(rows, ridge=0.5)
    assert [report.intercept, report.weights["a"], report.weights["b"]] == pytest.approx(list(coef), rel=1e-8)


def test_a_blend_that_cannot_beat_a_perfect_model_is_not_kept(spark, example):
    models, _, rows = example
    # Ratings equal model a's predictions exactly: nothing beats RMSE 0.
    exact = spark.createDataFrame([(u, i, pa) for u, i, _, pa, _ in rows], "user_id int, movie_id int, rating double")
    report = fit_blend_weights(with_predictions(exact, models), ["a", "b"], ridge=1e-3)
    assert report.rmse["a"] == pytest.approx(0.0, abs=1e-7)
    assert not report.kept and report.best_single == "a"


def test_too_few_validation_rows_are_refused(spark, example):
    models, _, _ = example
    tiny = spark.createDataFrame([(1, 1, 4.0), (2, 2, 3.0)], "user_id int, movie_id int, rating double")
    with pytest.raises(MovieRecError, match="too few"):
        fit_blend_weights(with_predictions(tiny, models), ["a", "b"])


def test_validation_split_is_a_seeded_partition(example):
    _, ratings, rows = example
    fit_part, validation = validation_split(ratings, 0.25, seed=11)
    fit_keys = {(r.user_id, r.movie_id) for r in fit_part.collect()}
    val_keys = {(r.user_id, r.movie_id) for r in validation.collect()}
    assert not fit_keys & val_keys and len(fit_keys | val_keys) == len(rows)
    assert 0.1 * len(rows) < len(val_keys) < 0.4 * len(rows)
    _, again = validation_split(ratings, 0.25, seed=11)
    assertDataFrameEqual(again, validation)
    with pytest.raises(MovieRecError, match="between 0 and 1"):
        validation_split(ratings, 1.0, seed=11)


def test_fit_blend_fits_on_the_rest_and_refits_on_everything(spark, example, tmp_path):
    models, ratings, rows = example
    seen = []

    def fitter(name):
        def fit(df):
            seen.append((name, df.count()))
            return models[name]

        return fit

    result = fit_blend(
        ratings, {"a": fitter("a"), "b": fitter("b")}, WHOLE_STARS, validation_fraction=0.3, folds=2, seed=1
    )
    n_val = result.report.rows
    assert seen == [("a", len(rows) - n_val), ("b", len(rows) - n_val), ("a", len(rows)), ("b", len(rows))]
    assert result.report.kept and result.best is result.blend

    # The blend predicts intercept + weights . predictions, clipped, and survives save/load.
    pairs = spark.createDataFrame([(1, 1, "x"), (12, 10, "y"), (99, 1, "cold")], "user_id int, movie_id int, tag string")
    blend = result.blend
    predicted = blend.predict(pairs)
    assert predicted.columns == ["user_id", "movie_id", "tag", "prediction"]
    by_pair = {(r.user_id, r.movie_id): r for r in with_predictions(pairs, models).collect()}
    expected = spark.createDataFrame(
        [
            (u, i, r.tag, min(5.0, max(1.0, blend.intercept + blend.weights["a"] * r.pred_a + blend.weights["b"] * r.pred_b)))
            for (u, i), r in by_pair.items()
        ],
        "user_id int, movie_id int, tag string, prediction double",
    )
    assertDataFrameEqual(predicted, expected, rtol=1e-12)
    blend.save(tmp_path / "blend")
    assertDataFrameEqual(BlendModel.load(spark, tmp_path / "blend").predict(pairs), expected, rtol=1e-12)


def test_an_ease_member_adds_its_weighted_score_and_round_trips(spark, example, tmp_path):
    models, ratings, rows = example
    # EASE sees who rated what: a sparse pattern, so its scores differ by pair.
    sparse = ratings.where("(user_id + movie_id) % 3 != 0")
    members = {"a": models["a"], "ease": fit_ease(sparse, EaseParams(reg_param=2.0, max_items=10, neighbours=4))}
    blend = BlendModel(members, intercept=0.5, weights={"a": 0.8, "ease": 1.5}, scale=WHOLE_STARS)
    pairs = spark.createDataFrame([(u, i) for u in (1, 2, 3, 99) for i in (1, 2, 3, 4, 77)], "user_id int, movie_id int")
    by_pair = {(r.user_id, r.movie_id): r for r in with_predictions(pairs, members).collect()}
    assert len({r.pred_ease for r in by_pair.values()}) > 2  # the EASE feature carries something
    expected = spark.createDataFrame(
        [(u, i, min(5.0, max(1.0, 0.5 + 0.8 * r.pred_a + 1.5 * r.pred_ease))) for (u, i), r in by_pair.items()],
        "user_id int, movie_id int, prediction double",
    )
    assertDataFrameEqual(blend.predict(pairs), expected, rtol=1e-12)

    blend.save(tmp_path / "blend")
    loaded = BlendModel.load(spark, tmp_path / "blend")
    assert isinstance(loaded.models["ease"], EaseModel) and loaded.models["ease"].params == members["ease"].params
    assertDataFrameEqual(loaded.predict(pairs), expected, rtol=1e-12)


def test_support_features_weigh_each_member_by_how_much_it_saw_and_round_trip(spark, example, tmp_path):
    models, ratings, rows = example
    # The members' "training" ratings: users and movies seen 0 to 9 times (user 1 never).
    seen = [(u, i) for u in USERS for i in MOVIES if u != 1 and (u * i) % (u % 4 + 2) != 0]
    fitted_on = spark.createDataFrame([(u, i, 3.0) for u, i in seen], "user_id int, movie_id int, rating double")
    tables = support_tables(fitted_on)
    scored = with_support(with_predictions(ratings, models), tables)
    assert scored.columns == ["user_id", "movie_id", "rating", "pred_a", "pred_b", USER_SUPPORT, MOVIE_SUPPORT]
    su = {u: math.log1p(sum(1 for v, _ in seen if v == u)) for u in USERS}
    si = {i: math.log1p(sum(1 for _, j in seen if j == i)) for i in MOVIES}
    assert su[1] == 0.0 and len(set(su.values())) > 3 and len(set(si.values())) > 3

    report = fit_blend_weights(scored, ["a", "b"], folds=3, ridge=0.0, seed=5, support=True)
    x = np.array([[1.0, pa, pb, su[u], si[i], pa * su[u], pa * si[i], pb * su[u], pb * si[i]] for u, i, _, pa, pb in rows])
    y = np.array([r[2] for r in rows])
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    names = ["a", "b", USER_SUPPORT, MOVIE_SUPPORT, f"a*{USER_SUPPORT}", f"a*{MOVIE_SUPPORT}", f"b*{USER_SUPPORT}", f"b*{MOVIE_SUPPORT}"]
    assert list(report.weights) == names and report.params["support"] is True
    assert report.intercept == pytest.approx(coef[0], abs=1e-6)
    assert [report.weights[n] for n in names] == pytest.approx(list(coef[1:]), abs=1e-6)
    # Each member alone is still scored alone, support or not.
    assert report.rmse["a"] == pytest.approx(math.sqrt(np.mean((y - x[:, 1]) ** 2)))

    with pytest.raises(MovieRecError, match="support tables"):
        BlendModel.from_report(models, report, WHOLE_STARS)
    blend = BlendModel.from_report(models, report, WHOLE_STARS, tables)
    pairs = spark.createDataFrame([(1, 1), (2, 3), (7, 10), (99, 1)], "user_id int, movie_id int")
    by_pair = {(r.user_id, r.movie_id): r for r in with_predictions(pairs, models).collect()}

    def expected_rating(u, i):
        r = by_pair[(u, i)]
        feats = [r.pred_a, r.pred_b, su.get(u, 0.0), si.get(i, 0.0)]
        feats += [p * s for p in (r.pred_a, r.pred_b) for s in (su.get(u, 0.0), si.get(i, 0.0))]
        return min(5.0, max(1.0, report.intercept + sum(report.weights[n] * f for n, f in zip(names, feats))))

    expected = spark.createDataFrame(
        [(u, i, expected_rating(u, i)) for u, i in by_pair], "user_id int, movie_id int, prediction double"
    )
    assertDataFrameEqual(blend.predict(pairs), expected, rtol=1e-9)
    blend.save(tmp_path / "blend")
    assert (tmp_path / "blend" / USER_SUPPORT).is_dir()
    assertDataFrameEqual(BlendModel.load(spark, tmp_path / "blend").predict(pairs), expected, rtol=1e-9)


def test_loading_something_else_as_a_blend_says_so(spark, tmp_path):
    with pytest.raises(MovieRecError, match="not a saved blend"):
        BlendModel.load(spark, tmp_path)
