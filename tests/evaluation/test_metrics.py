"""Metrics against a plain-Python computation on hand-made examples."""

from __future__ import annotations

import math

import pytest

from movierec_spark.evaluation.metrics import (
    catalog_coverage,
    catalog_coverage_local,
    cold_start_counts,
    ranking_frame,
    ranking_metrics,
    ranking_metrics_local,
    regression_metrics,
    warm_rows,
    with_cold_flags,
)

# --- plain-Python reference implementations ---


def py_regression(pairs):
    n = len(pairs)
    errors = [p - r for r, p in pairs]
    mean = sum(r for r, _ in pairs) / n
    ss_res = sum(e * e for e in errors)
    ss_tot = sum((r - mean) ** 2 for r, _ in pairs)
    return {
        "rmse": math.sqrt(ss_res / n),
        "mae": sum(abs(e) for e in errors) / n,
        "r2": 1 - ss_res / ss_tot,
    }


def py_ranking(predicted, relevant, k):
    """Per-user metrics averaged over users with relevant items."""
    totals = {"precision": 0.0, "recall": 0.0, "ndcg": 0.0, "map": 0.0}
    users = [u for u in relevant if relevant[u]]
    for user in users:
        rel = set(relevant[user])
        top = predicted.get(user, [])[:k]
        hits = [m in rel for m in top]
        totals["precision"] += sum(hits) / k
        totals["recall"] += sum(hits) / len(rel)
        dcg = sum(1 / math.log2(i + 2) for i, hit in enumerate(hits) if hit)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(rel), k)))
        totals["ndcg"] += dcg / idcg
        precisions, found = [], 0
        for i, hit in enumerate(hits):
            if hit:
                found += 1
                precisions.append(found / (i + 1))
        totals["map"] += sum(precisions) / min(len(rel), k)
    return {f"{name}@{k}": value / len(users) for name, value in totals.items()}


# --- tests ---


def test_regression_metrics_match_plain_python(spark):
    rows = [(1, 10, 4.0, 3.5), (1, 11, 2.0, 2.5), (2, 10, 5.0, 4.0), (3, 12, 1.0, 2.0), (3, 13, 3.0, 3.0)]
    df = spark.createDataFrame(rows, "user_id int, movie_id int, rating float, prediction double")
    got = regression_metrics(df)
    want = py_regression([(r[2], r[3]) for r in rows])
    assert got == pytest.approx(want)


def test_regression_metrics_of_nothing_are_none(spark):
    df = spark.createDataFrame([], "user_id int, movie_id int, rating float, prediction double")
    assert regression_metrics(df) == {"rmse": None, "mae": None, "r2": None}


def test_regression_metrics_take_a_known_row_count_instead_of_a_job(spark):
    from tests.spark_jobs import jobs_while

    rows = [(1, 10, 4.0, 3.5), (2, 11, 2.0, 2.5), (3, 12, 5.0, 4.0)]
    df = spark.createDataFrame(rows, "user_id int, movie_id int, rating float, prediction double").cache()
    df.count()
    checked, checked_jobs = jobs_while(spark, "metrics-checked", lambda: regression_metrics(df))
    told, told_jobs = jobs_while(spark, "metrics-told", lambda: regression_metrics(df, rows=3))
    assert told == checked
    # One job per metric from the evaluator; the emptiness check is the job spared.
    assert len(told_jobs) == len(checked_jobs) - 1 == 3
    none, none_jobs = jobs_while(spark, "metrics-none", lambda: regression_metrics(df, rows=0))
    assert none == {"rmse": None, "mae": None, "r2": None} and none_jobs == []


# Rank order deliberately differs from movie-id order, and the rows are
# shuffled, so an implementation that trusts collect_list order or sorts by
# id gives different numbers.
TOP_K = {
    1: [30, 10, 20, 40],  # hits at ranks 1 and 3
    2: [50, 60, 70, 80],  # no hits
    3: [90, 15],  # fewer than k recommendations, hit at rank 2
    # user 4 has relevant movies but no recommendations at all
    5: [11, 12, 13, 14],  # recommendations but no relevant movies: not averaged
}
RELEVANT = {1: [30, 20, 99], 2: [10], 3: [15, 16, 17, 18, 19], 4: [1]}


def _frames(spark):
    top_rows = [(u, rank, m) for u, movies in TOP_K.items() for rank, m in enumerate(movies, start=1)]
    top_rows = top_rows[::-1][1::2] + top_rows[::-1][0::2]
    top = spark.createDataFrame(top_rows, "user_id int, rank int, movie_id int")
    rel = spark.createDataFrame(
        [(u, m) for u, movies in RELEVANT.items() for m in movies], "user_id int, movie_id int"
    )
    return top, rel


