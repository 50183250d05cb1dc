"""The training pipeline: load -> split -> fit -> evaluate -> recommend -> publish.

``jobs/train_als.py`` and ``jobs/compare_models.py`` are this one function
(:func:`run`) with two sets of :class:`Outputs`; tests, the notebook and
the benchmarks call it the same way.

:data:`TRAIN` (``jobs/train_als.py``) writes to ``[train_als] output``::

    metrics.json            per model: rmse, mae, r2 (all test rows and the
                            warm subset), precision/recall/ndcg/map@K,
                            coverage@K, parameters, seed; the dataset, the
                            split, row counts incl. cold start, and wall
                            time per stage
    model/                  the model that recommends (biased ALS; the bias
                            baseline without it), with catalog/ and
                            movie_table/ for jobs/recommend.py and similar.py
    models/<name>/          every other fitted model (with --models)
    predictions_sample.csv  test rows with each rating model's prediction
    recommendations/        Parquet: top-N per custom user
    recommendations.csv     the same as CSV
    custom_ratings.csv      each custom rating and the movie it matched
    top_n_all/              with --top-n-all: top-N for every training user

:data:`COMPARE` (``jobs/compare_models.py``) writes to ``[compare_models]
output``: ``metrics.json``, ``metrics.csv`` (one row per model),
``predictions_sample.csv`` and ``rankings/<name>/`` per ranked model
(Parquet: user_id, rank, movie_id, score: the top-K lists its ranking
metrics were computed from).

The output folder is published whole at the end (``io.staged_output``): a
failed run leaves an earlier output as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError, io, session
from movierec_spark import columns as C
from movierec_spark.config import Config
from movierec_spark.evaluation import protocol as P
from movierec_spark.models import registry as R
from movierec_spark.progress import StageTimer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outputs:
    """What a pipeline run produces besides the metrics."""

    section: str  # the config section of its output folder and model list
    recommend: bool  # save the recommending model, fold in the custom users
    rankings: bool  # keep every ranked model's top-K lists


TRAIN = Outputs("train_als", recommend=True, rankings=False)
COMPARE = Outputs("compare_models", recommend=False, rankings=True)


def models_wanted(cfg: Config, outputs: Outputs) -> list[str]:
    """The models a run fits (``[<section>] models``), each once, in the order given."""
    return list(dict.fromkeys(cfg[outputs.section]["models"]))


def recommending_model(models: dict[str, Any]):
    """The model that recommends: biased ALS, else the bias baseline, else None."""
    return models.get(R.ALS) or models.get(R.BIAS)


def read_custom_users(cfg: Config, catalog: DataFrame, scale):
    """The custom ratings file, checked and matched to movies: ``(ratings, title index)``, or ``(None, None)``.

    Read before any model is fitted, so a bad line costs seconds, not a fit.
    """
    from movierec_spark.data.titles import TitleIndex
    from movierec_spark.serving import custom

    path = cfg.get("recommend", {}).get("custom_ratings_file")
    if not path:
        return None, None
    index = TitleIndex.from_frame(catalog)
    ratings = custom.read_custom_ratings(path, index, scale)
    for line in custom.describe(ratings):
        log.info("%s", line)
    return ratings, index


def recommend_for_custom_users(spark, cfg: Config, fitter: R.ModelFitter, model, catalog, custom_ratings, index, train):
    """Top-N table of the custom users (pandas), their ratings and the movies matched, and ``model``'s movie table.

    ``[recommend] method``: ``foldin`` solves each custom user against the
    fitted model's fixed movies; ``retrain`` refits the model on the
    training ratings plus theirs (same parameters and seed). The movie table
    is the one ``foldin`` collected for ``model``, to be saved beside it;
    ``None`` after ``retrain``, which collects the refitted model's instead.
    """
    from movierec_spark.models import fit
    from movierec_spark.serving import custom
    from movierec_spark.serving.personal import METHOD_RETRAIN, CustomRecommender, RecommendSettings

    settings = RecommendSettings.from_config(cfg.get("recommend", {}))
    recommender = CustomRecommender(spark, model, catalog, settings, _index=index)
    first_id = recommender.next_user_id()
    rated = recommender.ratings_frame(custom_ratings, first_id)
    resolved = custom.resolved_table(custom_ratings, first_id)
    if settings.method == METHOD_RETRAIN:
        if model.als is not None:
            params = fitter.sized(R.als_params(cfg))
            refit = lambda everything: fit.fit_biased_als(everything, fitter.scale, params, R.bias_params(cfg))  # noqa: E731
        else:
            refit = lambda everything: fit.fit_bias_model(everything, fitter.scale, R.bias_params(cfg))  # noqa: E731
        custom_df = recommender.custom_frame(custom_ratings, first_id).cache()
        retrained = recommender.retrained(custom_df, refit, train)
        movies = recommender.collect_movie_table(retrained)
        users = recommender.collect_user_terms(retrained, custom_df)
        return recommender.top_n(rated, users, movies, model=retrained), resolved, None
    movies = recommender.collect_movie_table()
    return recommender.top_n(rated, recommender.fold_in(rated, movies), movies), resolved, movies


def top_n_for_all_users(cfg: Config, model, train: DataFrame, rows: int | None = None) -> DataFrame:
    """Top-N (``[recommend] top_n``) for every training user, computed and cached.

    Up to :data:`~movierec_spark.evaluation.protocol.RATINGS_PER_PARTITION`
    training ratings the users are ranked on the driver: the same ranking
    without starting the executors' Python workers.
    """
    from movierec_spark.serving.topn_all import top_n_all_users

    on_driver = rows is not None and rows <= P.RATINGS_PER_PARTITION
    top = top_n_all_users(model, train, int(cfg["recommend"]["top_n"]), on_driver=on_driver).cache()
    log.info("%d top-N rows for every training user", top.count())
    return top


@dataclass
class RunResult:
    """What a run produced: the metrics, the custom users' top-N table (or None), the output folder."""

    metrics: dict[str, Any]
    recommendations: Any
    output: Path

    def report(self) -> str:
        """The console's view: the custom users' top-N tables, then the metrics table."""
        from movierec_spark.evaluation.protocol import format_table
        from movierec_spark.serving.tables import format_top_n

        m = self.metrics
        lines = [] if self.recommendations is None else ["", format_top_n(self.recommendations)]
        lines += [f"\nTest metrics ({m['counts']['test_rows']} ratings, K={m['k']}), written to {self.output}:",
                  format_table(m["models"], m["k"])]
        return "\n".join(lines)


