"""movierec_spark.evaluation.protocol: the same metrics whether the top-K lists are scored on the driver or in Spark."""

from __future__ import annotations

import pytest

from movierec_spark.data.releases import WHOLE_STARS
from movierec_spark.evaluation import protocol as P
from movierec_spark.evaluation.metrics import with_cold_flags
from movierec_spark.models.fit import BiasParams, fit_bias_model
from tests.tiny_release import tiny_release


def test_small_and_large_data_paths_give_the_same_ranking_metrics_and_lists(spark):
    ratings = tiny_release(spark).ratings
    train, test = ratings.randomSplit([0.8, 0.2], seed=5)
    train, test = train.cache(), with_cold_flags(test, train).cache()
    model = fit_bias_model(train, WHOLE_STARS, BiasParams(day_bias=False))
    test_rows = test.count()
    results = {}
    for train_rows in (train.count(), P.RATINGS_PER_PARTITION + 1):
        counts = {"train_rows": train_rows, "test_rows": test_rows, "cold_rows": 0}
        truth = P.RankingTruth(train, test, train_rows)
        assert truth.local == (train_rows <= P.RATINGS_PER_PARTITION)
        evaluation = P.evaluate_model(model, train, test, 3, counts=counts, keep_rankings=True, truth=truth)
        results[truth.local] = evaluation
    local, spark_side = results[True], results[False]
    for name in ("precision@3", "recall@3", "ndcg@3", "map@3", "coverage@3"):
        assert local.metrics[name] == pytest.approx(spark_side.metrics[name], rel=1e-12), name
    assert local.rankings.column_names == ["user_id", "rank", "movie_id", "score"]
    assert local.rankings.to_pandas().equals(spark_side.rankings.to_pandas())


@pytest.mark.parametrize("rows, parallelism, partitions", [
    (None, 2, None),  # unknown: the split's own
    (100_836, 2, 2),  # ml-latest-small: one per core
    (100_836, 4, 4),
    (2_500_000, 2, 3),  # one per million ratings, rounded up
    (25_000_095, 2, 26),  # more than the split's 16: coalesce keeps the 16
])
def test_working_partitions_follow_the_ratings(rows, parallelism, partitions):
    assert P.working_partitions(rows, parallelism) == partitions


def test_known_ratings_come_from_the_ingest_report_else_the_release():
    from types import SimpleNamespace

    assert P.known_ratings(SimpleNamespace(name="ml-100k", report={"summary": {"ratings": 1234}})) == 1234
    assert P.known_ratings(SimpleNamespace(name="ml-100k", report=None)) == 100_000
    assert P.known_ratings(SimpleNamespace(name="synthetic", report=None)) is None


def test_fewer_partitions_keeps_the_rows(spark):
    frame = spark.range(40, numPartitions=8)
    fewer = P.fewer_partitions(frame, 3)
    assert fewer.rdd.getNumPartitions() == 3 and sorted(fewer.collect()) == sorted(frame.collect())
    assert P.fewer_partitions(frame, 20).rdd.getNumPartitions() == 8  # never more
    assert P.fewer_partitions(frame, None) is frame


def test_fewer_shuffle_partitions_only_lowers_and_says_what_to_restore(spark):
    before = spark.conf.get(P.SHUFFLE_PARTITIONS)
    try:
        assert P.fewer_shuffle_partitions(spark, int(before) + 5) is None
        assert P.fewer_shuffle_partitions(spark, None) is None
        assert spark.conf.get(P.SHUFFLE_PARTITIONS) == before
        assert P.fewer_shuffle_partitions(spark, 1) == before
        assert spark.conf.get(P.SHUFFLE_PARTITIONS) == "1"
        from pyspark.sql import functions as F

        assert spark.range(10).groupBy((F.col("id") % 3).alias("k")).count().rdd.getNumPartitions() == 1
    finally:
        spark.conf.set(P.SHUFFLE_PARTITIONS, before)