@pytest.mark.parametrize("k", [1, 3, 4, 10])
@pytest.mark.parametrize("where", ["spark", "local"])
def test_ranking_metrics_match_plain_python(spark, k, where):
    top, rel = _frames(spark)
    if where == "spark":
        got = ranking_metrics(top, rel, k)
    else:
        got = ranking_metrics_local(top.toPandas(), rel.toPandas(), k)
    want = py_ranking(TOP_K, RELEVANT, k)
    assert set(got) == set(want)
    for name in want:
        assert got[name] == pytest.approx(want[name]), name


def test_local_ranking_metrics_equal_sparks_on_random_lists(spark):
    import random

    rng = random.Random(7)
    top_rows, rel_rows = [], []
    for user in range(1, 60):
        movies = rng.sample(range(1, 40), rng.randint(0, 12))
        top_rows += [(user, rank, m) for rank, m in enumerate(movies, start=1)]
        rel_rows += [(user, m) for m in rng.sample(range(1, 40), rng.randint(0, 15))]
    top = spark.createDataFrame(top_rows, "user_id int, rank int, movie_id int")
    rel = spark.createDataFrame(rel_rows, "user_id int, movie_id int")
    for k in (1, 5, 10, 20):
        local = ranking_metrics_local(top.toPandas(), rel.toPandas(), k)
        for name, value in ranking_metrics(top, rel, k).items():
            assert local[name] == pytest.approx(value, rel=1e-12), (k, name)
    candidates = list(range(1, 50))
    assert catalog_coverage_local(top.toPandas(), candidates) == pytest.approx(
        catalog_coverage(top, spark.createDataFrame([(m,) for m in candidates], "movie_id int"))
    )
    assert catalog_coverage_local(top.toPandas(), []) is None


def test_ranking_frame_keeps_rank_order_and_users_without_recommendations(spark):
    top, rel = _frames(spark)
    rows = {r.user_id: (r.predicted, r.relevant) for r in ranking_frame(top, rel).collect()}
    assert set(rows) == set(RELEVANT)
    assert rows[1][0] == [30.0, 10.0, 20.0, 40.0]
    assert rows[4] == ([], [1.0])


def test_ranking_metrics_of_no_users_are_none(spark):
    top, _ = _frames(spark)
    empty = spark.createDataFrame([], "user_id int, movie_id int")
    assert set(ranking_metrics(top, empty, 5).values()) == {None}
    assert set(ranking_metrics_local(top.toPandas(), empty.toPandas(), 5).values()) == {None}


def test_catalog_coverage_counts_distinct_recommended_candidates(spark):
    top, _ = _frames(spark)
    candidates = spark.createDataFrame([(m,) for m in [10, 20, 30, 40, 50, 1000, 1001, 1002]], "movie_id int")
    recommended = {m for movies in TOP_K.values() for m in movies}
    want = len(recommended & {10, 20, 30, 40, 50, 1000, 1001, 1002}) / 8
    assert catalog_coverage(top, candidates) == pytest.approx(want)


def test_cold_start_flags_and_counts(spark):
    train = spark.createDataFrame([(1, 10, 4.0), (2, 20, 3.0)], "user_id int, movie_id int, rating float")
    test = spark.createDataFrame(
        [(1, 20, 5.0), (1, 30, 1.0), (3, 10, 2.0), (3, 30, 2.0), (4, 31, 3.0)],
        "user_id int, movie_id int, rating float",
    )
    flagged = with_cold_flags(test, train)
    assert cold_start_counts(flagged) == {
        "test_rows": 5,
        "cold_user_rows": 3,
        "cold_movie_rows": 3,
        "cold_rows": 4,
        "cold_users": 2,
        "cold_movies": 2,
    }
    assert [(r.user_id, r.movie_id) for r in warm_rows(flagged).collect()] == [(1, 20)]
    # No cold rows: zeros.
    assert cold_start_counts(with_cold_flags(train, train)) == {
        "test_rows": 2, "cold_user_rows": 0, "cold_movie_rows": 0, "cold_rows": 0, "cold_users": 0, "cold_movies": 0,
    }


def test_cold_flags_do_not_shuffle_the_test_rows(spark):
    """The training users and movies are broadcast into the test rows."""
    train = spark.createDataFrame([(1, 10, 4.0), (2, 20, 3.0)], "user_id int, movie_id int, rating float")
    test = spark.createDataFrame([(1, 20, 5.0), (3, 10, 2.0)], "user_id int, movie_id int, rating float")
    before = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        plan = with_cold_flags(test, train)._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", before)
    assert "SortMergeJoin" not in plan and plan.count("BroadcastHashJoin") == 2, plan
