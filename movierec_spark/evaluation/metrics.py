"""Evaluation: rating accuracy, top-K ranking quality, coverage, cold start.

Inputs
------
* rating predictions: ``user_id``, ``movie_id``, ``rating`` (truth) and
  ``prediction`` (what a model's ``predict`` returns on test pairs);
* top-K tables: ``user_id``, ``rank``, ``movie_id`` (what
  :func:`movierec_spark.serving.recommend.top_n_unseen` returns);
* relevant movies: ``user_id``, ``movie_id`` (a user's test ratings).

Outputs are plain ``dict``s of floats / ints, named as they appear in
``metrics.json``: ``rmse``, ``mae``, ``r2`` from ``RegressionEvaluator``;
``precision@K``, ``recall@K``, ``ndcg@K``, ``map@K`` from
``RankingEvaluator`` (Spark's definitions: precision divides by K, recall by
the number of relevant movies, nDCG uses binary gains ``1/log(rank+1)``,
MAP@K divides by ``min(K, relevant)``), each averaged over users with at
least one relevant movie; ``coverage@K`` is the share of the candidate
catalogue that appears in anyone's top-K.

These functions run Spark actions: computing a number is their job.
Callers should cache what they pass in when they ask for several metrics.
"""

from __future__ import annotations

from pyspark.ml.evaluation import RankingEvaluator, RegressionEvaluator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movierec_spark import columns as C

REGRESSION_METRICS = ("rmse", "mae", "r2")
# metrics.json name prefix -> RankingEvaluator metricName
RANKING_METRICS = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}

COLD_USER = "cold_user"
COLD_MOVIE = "cold_movie"
_PREDICTED = "predicted"
_RELEVANT = "relevant"


def regression_metrics(
    predictions: DataFrame, label_col: str = C.RATING, prediction_col: str = C.PREDICTION, rows: int | None = None
) -> dict[str, float | None]:
    """RMSE, MAE and R2 of ``prediction_col`` against ``label_col``.

    An empty frame gives ``None`` for each metric instead of NaN.
    ``rows``: the frame's row count, when the caller knows it (then no job
    runs to see whether the frame is empty).
    """
    if (rows == 0) if rows is not None else predictions.isEmpty():
        return {name: None for name in REGRESSION_METRICS}
    evaluator = RegressionEvaluator(labelCol=label_col, predictionCol=prediction_col)
    typed = predictions.select(
        F.col(label_col).cast("double").alias(label_col), F.col(prediction_col).cast("double").alias(prediction_col)
    )
    return {name: float(evaluator.evaluate(typed, {evaluator.metricName: name})) for name in REGRESSION_METRICS}


def ranking_frame(top_k: DataFrame, relevant: DataFrame) -> DataFrame:
    """One row per user with relevant movies: ``predicted`` and ``relevant`` id arrays.

    ``predicted`` is in rank order (built from ``rank``, not from
    ``collect_list`` order); users without recommendations get an empty one.
    """
    predicted = top_k.groupBy(C.USER_ID).agg(
        F.transform(
            F.sort_array(F.collect_list(F.struct(F.col(C.RANK), F.col(C.MOVIE_ID)))),
            lambda x: x[C.MOVIE_ID].cast("double"),
        ).alias(_PREDICTED)
    )
    truth = relevant.groupBy(C.USER_ID).agg(
        F.array_sort(F.collect_set(F.col(C.MOVIE_ID).cast("double"))).alias(_RELEVANT)
    )
    empty = F.array().cast("array<double>")
    return truth.join(predicted, on=C.USER_ID, how="left").select(
        C.USER_ID, F.coalesce(F.col(_PREDICTED), empty).alias(_PREDICTED), F.col(_RELEVANT)
    )


def ranking_metrics(top_k: DataFrame, relevant: DataFrame, k: int) -> dict[str, float | None]:
    """precision@k, recall@k, ndcg@k and map@k averaged over users in ``relevant``."""
    names = [f"{prefix}@{k}" for prefix in RANKING_METRICS]
    frame = ranking_frame(top_k, relevant).cache()
    try:
        if frame.isEmpty():
            return {name: None for name in names}
        evaluator = RankingEvaluator(predictionCol=_PREDICTED, labelCol=_RELEVANT, k=k)
        return {
            f"{prefix}@{k}": float(evaluator.evaluate(frame, {evaluator.metricName: metric}))
            for prefix, metric in RANKING_METRICS.items()
        }
    finally:
        frame.unpersist()


