"""movierec_spark.models.topn_blend: ranking models' scores, rescaled per user, added with weights."""

from __future__ import annotations

import numpy as np
import pytest

from movierec_spark import MovieRecError
from movierec_spark.models.ease import EaseModel, EaseParams, fit_ease
from movierec_spark.models.topn_blend import TopNBlend, normalise_per_user
from tests.models.test_ease import MOVIES, RATED, _ratings


def test_topn_blend_adds_the_members_weighted_scores_and_round_trips(spark, tmp_path):
    ratings = _ratings(spark)
    a = fit_ease(ratings, EaseParams(reg_param=1.0, max_items=5, neighbours=5, dropout=0.2, diagonal="free"))
    b = fit_ease(ratings, EaseParams(reg_param=10.0, max_items=5, neighbours=5))
    blend = TopNBlend({"a": a, "b": b}, {"a": 0.25, "b": 2.0})
    pairs = spark.createDataFrame([(u, m) for u in RATED for m in MOVIES], "user_id int, movie_id int")

    def scores(model):
        return {(r.user_id, r.movie_id): r.prediction for r in model.predict(pairs).collect()}

    sa, sb, mixed = scores(a), scores(b), scores(blend)
    assert sa != sb
    for key, value in mixed.items():
        assert value == pytest.approx(0.25 * sa[key] + 2.0 * sb[key], abs=1e-12), key

    blend.save(tmp_path / "blend")
    loaded = TopNBlend.load(spark, tmp_path / "blend")
    assert loaded.weights == {"a": 0.25, "b": 2.0}
    assert scores(loaded) == pytest.approx(mixed)
    assert EaseModel.load(spark, tmp_path / "blend" / "a").params == a.params


def test_normalise_per_user_rescales_each_column_over_each_users_rows(spark):
    # User 1: mixed signs; user 2: all zero; user 3: one null (counts as 0)
    # and equal scores in column b.
    rows = [
        (1, 10, 2.0, 1.0), (1, 11, -4.0, 3.0), (1, 12, 1.0, 8.0),
        (2, 10, 0.0, 0.0), (2, 11, 0.0, 0.0),
        (3, 10, None, 5.0), (3, 11, 6.0, 5.0),
    ]
    frame = spark.createDataFrame(rows, "user_id int, movie_id int, a double, b double")
    users = {1: ([2.0, -4.0, 1.0], [1.0, 3.0, 8.0]), 2: ([0.0, 0.0], [0.0, 0.0]), 3: ([0.0, 6.0], [5.0, 5.0])}

    def expected(values, how):
        v = np.asarray(values)
        if how == "rrf":  # 1 / (60 + rank), rank 1 the highest; ties: lower movie id first (stable sort)
            order = np.argsort(-v, kind="stable")
            ranks = np.empty(len(v))
            ranks[order] = np.arange(1, len(v) + 1)
            return 1.0 / (60 + ranks)
        if how == "max":
            top = np.abs(v).max()
            return v / top if top > 0 else np.zeros_like(v)
        return (v - v.mean()) / v.std() if v.std() > 0 else np.zeros_like(v)

    assert normalise_per_user(frame, ["a", "b"], "none") is frame
    for how in ("max", "zscore", "rrf"):
        got = normalise_per_user(frame, ["a", "b"], how)
        assert got.columns == frame.columns
        by_key = {(r.user_id, r.movie_id): (r.a, r.b) for r in got.collect()}
        assert len(by_key) == len(rows)
        for user, (a, b) in users.items():
            movies = sorted(m for u, m in by_key if u == user)
            assert [by_key[(user, m)][0] for m in movies] == pytest.approx(expected(a, how)), (how, user)
            assert [by_key[(user, m)][1] for m in movies] == pytest.approx(expected(b, how)), (how, user)
    with pytest.raises(MovieRecError, match="normalise must be 'none', 'max', 'zscore' or 'rrf'"):
        normalise_per_user(frame, ["a"], "rank")


def test_normalised_blend_adds_each_members_rescaled_scores_and_round_trips(spark, tmp_path):
    ratings = _ratings(spark)
    a = fit_ease(ratings, EaseParams(reg_param=1.0, max_items=5, neighbours=5))
    b = fit_ease(ratings, EaseParams(reg_param=10.0, max_items=5, neighbours=5))
    pairs = spark.createDataFrame([(u, m) for u in RATED for m in MOVIES], "user_id int, movie_id int")

    def scores(model):
        return {(r.user_id, r.movie_id): r.prediction for r in model.predict(pairs).collect()}

    sa, sb = scores(a), scores(b)
    for how in ("max", "zscore"):
        blend = TopNBlend({"a": a, "b": b}, {"a": 0.25, "b": 2.0}, normalise=how)
        mixed = scores(blend)
        assert mixed != scores(TopNBlend({"a": a, "b": b}, {"a": 0.25, "b": 2.0}))
        for user in RATED:
            va = np.array([sa[(user, m)] for m in MOVIES])
            vb = np.array([sb[(user, m)] for m in MOVIES])
            if how == "max":
                va, vb = va / np.abs(va).max(), vb / np.abs(vb).max()
            else:
                va, vb = (va - va.mean()) / va.std(), (vb - vb.mean()) / vb.std()
            got = [mixed[(user, m)] for m in MOVIES]
            assert got == pytest.approx(0.25 * va + 2.0 * vb, abs=1e-9), (how, user)
        blend.save(tmp_path / how)
        loaded = TopNBlend.load(spark, tmp_path / how)
        assert loaded.normalise == how and scores(loaded) == pytest.approx(mixed)


def test_an_unknown_normalisation_is_refused():
    with pytest.raises(MovieRecError, match=r"\[topn_blend\] normalise must be 'none'"):
        TopNBlend({}, {}, normalise="softmax")