def run(spark: SparkSession, cfg: Config, outputs: Outputs = TRAIN) -> RunResult:
    """Run the pipeline on ``cfg`` and publish its output folder (``[<outputs.section>] output``)."""
    from movierec_spark.data.catalog import build_catalog
    from movierec_spark.data.load import load_data
    from movierec_spark.session import checkpoint_dir

    started = time.perf_counter()
    timer = StageTimer()
    output = io.check_output_dir(cfg[outputs.section]["output"])
    io.check_spark_writes_reach(spark, output)
    names = models_wanted(cfg, outputs)
    check_als_memory(spark, cfg, names)
    evaluate = cfg.get("evaluate", {})
    k = int(evaluate["k"])
    shuffle_before = None
    with checkpoint_dir(spark, cfg.get("als", {}).get("checkpoint_dir")) as checkpoints:
        try:
            with timer.stage("load"):
                loaded = load_data(spark, cfg["data"])
            custom_ratings = title_index = None
            catalog = None
            if outputs.recommend:
                with timer.stage("custom ratings"):
                    catalog = build_catalog(loaded.movies, loaded.ratings).cache()
                    custom_ratings, title_index = read_custom_users(cfg, catalog, loaded.scale)
            parts = P.working_partitions(P.known_ratings(loaded), session.default_parallelism(spark))
            shuffle_before = P.fewer_shuffle_partitions(spark, parts)
            with timer.stage("split"):
                split = P.prepare_split(spark, cfg, loaded, parts)
            fitter = R.ModelFitter(cfg, loaded.scale, split.counts["train_rows"], session.default_parallelism(spark))
            models = R.fit_models(split.train, names, fitter, timer)
            with timer.stage("score test"):
                scored_test, column_of = P.score_test(models, split.test)
                scored_test = session.materialize(scored_test)
            # The ranking stages shuffle users x unseen movies, far more than
            # the ratings: they get the configured partition count back.
            P.restore_shuffle_partitions(spark, shuffle_before)
            shuffle_before = None
            results, rankings = evaluate_all(models, fitter, split, scored_test, column_of, evaluate, outputs, timer)
            sample_rows = int(evaluate["predictions_sample"])
            with timer.stage("predictions sample"):
                sample = P.predictions_sample(scored_test, column_of, loaded.movies, sample_rows) if sample_rows else None
            recs_table = resolved = collected_movies = all_top = None
            recommender = recommending_model(models) if outputs.recommend else None
            if outputs.recommend and recommender is None:
                log.warning("no als or bias model among the models: no recommendations and no saved model/")
            if recommender is not None and custom_ratings:
                with timer.stage("recommend"):
                    recs_table, resolved, collected_movies = recommend_for_custom_users(
                        spark, cfg, fitter, recommender, catalog, custom_ratings, title_index, split.train
                    )
            if recommender is not None and cfg.get("recommend", {}).get("all_users", False):
                with timer.stage("top-n all users"):
                    all_top = top_n_for_all_users(cfg, recommender, split.train, split.counts["train_rows"])
            metrics = {
                "dataset": loaded.name,
                "source": cfg["data"].get("ingested_dir") or cfg["data"].get("source"),
                "scale": {"low": loaded.scale.low, "high": loaded.scale.high, "step": loaded.scale.step},
                "split": split.description,
                "counts": split.counts,
                "k": k,
                "models": results,
                "best": P.best_models(results, k),
                "checkpoint_dir": checkpoints,
                "spark": {"version": spark.version, "master": session.master(spark)},
            }
            with timer.stage("write"), io.staged_output(output) as staging:
                if outputs.recommend:
                    save_models(staging, models, recommender, catalog, collected_movies)
                if outputs.rankings:
                    write_rankings(staging / "rankings", rankings)
                    io.write_csv(staging / "metrics.csv", P.metrics_table(results, k))
                write_tables(staging, sample, all_top, recs_table, resolved)
                metrics["stages"] = dict(timer.seconds)
                metrics["wall_seconds"] = time.perf_counter() - started
                io.write_json(staging / "metrics.json", metrics)
            # Again after publishing, with the write stage's time.
            metrics["stages"] = dict(timer.seconds)
            metrics["wall_seconds"] = time.perf_counter() - started
            io.write_json(output / "metrics.json", metrics)
        finally:
            P.restore_shuffle_partitions(spark, shuffle_before)
    return RunResult(metrics, recs_table, output)


