"""Blocked top-N for every user against the brute-force cross join (recommend.top_n_unseen)."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.testing import assertDataFrameEqual

from movierec_spark import columns as C
from movierec_spark.models.fit import AlsParams, BiasParams, fit_bias_model, fit_biased_als, fit_implicit_als
from movierec_spark.serving.recommend import top_n_unseen
from movierec_spark.data.releases import HALF_STARS
from movierec_spark.serving.topn_all import _seen_positions, position_lookup, top_k_products, top_k_rows, top_n_all_users

# 6 users x 8 movies; user 6 has rated all but one movie, movie 80 nobody
# but user 5, so the lists have different lengths.
RATINGS = [
    (1, 10, 5.0), (1, 20, 4.0), (1, 30, 1.0), (1, 40, 3.5),
    (2, 10, 4.0), (2, 40, 2.0), (2, 60, 4.5),
    (3, 20, 3.0), (3, 30, 2.0), (3, 40, 5.0), (3, 50, 4.0), (3, 70, 1.5),
    (4, 50, 1.0), (4, 60, 5.0),
    (5, 10, 0.5), (5, 70, 4.0), (5, 80, 3.0),
    (6, 10, 3.0), (6, 20, 3.5), (6, 30, 4.0), (6, 40, 2.5), (6, 50, 3.0), (6, 60, 4.0), (6, 70, 5.0),
]
SCHEMA = "user_id int, movie_id int, rating float"
ALS = AlsParams(rank=3, max_iter=5, reg_param=0.05, num_user_blocks=2, num_item_blocks=2)


@pytest.fixture(scope="module")
def ratings(spark):
    return spark.createDataFrame(RATINGS, SCHEMA).cache()


def brute_force(model, ratings, n):
    candidates = ratings.select(C.MOVIE_ID).distinct()
    return top_n_unseen(model, ratings.select(C.USER_ID), candidates, ratings, n)


@pytest.fixture(scope="module")
def biased_als(ratings):
    return fit_biased_als(ratings, HALF_STARS, ALS, BiasParams())


def _plan(frame) -> str:
    return frame._jdf.queryExecution().logical().toString()


@pytest.mark.parametrize(("n", "block_size", "on_driver"), [(1, 256, False), (3, 4, False), (8, 1, False), (3, 4, True)])
def test_biased_als_top_n_equals_the_cross_join(spark, ratings, biased_als, n, block_size, on_driver):
    blocked = top_n_all_users(biased_als, ratings, n, block_size=block_size, on_driver=on_driver)
    assertDataFrameEqual(blocked, brute_force(biased_als, ratings, n), atol=1e-9)
    # On the driver: a local table, no Python workers on the executors.
    assert ("MapInArrow" in _plan(blocked)) is not on_driver


def test_implicit_model_is_not_clipped_and_equals_the_cross_join(spark, ratings):
    model = fit_implicit_als(ratings, HALF_STARS, ALS.with_(alpha=5.0))
    assertDataFrameEqual(top_n_all_users(model, ratings, 4), brute_force(model, ratings, 4), atol=1e-9)


def test_bias_model_ties_break_by_movie_id(spark):
    # Every movie rated once at 3.0 by a different user: all biases tie at 0,
    # so each user's list is the unseen movies in id order.
    rows = [(u, m, 3.0) for u, m in [(1, 10), (2, 20), (3, 30), (4, 40)]]
    ratings = spark.createDataFrame(rows, SCHEMA)
    model = fit_bias_model(ratings, HALF_STARS, BiasParams(day_bias=False))
    blocked = top_n_all_users(model, ratings, 2)
    expected = spark.createDataFrame(
        [(1, 1, 20, 3.0), (1, 2, 30, 3.0), (2, 1, 10, 3.0), (2, 2, 30, 3.0),
         (3, 1, 10, 3.0), (3, 2, 20, 3.0), (4, 1, 10, 3.0), (4, 2, 20, 3.0)],
        "user_id int, rank int, movie_id int, prediction double",
    )
    assertDataFrameEqual(blocked, expected)
    assertDataFrameEqual(blocked, brute_force(model, ratings, 2))


def test_given_users_and_candidates(spark, ratings, biased_als):
    model = biased_als
    users = spark.createDataFrame([(1,), (6,), (99,)], "user_id int")  # 99: unknown, gets the fallback
    candidates = spark.createDataFrame([(10,), (50,), (60,), (80,)], "movie_id int")
    expected = top_n_unseen(model, users, candidates, ratings, 3)
    for on_driver in (False, True):
        blocked = top_n_all_users(model, ratings, 3, users=users, candidates=candidates, on_driver=on_driver)
        assertDataFrameEqual(blocked, expected, atol=1e-9)


def test_on_driver_with_no_users_is_an_empty_table(spark, ratings, biased_als):
    users = spark.createDataFrame([], "user_id int")
    blocked = top_n_all_users(biased_als, ratings, 3, users=users, on_driver=True)
    assert blocked.schema == top_n_all_users(biased_als, ratings, 3, users=users).schema
    assert blocked.count() == 0


def test_top_k_rows_matches_a_full_sort_with_ties_and_masks():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(40, 9)).astype(float)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # seen movies
    for k in (1, 3, 9, 12):
        rows, cols, ranks = top_k_rows(scores, k)
        got = sorted(zip(rows.tolist(), ranks.tolist(), cols.tolist()))
        want = []
        for r, row in enumerate(scores):
            finite = [(-v, c) for c, v in enumerate(row) if np.isfinite(v)]
            want += [(r, i + 1, c) for i, (_, c) in enumerate(sorted(finite)[:k])]
        assert got == sorted(want)


def _dense_top_k(left, right, n, masked, boost=None):
    dense = left @ right if boost is None else left @ right + boost
    dense[masked] = -np.inf
    rows, cols, ranks = top_k_rows(dense, n)
    return rows, cols, ranks


@pytest.mark.parametrize("chunk", [4, 128])
def test_top_k_products_equals_the_dense_ranking(chunk):
    rng = np.random.default_rng(11)
    for n_cols, k in ((300, 10), (9, 3), (200, 250)):
        left, right = rng.normal(size=(30, 4)), rng.normal(size=(4, n_cols))
        masked = np.nonzero(rng.random((30, n_cols)) < 0.3)
        masked = (np.r_[masked[0], np.full(n_cols, 5)], np.r_[masked[1], np.arange(n_cols)])  # row 5: all seen
        boost = rng.random((30, n_cols))
        for extra in (None, boost):
            rows, cols, ranks, product = top_k_products(left, right, k, masked, extra, chunk=chunk)
            want = _dense_top_k(left, right, k, masked, extra)
            for got, expected in zip((rows, cols, ranks), want):
                np.testing.assert_array_equal(got, expected)
            np.testing.assert_allclose(product, (left @ right)[rows, cols], rtol=0, atol=1e-12)
            assert 5 not in rows


def test_top_k_products_is_exact_where_single_precision_inverts_entries():
    # Scores within 2e-8 of 1 + 2**-24. float32 (eps 2**-23) rounds the
    # first input to 1 or to 1 + 2**-23 by its side of that midpoint (1e-10
    # either way), and the second (up to 1e-8) cannot move the sum off it:
    # in single precision the order is that side, in double mostly the
    # second input.
    rng = np.random.default_rng(3)
    left = np.array([[1.0, 1.0], [1.0, -1.0], [1.0, 2.0]])
    right = np.vstack([1.0 + 2.0**-24 + (rng.random(2000) - 0.5) * 2e-10, (rng.random(2000) - 0.5) * 2e-8])
    masked = (np.array([0, 2]), np.array([17, 1999]))
    for k in (1, 5, 40):
        got = top_k_products(left, right, k, masked, chunk=16)
        for a, b in zip(got[:3], _dense_top_k(left, right, k, masked)):
            np.testing.assert_array_equal(a, b)


def test_top_k_products_ties_go_to_the_smaller_column():
    left = np.ones((2, 3))
    right = np.zeros((3, 600))
    right[0, [5, 300, 599]] = 1.0  # three tied best entries in three chunks
    rows, cols, ranks, product = top_k_products(left, right, 4, (np.array([1]), np.array([300])))
    assert rows.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert cols.tolist() == [5, 300, 599, 0, 5, 599, 0, 1]
    assert ranks.tolist() == [1, 2, 3, 4, 1, 2, 3, 4]
    assert product.tolist() == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]


def test_seen_positions_by_lookup_equal_the_binary_search():
    rng = np.random.default_rng(5)
    item_ids = np.unique(rng.integers(1, 5000, size=900))
    movies = rng.integers(-3, 5200, size=4000)  # candidates, others, and ids outside the lookup
    rows = rng.integers(0, 64, size=4000)
    lookup = position_lookup(item_ids)
    assert lookup is not None and len(lookup) == item_ids[-1] + 1
    by_lookup = _seen_positions(rows, movies, item_ids, lookup)
    by_search = _seen_positions(rows, movies, item_ids)
    assert len(by_search[0]) > 0
    for a, b in zip(by_lookup, by_search):
        np.testing.assert_array_equal(a, b)
    # Ids far sparser than their count get no lookup table.
    assert position_lookup(np.array([1, 10**12])) is None and position_lookup(np.array([-1, 2])) is None
