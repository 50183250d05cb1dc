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