def als_sections(cfg: Config, names: list[str]) -> list[str]:
    """The config sections (``als``, ``implicit``) whose rank a run of ``names`` fits, blend members included."""
    used = set(names)
    if R.BLEND in used:
        used |= set(R.blend_settings(cfg)["members"])
    if R.TOPN_BLEND in used:
        used |= set(R.topn_blend_weights(cfg))
    return [section for section, model in (("als", R.ALS), ("implicit", R.IMPLICIT)) if model in used]


def check_als_memory(spark: SparkSession, cfg: Config, names: list[str]) -> None:
    """Refuse, before loading anything, an ALS rank that cannot fit ``spark.driver.memory`` (models/als_memory.py)."""
    from movierec_spark.models import als_memory

    limit = session.setting(spark, "spark.driver.memory", als_memory.DEFAULT_DRIVER_MEMORY)
    als_memory.check_ranks(cfg, als_sections(cfg, names), session.default_parallelism(spark), limit)


def evaluate_all(models, fitter, split, scored_test, column_of, evaluate: dict, outputs: Outputs, timer):
    """``(name -> metrics entry, name -> top-K Arrow table)`` of every model, one timed stage each."""
    k = int(evaluate["k"])
    ranking = bool(evaluate.get("ranking_metrics", True))
    warm = bool(evaluate.get("warm_metrics", True))
    results: dict[str, Any] = {}
    rankings: dict[str, Any] = {}
    truth = P.RankingTruth(split.train, split.test, split.counts["train_rows"])
    for name, model in models.items():
        with timer.stage(f"evaluate {name}"):
            params = model.describe()
            predictions = (
                scored_test.withColumn(C.PREDICTION, F.col(column_of[name])) if name in column_of else None
            )
            evaluation = P.evaluate_model(
                model, split.train, split.test, k, predictions, ranking=ranking, warm=warm,
                counts=split.counts, keep_rankings=outputs.rankings, truth=truth,
            )
            if evaluation.rankings is not None:
                rankings[name] = evaluation.rankings
            results[name] = {
                **evaluation.metrics,
                "params": params,
                "seed": params.get("seed"),
                "counts": split.counts,
                **fitter.extra.get(name, {}),
            }
    return results, rankings