def ranking_metrics_local(top_k, relevant, k: int) -> dict[str, float | None]:
    """:func:`ranking_metrics` of pandas frames, computed in this process with the same definitions.

    For top-K lists small enough to hold on the driver, where Spark's jobs
    cost more than the arithmetic. ``top_k``: ``user_id, rank, movie_id``;
    ``relevant``: ``user_id, movie_id``.
    """
    import numpy as np
    import pandas as pd

    names = [f"{prefix}@{k}" for prefix in RANKING_METRICS]
    truth = relevant[[C.USER_ID, C.MOVIE_ID]].drop_duplicates()
    if truth.empty:
        return {name: None for name in names}
    per_user = truth.groupby(C.USER_ID).size().rename("relevant")
    top = top_k.sort_values([C.USER_ID, C.RANK], kind="stable")[[C.USER_ID, C.MOVIE_ID]]
    top = top.assign(position=top.groupby(C.USER_ID).cumcount())
    top = top[(top["position"] < k) & top[C.USER_ID].isin(per_user.index)]
    hit = top.merge(truth, on=[C.USER_ID, C.MOVIE_ID], how="left", indicator=True)["_merge"].eq("both").to_numpy()
    top = top.assign(hit=hit)
    found = top.groupby(C.USER_ID)["hit"].cumsum().to_numpy()
    position = top["position"].to_numpy()
    top = top.assign(
        gain=np.where(hit, 1.0 / np.log(position + 2.0), 0.0),
        precision_at_hit=np.where(hit, found / (position + 1.0), 0.0),
    )
    sums = top.groupby(C.USER_ID)[["hit", "gain", "precision_at_hit"]].sum()
    sums = pd.DataFrame(index=per_user.index).join(sums).fillna(0.0)
    relevant_count = per_user.to_numpy(float)
    ideal_len = np.minimum(relevant_count, k).astype(int)
    ideal = np.cumsum(1.0 / np.log(np.arange(k) + 2.0))[ideal_len - 1]
    values = {
        "precision": sums["hit"].to_numpy() / k,
        "recall": sums["hit"].to_numpy() / relevant_count,
        "ndcg": sums["gain"].to_numpy() / ideal,
        "map": sums["precision_at_hit"].to_numpy() / np.minimum(relevant_count, k),
    }
    return {f"{prefix}@{k}": float(values[prefix].mean()) for prefix in RANKING_METRICS}


def catalog_coverage_local(top_k, candidates) -> float | None:
    """:func:`catalog_coverage` of a pandas ``top_k`` and a collection of candidate movie ids."""
    catalog = set(candidates)
    if not catalog:
        return None
    return len(catalog.intersection(top_k[C.MOVIE_ID])) / len(catalog)


def catalog_coverage(top_k: DataFrame, candidates: DataFrame) -> float | None:
    """Share of distinct ``candidates`` movies recommended to at least one user."""
    row = (
        candidates.select(C.MOVIE_ID).distinct()
        .join(top_k.select(C.MOVIE_ID).distinct().withColumn("_hit", F.lit(1)), on=C.MOVIE_ID, how="left")
        .agg(F.count(F.lit(1)).alias("catalog"), F.count("_hit").alias("hit"))
        .first()
    )
    return None if row["catalog"] == 0 else row["hit"] / row["catalog"]


def with_cold_flags(test: DataFrame, train: DataFrame) -> DataFrame:
    """``test`` plus booleans ``cold_user`` / ``cold_movie``: unseen in ``train``.

    The distinct users and movies (one row each) are broadcast: the test
    rows are not shuffled for the two joins.
    """
    users = train.select(C.USER_ID).distinct().withColumn("_known_user", F.lit(True))
    movies = train.select(C.MOVIE_ID).distinct().withColumn("_known_movie", F.lit(True))
    return (
        test.join(F.broadcast(users), on=C.USER_ID, how="left")
        .join(F.broadcast(movies), on=C.MOVIE_ID, how="left")
        .withColumn(COLD_USER, F.col("_known_user").isNull())
        .withColumn(COLD_MOVIE, F.col("_known_movie").isNull())
        .drop("_known_user", "_known_movie")
    )


def cold_start_counts(flagged_test: DataFrame) -> dict[str, int]:
    """Counts of test rows whose user, movie, or either is unseen in training.

    ``flagged_test`` is the output of :func:`with_cold_flags`. The distinct
    cold users and movies are counted over the cold rows alone (a second,
    filtered pass): two distinct counts of different columns in one
    aggregate make Spark expand every test row three times (ml-25m: 5M
    rows, of which 6 are cold).
    """
    cold_user = F.col(COLD_USER)
    cold_movie = F.col(COLD_MOVIE)
    row = flagged_test.agg(
        F.count(F.lit(1)).alias("test_rows"),
        F.count(F.when(cold_user, 1)).alias("cold_user_rows"),
        F.count(F.when(cold_movie, 1)).alias("cold_movie_rows"),
        F.count(F.when(cold_user | cold_movie, 1)).alias("cold_rows"),
    ).first()
    counts = {key: int(row[key]) for key in row.asDict()}
    counts.update(cold_users=0, cold_movies=0)
    if counts["cold_rows"]:
        distinct = flagged_test.where(cold_user | cold_movie).agg(
            F.countDistinct(F.when(cold_user, F.col(C.USER_ID))).alias("cold_users"),
            F.countDistinct(F.when(cold_movie, F.col(C.MOVIE_ID))).alias("cold_movies"),
        ).first()
        counts.update({key: int(distinct[key]) for key in distinct.asDict()})
    return counts


def warm_rows(flagged: DataFrame) -> DataFrame:
    """Rows whose user and movie were both seen in training (what ALS itself scores)."""
    return flagged.filter(~F.col(COLD_USER) & ~F.col(COLD_MOVIE))
