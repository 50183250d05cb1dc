"""RP3beta: weights and scores against a plain-Python walk count on a
hand-made example, pruning, persistence inside the top-N blend, bad
parameters."""

from __future__ import annotations

import pytest

from movierec_spark import MovieRecError
from movierec_spark.models.topn_blend import TopNBlend
from movierec_spark.models.rp3beta import Rp3BetaModel, Rp3BetaParams, fit_rp3beta

# Users 1-6 x movies 10-15; movie 15 is rated by one user only, user 6
# rated one movie (so it links nothing).
RATED = {1: [10, 11, 12], 2: [10, 11], 3: [11, 12, 13], 4: [10, 12, 13], 5: [10, 11, 13, 15], 6: [14]}
MOVIES = [10, 11, 12, 13, 14, 15]


def _ratings(spark):
    rows = [(u, m, 3.0) for u, ms in RATED.items() for m in ms]
    return spark.createDataFrame(rows, "user_id int, movie_id int, rating double")


def plain_weights(alpha: float, beta: float) -> dict[tuple[int, int], float]:
    """W[j, i] by walking the graph: every user who rated j and i adds n_v^-alpha."""
    raters = {m: {u for u, ms in RATED.items() if m in ms} for m in MOVIES}
    weights = {}
    for j in MOVIES:
        for i in MOVIES:
            common = raters[j] & raters[i]
            if i != j and common:
                walks = sum(len(RATED[v]) ** -alpha for v in common)
                weights[(j, i)] = len(raters[j]) ** -alpha * walks * len(raters[i]) ** -beta
    return weights


def _weights(model) -> dict[tuple[int, int], float]:
    return {(r._source_movie_id, r.movie_id): r.weight for r in model.weights.collect()}


def test_weights_are_the_walk_sums_and_each_movie_keeps_its_largest(spark):
    ratings = _ratings(spark)
    expected = plain_weights(0.7, 0.4)
    everything = _weights(fit_rp3beta(ratings, Rp3BetaParams(alpha=0.7, beta=0.4, neighbours=10)))
    assert everything.keys() == expected.keys()
    for key, value in expected.items():
        assert everything[key] == pytest.approx(value, rel=1e-12), key

    pruned = _weights(fit_rp3beta(ratings, Rp3BetaParams(alpha=0.7, beta=0.4, neighbours=2)))
    for j in MOVIES:
        row = {i: w for (s, i), w in expected.items() if s == j}
        kept = {i for (s, i) in pruned if s == j}
        assert len(kept) == min(2, len(row)), j
        assert min((row[i] for i in kept), default=0.0) >= max((w for i, w in row.items() if i not in kept), default=0.0)
        for i in kept:
            assert pruned[(j, i)] == pytest.approx(row[i], rel=1e-12)


def test_scores_sum_the_weights_of_a_users_movies_and_round_trip_in_the_blend(spark, tmp_path):
    ratings = _ratings(spark)
    params = Rp3BetaParams(alpha=1.0, beta=0.5, neighbours=3)
    model = fit_rp3beta(ratings, params)
    kept = _weights(model)
    full = plain_weights(1.0, 0.5)
    pairs = spark.createDataFrame(
        [(u, m) for u in (*RATED, 99) for m in (*MOVIES, 77)], "user_id int, movie_id int"
    )
    got = {(r.user_id, r.movie_id): r.prediction for r in model.predict(pairs, score_col="s").collect()}
    assert len(got) == len(RATED) * 7 + 7
    for (user, movie), score in got.items():
        expected = sum(full[(j, movie)] for j in RATED.get(user, []) if (j, movie) in kept)
        assert score == pytest.approx(expected, abs=1e-12), (user, movie)
    assert got[(2, 13)] > 0 and got[(6, 10)] == 0.0 and got[(99, 10)] == 0.0

    blend = TopNBlend({"rp3beta": model}, {"rp3beta": 2.0})
    blend.save(tmp_path / "blend")
    loaded = TopNBlend.load(spark, tmp_path / "blend")
    assert isinstance(loaded.models["rp3beta"], Rp3BetaModel) and loaded.models["rp3beta"].params == params
    again = {(r.user_id, r.movie_id): r.prediction for r in loaded.predict(pairs).collect()}
    assert again == pytest.approx({key: 2.0 * value for key, value in got.items()})


@pytest.mark.parametrize(
    "section, message",
    [
        ({"alpha": 0}, r"\[rp3beta\] alpha must be above 0, got 0"),
        ({"alpha": True}, "alpha must be a number, got true"),
        ({"beta": -0.1}, "beta must be 0 or more, got -0.1"),
        ({"beta": float("inf")}, "beta must be a finite number, got inf"),
        ({"neighbours": 0}, "neighbours must be 1 or more, got 0"),
        ({"neighbours": 2.5}, "neighbours must be a whole number"),
    ],
)
def test_bad_parameters_are_refused(section, message):
    with pytest.raises(MovieRecError, match=message):
        Rp3BetaParams.from_config(section)
