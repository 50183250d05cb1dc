"""The evaluation protocol: split the ratings, score the test split, report every model's metrics.

Input: a loaded release (``ratings``: user_id, movie_id, rating, timestamp)
and fitted models (:class:`movierec_spark.models.base.Recommender`). A
model that ``predicts_ratings`` gets RMSE, MAE and R2 from
``RegressionEvaluator`` over all test rows (and over the warm rows, whose
user and movie are both in training); a model that ``ranks`` gets
precision, recall, nDCG and MAP at K and catalog coverage over each test
user's top-K unseen training movies. The top-K lists can be kept
(``user_id, rank, movie_id, score``) so other tools can recompute the
ranking metrics.

Same data, same config, same seed: same split and same metrics.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.config import Config
from movierec_spark.evaluation import metrics as E
from movierec_spark.evaluation import split as S

log = logging.getLogger(__name__)

SCORE = "score"
SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
# Ratings per partition of the cached training and test ratings (about
# 20 MB of cached columns): what a task handles before more partitions help.
RATINGS_PER_PARTITION = 1_000_000


# --- the split ---


def split_method(cfg: Config) -> str:
    """``[split] method``; naming a train or test file implies ``predefined``."""
    split = cfg.get("split", {})
    if split.get("train_ratings_file") or split.get("test_ratings_file"):
        return S.PREDEFINED
    return split.get("method", "random")


def make_split(spark: SparkSession, cfg: Config, loaded):
    """The train/test split the config asks for, and the counts of rows rejected on the way."""
    section = cfg.get("split", {})
    method = split_method(cfg)
    if method == S.PREDEFINED:
        from movierec_spark.data.releases import get_release

        release = get_release(loaded.name)
        movie_ids = loaded.movies.select(C.MOVIE_ID)
        train, train_rejects = split_file(spark, release, section["train_ratings_file"], "--train-ratings", movie_ids)
        test, test_rejects = split_file(spark, release, section["test_ratings_file"], "--test-ratings", movie_ids)
        return S.predefined_split(train, test), {
            "train_file_rejects": train_rejects,
            "test_file_rejects": test_rejects,
        }
    partitions = section.get("partitions", S.SPLIT_PARTITIONS)
    return S.split_ratings(
        loaded.ratings, method, float(section["test_fraction"]), int(section["seed"]), partitions
    ), {}


_SHOWN_REJECTS = 5


def split_file(spark: SparkSession, release, path, flag: str, movie_ids: DataFrame) -> tuple[DataFrame, int]:
    """The ratings of one predefined split file and how many of its lines were rejected.

    Rejected lines are logged as ingest counts them (by reason) with the
    first few as read; a file none of whose lines loads (a movies file
    given as ``--train-ratings``, another release's split) is a
    MovieRecError naming the file, its lines and the main reasons, before
    any model is fitted.
    """
    from movierec_spark.data import validate as V
    from movierec_spark.data import schemas
    from movierec_spark.data.load import load_table_file

    checked = load_table_file(spark, release, "ratings", path, movie_ids)
    counts, _ = V.count_checked(checked)
    by_reason = sorted(counts["rejected_by_reason"].items(), key=lambda item: -item[1])
    reasons = ", ".join(f"{reason} {n:,}" for reason, n in by_reason)
    if counts["read"] and not counts["loaded"]:
        raise MovieRecError(
            f"{flag} file {path}: all {counts['read']:,} lines were rejected ({reasons}); "
            f"is it a ratings file of {release.name}?"
        )
    if not counts["read"]:
        raise MovieRecError(f"{flag} file {path} has no lines; give a ratings file of {release.name}")
    if counts["rejected"]:
        log.warning("%s file %s: %d of %d lines rejected (%s)", flag, path, counts["rejected"], counts["read"], reasons)
        rejects = V.rejected_rows(checked, "ratings").limit(_SHOWN_REJECTS).collect()
        for row in rejects:
            log.warning("  rejected (%s): %.200s", row[C.REASON], row[C.RAW])
    return V.loaded_rows(checked, schemas.RATINGS), counts["rejected"]


def known_ratings(loaded) -> int | None:
    """The release's number of ratings without a Spark job, or None.

    From ``ingest_report.json`` when the tables were ingested, else the
    count the release's README publishes (none for unknown releases).
    """
    from movierec_spark.data.releases import RELEASES

    # getattr: a release built in memory (tests' tiny releases) has no report.
    rows = ((getattr(loaded, "report", None) or {}).get("summary") or {}).get("ratings")
    if isinstance(rows, int) and not isinstance(rows, bool):
        return rows
    release = RELEASES.get(loaded.name)
    return release.published_ratings if release is not None else None


def working_partitions(rows: int | None, parallelism: int) -> int | None:
    """Partitions for the cached training and test ratings of ``rows`` ratings (None: unknown, keep them).

    One per :data:`RATINGS_PER_PARTITION` ratings, at least one per core.
    Every later stage runs a task per partition of these frames, so on a
    small release the random split's 16 partitions are mostly per-task
    overhead. Only ever fewer than the split made (:func:`fewer_partitions`).
    """
    from movierec_spark.sizing import pieces

    return None if rows is None else pieces(rows, RATINGS_PER_PARTITION, parallelism)


def fewer_shuffle_partitions(spark: SparkSession, partitions: int | None) -> str | None:
    """Lower the session's ``spark.sql.shuffle.partitions`` to ``partitions``; the value to restore, or None.

    Adaptive execution coalesces small shuffles, but not the tables that are
    checkpointed (the bias tables) nor joins with them. Never raised. For
    the ratings-sized stages only: :func:`restore_shuffle_partitions` sets
    the configured count back before the ranking stages.
    """
    current = spark.conf.get(SHUFFLE_PARTITIONS)
    if partitions is None or partitions >= int(current):
        return None
    spark.conf.set(SHUFFLE_PARTITIONS, str(partitions))
    log.info("%d shuffle partitions (sized to the ratings; %s configured)", partitions, current)
    return current


def restore_shuffle_partitions(spark: SparkSession, before: str | None) -> None:
    """Set ``spark.sql.shuffle.partitions`` back to what :func:`fewer_shuffle_partitions` returned (None: nothing to do)."""
    if before is not None:
        spark.conf.set(SHUFFLE_PARTITIONS, before)
        log.info("%s shuffle partitions again (the configured count)", before)


def fewer_partitions(frame: DataFrame, partitions: int | None) -> DataFrame:
    """``frame`` in at most ``partitions`` partitions (``coalesce``: no shuffle, same rows); None: as it is."""
    return frame if partitions is None else frame.coalesce(partitions)


@dataclass
class PreparedSplit:
    """The cached training ratings, the test ratings with their cold-start flags, and their counts."""

    train: DataFrame
    test: DataFrame  # + cold_user, cold_movie
    counts: dict[str, int]
    description: dict[str, Any]


def prepare_split(spark: SparkSession, cfg: Config, loaded, partitions: int | None) -> PreparedSplit:
    """Split, cache and count: an empty side is a MovieRecError."""
    split, rejected = make_split(spark, cfg, loaded)
    # Timestamps stay: the user-day bias ([bias] day_bias) uses them.
    keep = [c for c in (C.USER_ID, C.MOVIE_ID, C.RATING, C.TIMESTAMP) if c in split.train.columns]
    train = fewer_partitions(split.train.select(*keep), partitions).cache()
    test = E.with_cold_flags(fewer_partitions(split.test.select(*keep), partitions), train).cache()
    counts = {"train_rows": train.count(), **E.cold_start_counts(test), **rejected}
    split.release()
    if counts["train_rows"] == 0 or counts["test_rows"] == 0:
        raise MovieRecError(
            f"the split left {counts['train_rows']} training and {counts['test_rows']} test ratings; "
            "both must be non-empty"
        )
    log.info(
        "%d training and %d test ratings (%d test rows with a user or movie unseen in training)",
        counts["train_rows"], counts["test_rows"], counts["cold_rows"],
    )
    description = {**split.describe(), "train_rows": counts["train_rows"], "test_rows": counts["test_rows"]}
    return PreparedSplit(train, test, counts, description)


# --- scoring and metrics ---


def score_test(models: dict[str, Any], flagged_test: DataFrame) -> tuple[DataFrame, dict[str, str]]:
    """``(flagged_test + one prediction column per rating model, name -> column)``.

    Every rating model scores the test rows once, here; the metrics and the
    predictions sample then read the columns. (A kNN model's prediction
    joins the whole similarity table: scoring the test rows once per use
    cost minutes.) The same fitted object under two names (the blend falling
    back to its best member) is scored once; a blend's members are scored
    once each and combined.
    """
    from movierec_spark.models import blend as B

    scorers: dict[str, Any] = {}
    column_of: dict[str, str] = {}

    def add(name: str, model) -> str:
        for other, seen in scorers.items():
            if seen is model:
                return B.pred_col(other)
        scorers[name] = model
        return B.pred_col(name)

    blends = {}
    for name, model in models.items():
        if not model.predicts_ratings:
            continue
        if isinstance(model, B.BlendModel):
            blends[name] = {member: add(f"{name}_{member}", m) for member, m in model.models.items()}
        else:
            column_of[name] = add(name, model)
    scored = B.with_predictions(flagged_test, scorers)
    for name, members in blends.items():
        column_of[name] = B.pred_col(name)
        columns = scored.columns
        scored = (
            models[name].with_support(scored)
            .withColumn(column_of[name], models[name].combine({m: F.col(c) for m, c in members.items()}))
            .select(*columns, column_of[name])
        )
    return scored, column_of


def ranking_top_k(
    model, users: DataFrame, candidates: DataFrame, train: DataFrame, k: int, train_rows: int | None = None
) -> DataFrame:
    """Each test user's top-``k`` unseen candidates: ``user_id, rank, movie_id, prediction``.

    A RecommenderModel (biases + factors) ranks by blocked factor products
    (:mod:`movierec_spark.serving.topn_all`), on the driver when the
    ``train_rows`` training ratings fit one partition (starting the
    executors' Python workers costs more than ranking small data); other
    models score the users x candidates cross join, which costs hours beyond
    ml-1m-sized data.
    """
    from movierec_spark.models.recommender import RecommenderModel
    from movierec_spark.serving.recommend import top_n_unseen
    from movierec_spark.serving.topn_all import top_n_all_users

    if isinstance(model, RecommenderModel):
        on_driver = train_rows is not None and train_rows <= RATINGS_PER_PARTITION
        return top_n_all_users(model, train, k, users=users, candidates=candidates, on_driver=on_driver)
    return top_n_unseen(model, users, candidates, train, k)


@dataclass
class Evaluation:
    """One model's metrics and, when kept, the top-K lists they were computed from (Arrow)."""

    metrics: dict[str, Any]
    rankings: Any = None  # pyarrow.Table: user_id, rank, movie_id, score


class RankingTruth:
    """What every model's top-K lists are scored against: the test users' movies and the candidate movies.

    ``local``: the training ratings fit one partition, so the lists, the
    test pairs and the candidates are small enough to score on the driver
    (:func:`~movierec_spark.evaluation.metrics.ranking_metrics_local`, the
    same definitions as ``RankingEvaluator``) instead of in Spark jobs. The
    test pairs and candidates are collected once for all models.
    """

    def __init__(self, train: DataFrame, flagged_test: DataFrame, train_rows: int | None = None):
        self.test = flagged_test
        self.users = flagged_test.select(C.USER_ID).distinct()
        self.candidates = train.select(C.MOVIE_ID).distinct()
        self.local = train_rows is not None and train_rows <= RATINGS_PER_PARTITION
        self._collected = None

    def collected(self):
        """``(test pairs, candidate movie ids)`` as pandas / numpy, collected the first time."""
        if self._collected is None:
            pairs = self.test.select(C.USER_ID, C.MOVIE_ID).toPandas()
            candidates = self.candidates.toPandas()[C.MOVIE_ID].to_numpy()
            self._collected = (pairs, candidates)
        return self._collected

    def score(self, top_k: DataFrame, k: int) -> tuple[dict[str, Any], Any]:
        """The ranking metrics and coverage of ``top_k`` (``user_id, rank, movie_id, prediction``), and its lists as pandas when local."""
        if self.local:
            lists = top_k.toPandas()
            pairs, candidates = self.collected()
            result = E.ranking_metrics_local(lists, pairs, k)
            result[f"coverage@{k}"] = E.catalog_coverage_local(lists, candidates)
            return result, lists
        result = E.ranking_metrics(top_k, self.test, k)
        result[f"coverage@{k}"] = E.catalog_coverage(top_k, self.candidates)
        return result, None


def evaluate_model(
    model, train: DataFrame, flagged_test: DataFrame, k: int, predictions: DataFrame | None = None, *,
    ranking: bool = True, warm: bool = True, counts: dict[str, int] | None = None, keep_rankings: bool = False,
    truth: RankingTruth | None = None,
) -> Evaluation:
    """Regression metrics (all rows and warm rows) and ranking metrics at ``k`` of one model.

    ``predictions``: the test rows with this model's ``prediction`` already
    computed (see :func:`score_test`); else the model predicts them here.
    ``ranking=False`` skips the ranking metrics (reported as None),
    ``warm=False`` the warm rows' (``warm`` is None). ``counts``: the
    split's counts (``train_rows``, ``test_rows``, ``cold_rows``), which
    spare the jobs that would check whether there are rows to evaluate and
    say whether the data is small enough to rank on the driver.
    ``keep_rankings``: return the top-K lists the ranking metrics read.
    ``truth``: the run's :class:`RankingTruth`, shared by its models.
    """
    import pyarrow as pa

    result: dict[str, Any] = {}
    rankings = None
    train_rows = counts.get("train_rows") if counts is not None else None
    if model.predicts_ratings:
        own = predictions is None
        if own:
            predictions = model.predict(flagged_test).cache()
        rows = warm_rows = None
        if counts is not None:
            rows, warm_rows = counts["test_rows"], counts["test_rows"] - counts["cold_rows"]
        result.update(E.regression_metrics(predictions, rows=rows))
        result["warm"] = E.regression_metrics(E.warm_rows(predictions), rows=warm_rows) if warm else None
        if own:
            predictions.unpersist()
    else:
        result.update({metric: None for metric in E.REGRESSION_METRICS})
    if ranking and model.ranks:
        truth = truth if truth is not None else RankingTruth(train, flagged_test, train_rows)
        top_k = ranking_top_k(model, truth.users, truth.candidates, train, k, train_rows).cache()
        scores, lists = truth.score(top_k, k)
        result.update(scores)
        if keep_rankings:
            columns = [C.USER_ID, C.RANK, C.MOVIE_ID, C.PREDICTION]
            if lists is None:
                lists = top_k.select(*columns).toPandas()
            lists = lists[columns].rename(columns={C.PREDICTION: SCORE}).sort_values([C.USER_ID, C.RANK])
            lists.attrs = {}  # Spark Connect's toPandas keeps query metrics there: not the table's metadata
            rankings = pa.Table.from_pandas(lists, preserve_index=False)
        top_k.unpersist()
    else:
        result.update({f"{prefix}@{k}": None for prefix in E.RANKING_METRICS})
        result[f"coverage@{k}"] = None
    return Evaluation(result, rankings)


def best_models(results: dict[str, Any], k: int) -> dict[str, Any]:
    """The best model by test RMSE (lowest) and by nDCG@K (highest)."""
    best: dict[str, Any] = {}
    for metric, pick in (("rmse", min), (f"ndcg@{k}", max)):
        scored = {name: r[metric] for name, r in results.items() if r.get(metric) is not None}
        if scored:
            name = pick(scored, key=lambda n: scored[n])
            best[metric] = {"model": name, "value": scored[name]}
    return best


def predictions_sample(scored_test: DataFrame, column_of: dict[str, str], movies: DataFrame, n: int):
    """``n`` test rows (a fixed pseudo-random choice) with every rating model's prediction (pandas).

    The predictions come from ``scored_test`` (:func:`score_test`). Ranking
    models are left out: their scores are not ratings, and the top-N
    blend's per-user normalisation makes a score depend on which other
    movies of the user are scored.
    """
    sample = (
        scored_test.orderBy(F.xxhash64(C.USER_ID, C.MOVIE_ID), C.USER_ID, C.MOVIE_ID)
        .limit(n)
        .withColumns({name: F.col(column) for name, column in column_of.items()})
        .join(movies.select(C.MOVIE_ID, C.TITLE), on=C.MOVIE_ID, how="left")
    )
    columns = [C.USER_ID, C.MOVIE_ID, C.TITLE, C.RATING, E.COLD_USER, E.COLD_MOVIE, *column_of]
    return sample.select(*columns).orderBy(C.USER_ID, C.MOVIE_ID).toPandas()


def metric_columns(k: int) -> list[str]:
    """The columns of the side-by-side metrics table, in order."""
    return ["rmse", "mae", "r2", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", f"coverage@{k}"]


def metrics_table(results: dict[str, Any], k: int):
    """One row per model, one column per metric (None where it does not apply), as pandas."""
    import pandas as pd

    columns = metric_columns(k)
    rows = [{"model": name, **{c: values.get(c) for c in columns}} for name, values in results.items()]
    return pd.DataFrame(rows, columns=["model", *columns])


def format_table(results: dict[str, Any], k: int) -> str:
    """The metrics of every model as a fixed-width text table ('-' where a metric does not apply)."""
    columns = metric_columns(k)
    width = max(len(c) for c in columns) + 1
    lines = ["model".ljust(12) + "".join(c.rjust(width) for c in columns)]
    for name, values in results.items():
        cells = []
        for column in columns:
            value = values.get(column)
            cells.append(("-" if value is None else f"{value:.4f}").rjust(width))
        lines.append(name.ljust(12) + "".join(cells))
    return "\n".join(lines)
