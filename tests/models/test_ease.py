"""EASE and the top-N blend: the closed form against per-movie ridge
regressions, the Gram matrix against numpy, scores against a plain
matrix product, pruning, the blend's sum, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from movierec_spark import MovieRecError
from movierec_spark.models.ease import (
    EaseModel,
    EaseParams,
    ease_weights,
    fit_ease,
    gram_matrix,
    item_index,
    prune,
)

# Users 1-5 x movies 10-14; movie 14 is rated by one user only.
RATED = {1: [10, 11, 12], 2: [10, 11], 3: [11, 12, 13], 4: [10, 12, 13], 5: [10, 11, 13, 14]}
MOVIES = [10, 11, 12, 13, 14]


def _ratings(spark, rated=RATED):
    rows = [(u, m, 4.0) for u, ms in rated.items() for m in ms]
    return spark.createDataFrame(rows, "user_id int, movie_id int, rating double")


def _matrix(rated=RATED, movies=MOVIES):
    x = np.zeros((max(rated) + 1, len(movies)))
    for user, ms in rated.items():
        for m in ms:
            x[user, movies.index(m)] = 1.0
    return x


def test_closed_form_is_each_movies_ridge_regression_on_the_others():
    x = _matrix()
    reg = 2.0
    weights = ease_weights(x.T @ x, reg)
    for j in range(x.shape[1]):
        others = [i for i in range(x.shape[1]) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + reg * np.eye(len(others)), a.T @ x[:, j])
        assert weights[others, j] == pytest.approx(expected, abs=1e-10)
        assert weights[j, j] == 0.0


def test_dropout_penalises_each_movie_by_its_rating_count_in_the_ridge_regressions():
    x = _matrix()
    reg, dropout = 2.0, 0.4
    penalty = reg + dropout / (1 - dropout) * x.sum(axis=0)  # diag(X'X): each movie's rating count
    weights = ease_weights(x.T @ x, reg, dropout)
    for j in range(x.shape[1]):
        others = [i for i in range(x.shape[1]) if i != j]
        a = x[:, others]
        expected = np.linalg.solve(a.T @ a + np.diag(penalty[others]), a.T @ x[:, j])
        assert weights[others, j] == pytest.approx(expected, abs=1e-10)
        assert weights[j, j] == 0.0


def test_free_diagonal_is_dlae_with_its_diagonal_dropped():
    x = _matrix()
    gram = x.T @ x
    reg, dropout = 2.0, 0.4
    penalty = np.diag(reg + dropout / (1 - dropout) * np.diag(gram))
    expected = np.linalg.solve(gram + penalty, gram)  # argmin ||X - XB||^2 + ||Λ^1/2 B||^2
    np.fill_diagonal(expected, 0.0)
    weights = ease_weights(gram, reg, dropout, "free")
    assert weights == pytest.approx(expected, abs=1e-10)
    assert not np.allclose(weights, ease_weights(gram, reg, dropout, "zero"))


def test_prune_keeps_each_rows_largest_weights_by_size():
    weights = np.array([[0.0, 0.5, -0.9, 0.1], [0.3, 0.0, 0.2, -0.05], [0.0, 0.0, 0.0, 0.0]])
    rows, columns, values = prune(weights, 2)
    kept = sorted(zip(rows.tolist(), columns.tolist(), values.tolist()))
    assert kept == [(0, 1, 0.5), (0, 2, -0.9), (1, 0, 0.3), (1, 2, 0.2)]  # zeros never kept


def test_item_index_and_gram_matrix_match_numpy(spark):
    ratings = _ratings(spark)
    movies = item_index(ratings, 4)
    assert movies == [10, 11, 12, 13]  # 14 has one rating; ties by id
    x = _matrix(movies=MOVIES)[:, :4]
    assert gram_matrix(ratings, movies) == pytest.approx(x.T @ x)


@pytest.mark.parametrize("dropout, diagonal", [(0.0, "zero"), (0.3, "free")])
def test_scores_are_the_sum_of_weights_over_a_users_movies_and_no_pair_is_dropped(spark, dropout, diagonal):
    ratings = _ratings(spark)
    params = EaseParams(reg_param=1.5, max_items=5, neighbours=3, dropout=dropout, diagonal=diagonal)
    model = fit_ease(ratings, params)
    x = _matrix()
    full = ease_weights(x.T @ x, 1.5, dropout, diagonal)
    pruned = np.zeros_like(full)
    rows, columns, values = prune(full, 3)
    pruned[rows, columns] = values
    expected = x @ pruned
    pairs = spark.createDataFrame(
        [(u, m) for u in (1, 2, 3, 4, 5, 99) for m in MOVIES + [77]], "user_id int, movie_id int"
    )
    got = {(r.user_id, r.movie_id): r.prediction for r in model.predict(pairs, score_col="s").collect()}
    assert len(got) == pairs.count()
    for (user, movie), score in got.items():
        if user == 99 or movie == 77:
            assert score == 0.0  # nothing to score them with
        else:
            assert score == pytest.approx(expected[user, MOVIES.index(movie)], abs=1e-9), (user, movie)


def test_max_items_limits_the_movies_ease_covers(spark):
    model = fit_ease(_ratings(spark), EaseParams(reg_param=1.0, max_items=2, neighbours=5))
    covered = {r[0] for r in model.weights.select("movie_id").union(model.weights.select("_source_movie_id")).collect()}
    assert covered == {10, 11}


def test_bad_parameters_and_folders_are_refused(spark, tmp_path):
    for bad, message in (
        ({"reg_param": 0}, r"\[ease\] reg_param must be above 0, got 0"),
        ({"max_items": 20001}, "max_items must be from 1 to 20000, got 20001"),
        ({"neighbours": 2.5}, "neighbours must be a whole number"),
        ({"dropout": 1.0}, "dropout must be 0 or more and below 1, got 1.0"),
        ({"dropout": -0.1}, "dropout must be 0 or more and below 1, got -0.1"),
        ({"diagonal": "none"}, "diagonal must be 'zero' or 'free', got 'none'"),
    ):
        with pytest.raises(MovieRecError, match=message):
            EaseParams.from_config(bad)
    with pytest.raises(MovieRecError, match="not a saved ease model"):
        EaseModel.load(spark, tmp_path)
    (tmp_path / "metadata.json").write_text('{"model": "knn", "format_version": 1}')
    with pytest.raises(MovieRecError, match="holds model 'knn'"):
        EaseModel.load(spark, tmp_path)