def save_models(staging: Path, models: dict[str, Any], recommender, catalog: DataFrame, movies) -> None:
    """``model/`` (the recommending model, its catalog and movie table) and ``models/<name>/`` for the others.

    Models share tables (the bias tables of bias and als, a blend's
    members): each is written once, then copied as files.
    """
    from movierec_spark.serving.personal import save_catalog

    saved = io.SavedTables()
    if recommender is not None:
        recommender.save(staging / "model", saved)
        save_catalog(recommender, catalog, staging / "model", movies)
    for name, model in models.items():
        if model is not recommender:
            model.save(staging / "models" / name, saved)


def write_tables(staging: Path, sample, all_top, recs_table, resolved) -> None:
    """The tables a run writes besides its models, where it made them (None: not made)."""
    if sample is not None:
        io.write_csv(staging / "predictions_sample.csv", sample)
    if all_top is not None:
        io.write_table(all_top, staging / "top_n_all")
    if recs_table is not None:
        from movierec_spark.serving.tables import TOP_N_SCHEMA, for_csv, to_arrow

        io.write_table(to_arrow(recs_table, TOP_N_SCHEMA), staging / "recommendations")
        io.write_csv(staging / "recommendations.csv", for_csv(recs_table))
        io.write_csv(staging / "custom_ratings.csv", resolved)


def write_rankings(folder: Path, rankings: dict[str, Any]) -> None:
    """``folder/<name>/``: each ranked model's top-K lists, one Parquet table each."""
    folder.mkdir()
    for name, table in rankings.items():
        io.write_table(table, folder / name)


def check_data_and_split(cfg: Config) -> None:
    """Refuse ``[data]`` and ``[split]`` paths that do not exist (jobs/tune_als.py shares this).

    The values themselves were checked by :mod:`movierec_spark.settings` (``cli.build_config``).
    """
    io.check_job_paths(cfg.get("data", {}))
    if P.split_method(cfg) == "predefined":
        split = cfg.get("split", {})
        for key, flag in (("train_ratings_file", "--train-ratings"), ("test_ratings_file", "--test-ratings")):
            io.check_input_file(split.get(key) or "", f"{flag} file")


def check(cfg: Config, outputs: Outputs = TRAIN) -> None:
    """What the settings cannot know, before any JVM starts: the files exist, the output can be written."""
    check_data_and_split(cfg)
    if outputs.recommend:
        custom = cfg.get("recommend", {}).get("custom_ratings_file")
        if custom:
            io.check_input_file(custom, "custom ratings file", " (pass --custom-ratings '' for none)")
    output = cfg.get(outputs.section, {}).get("output")
    if not output:
        raise MovieRecError("no output folder: pass --output DIR")
    io.check_output_dir(output)
