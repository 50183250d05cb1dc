"""Train and evaluate the recommenders on a MovieLens release.

    ./spark-submit.sh jobs/train_als.py [--dataset NAME] [--split METHOD] [--rank N] ... [--output DIR]

Loads the release, splits its ratings (seeded random split by default), fits
the models named in ``[evaluate] models`` -- the global mean and damped-bias
(user, movie, user-day) baselines, biased ALS (biases plus ALS on their
residuals), item- and user-based kNN on the same residuals, a blend of
those (and of the implicit ALS and EASE scores) fitted on a validation
slice of the training split, and for top-N
ranking ALS with implicit preferences, EASE and RP3beta (item-to-item
weights), a weighted sum of those and a popularity baseline --
evaluates each on the test split, recommends top-N unseen movies for the
people in ``conf/custom_ratings.csv`` (movies by id or title; folded into
the biased ALS model, or refitted with ``--custom-method retrain``), and
writes to ``--output DIR``:

    metrics.json            per model: rmse, mae, r2 (all test rows and the
                            warm subset ALS itself scores), precision/recall/
                            ndcg/map@K, coverage@K, parameters, seed; the
                            dataset, split, row counts incl. cold start, and
                            wall time per stage
    model/                  the biased ALS model (RecommenderModel.load), with
                            catalog/: the movies and their rating counts that
                            jobs/recommend.py and jobs/similar.py need, and
                            movie_table/: one Parquet file, the catalog with
                            the model's item bias and factors, which they
                            read on the driver (no Spark job)
    models/<name>/          every fitted model
    predictions_sample.csv  test rows with each rating model's prediction
    recommendations/        Parquet: top-N per custom user (columns as
                            jobs/recommend.py's top_n/)
    recommendations.csv     the same as CSV
    top_n_all/              with --top-n-all: Parquet, top-N unseen movies
                            of every training user (user_id, rank,
                            movie_id, prediction), from blocked factor
                            products (movierec_spark.serving.topn_all)
    custom_ratings.csv      each custom rating and the movie it matched

Same data, same flags, same seed: same split and same metrics.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from movierec_spark import MovieRecError, cli
from movierec_spark import columns as C
from movierec_spark.config import Config

log = logging.getLogger("jobs.train_als")

PROG = "train_als"

GLOBAL_MEAN = "global_mean"
BIAS = "bias"
ALS_MODEL = "als"
ITEM_KNN = "item_knn"
USER_KNN = "user_knn"
BLEND = "blend"
IMPLICIT = "implicit"
POPULARITY = "popularity"
EASE = "ease"
RP3BETA = "rp3beta"
TOPN_BLEND = "topn_blend"
MODEL_NAMES = (GLOBAL_MEAN, BIAS, ALS_MODEL, ITEM_KNN, USER_KNN, BLEND, IMPLICIT, EASE, RP3BETA, TOPN_BLEND, POPULARITY)
# Models the blend can combine: the rating models, and the two ranking models
# whose scores carry what the ratings' values do not (which movies a user
# chose to rate: implicit ALS, EASE); the weights put every score on the
# rating scale.
BLEND_MEMBERS = (BIAS, ALS_MODEL, ITEM_KNN, USER_KNN, IMPLICIT, EASE)
# Models the top-N blend can combine (each scores a ranking).
TOPN_MEMBERS = (IMPLICIT, EASE, RP3BETA, POPULARITY)
# Models whose scores are rankings, not ratings: no rmse/mae/r2.
RANKING_ONLY = (IMPLICIT, EASE, RP3BETA, TOPN_BLEND, POPULARITY)
# Not ranked: the global mean ties every movie; scoring every unseen movie of
# every user with a neighbourhood model (and so the blend) costs a join per
# user's rating and candidate, hours on a large release, and explicit-rating
# models rank poorly anyway (the figures: nDCG@10 0.04).
REGRESSION_ONLY = (GLOBAL_MEAN, ITEM_KNN, USER_KNN, BLEND)
PRIMARY = ALS_MODEL


# --- flags ---


class _SetSeeds(argparse.Action):
    """``--seed N`` sets every seed: the split's and the models'."""

    config_keys = ("als.seed", "split.seed")  # named in errors (cli.config_flags)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, "als.seed", values)
        if getattr(namespace, "split.seed", None) is None:
            setattr(namespace, "split.seed", values)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _name_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODEL_NAMES)}"
        )
    return names


def add_split_flags(parser: argparse.ArgumentParser) -> None:
    """The split flags (``[split]`` keys); jobs/tune_als.py shares them."""
    from movierec_spark.evaluation.split import METHODS

    split = parser.add_argument_group("split")
    cli.add_flag(split, "--split", "split.method", choices=METHODS, help="how to split ratings into train and test")
    cli.add_flag(split, "--test-fraction", "split.test_fraction", type=cli.number, help="share of ratings in test")
    cli.add_flag(split, "--split-seed", "split.seed", type=_int, help="seed of the random / stratified split")
    cli.add_flag(
        split, "--train-ratings", "split.train_ratings_file", metavar="PATH",
        help="predefined split: training ratings in the release's format (e.g. ml-100k u1.base); implies --split predefined",
    )
    cli.add_flag(
        split, "--test-ratings", "split.test_ratings_file", metavar="PATH",
        help="predefined split: test ratings in the release's format (e.g. ml-100k u1.test)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_data_flags(parser)
    add_split_flags(parser)

    model = parser.add_argument_group("models")
    model.add_argument(
        "--seed", type=_int, action=_SetSeeds, metavar="N",
        help="set every seed (split and models); --split-seed overrides the split's",
    )
    cli.add_flag(model, "--models", "evaluate.models", type=_name_list, metavar="A,B",
                 help=f"models to fit, from {','.join(MODEL_NAMES)}")
    cli.add_flag(model, "--rank", "als.rank", type=cli.whole_number, help="ALS rank (latent factors)")
    cli.add_flag(model, "--max-iter", "als.max_iter", type=cli.whole_number, help="ALS iterations")
    cli.add_flag(model, "--reg-param", "als.reg_param", type=cli.number, help="ALS regularisation")
    cli.add_flag(model, "--nonnegative", "als.nonnegative", action=argparse.BooleanOptionalAction,
                 metavar=None, help="constrain ALS factors to be non-negative")
    cli.add_flag(model, "--solver", "als.solver", metavar="auto|mllib|driver",
                 help="who solves explicit ALS: mllib (Spark's distributed ALS), driver (the same equations "
                      "in the driver process), auto (driver on a local master, mllib on a cluster)")
    cli.add_flag(model, "--num-user-blocks", "als.num_user_blocks", type=cli.whole_number, help="ALS user blocks")
    cli.add_flag(model, "--num-item-blocks", "als.num_item_blocks", type=cli.whole_number, help="ALS item blocks")
    cli.add_flag(model, "--ratings-per-block", "als.ratings_per_block", type=cli.whole_number, metavar="N",
                 help="size the ALS blocks to the training ratings: one per N, at least one per core, "
                      "at most --num-user/item-blocks; 0: the block counts as given")
    cli.add_flag(model, "--checkpoint-interval", "als.checkpoint_interval", type=cli.whole_number,
                 help="checkpoint ALS every N iterations")
    cli.add_flag(model, "--checkpoint-dir", "als.checkpoint_dir", metavar="DIR",
                 help="Spark checkpoint folder (a shared filesystem on a cluster); empty: a temporary folder")
    cli.add_flag(model, "--user-damping", "bias.user_damping", type=cli.number,
                 help="pseudo-count shrinking user biases to 0")
    cli.add_flag(model, "--item-damping", "bias.item_damping", type=cli.number,
                 help="pseudo-count shrinking movie biases to 0")
    cli.add_flag(model, "--bias-iterations", "bias.bias_iterations", type=cli.whole_number,
                 help="alternating passes fitting movie then user biases")

    implicit = parser.add_argument_group("top-N mode (ALS with implicitPrefs)")
    cli.add_flag(implicit, "--implicit-rank", "implicit.rank", type=cli.whole_number, help="rank")
    cli.add_flag(implicit, "--implicit-max-iter", "implicit.max_iter", type=cli.whole_number, help="iterations")
    cli.add_flag(implicit, "--implicit-reg-param", "implicit.reg_param", type=cli.number,
                 help="regularisation")
    cli.add_flag(implicit, "--alpha", "implicit.alpha", type=cli.number,
                 help="confidence growth per unit of preference")
    cli.add_flag(implicit, "--confidence", "implicit.confidence", choices=("binary", "rating"),
                 help="preference of a rating: 1 (binary) or the rating itself")
    cli.add_flag(implicit, "--topn-normalise", "topn_blend.normalise", choices=("none", "max", "zscore", "rrf"),
                 help="topn_blend: rescale each member's scores per user before adding them")

    evaluate = parser.add_argument_group("evaluation and output")
    cli.add_flag(evaluate, "--k", "evaluate.k", type=cli.whole_number, help="K of the ranking metrics")
    cli.add_flag(evaluate, "--predictions-sample", "evaluate.predictions_sample", type=cli.whole_number,
                 help="test rows written to predictions_sample.csv")
    cli.add_flag(evaluate, "--top-n", "recommend.top_n", type=cli.whole_number,
                 help="recommendations per custom user")
    cli.add_flag(evaluate, "--custom-ratings", "recommend.custom_ratings_file", metavar="FILE",
                 help="CSV user,movie,rating (movie: id or title) of people to recommend for; empty: none")
    cli.add_flag(evaluate, "--custom-method", "recommend.method", choices=("foldin", "retrain"), metavar="HOW",
                 help="foldin: solve the custom users against the fitted model; retrain: refit with their ratings")
    cli.add_flag(evaluate, "--min-ratings", "recommend.min_ratings", type=cli.whole_number,
                 help="fewest ratings a recommended movie must have")
    cli.add_flag(evaluate, "--top-n-all", "recommend.all_users", action=argparse.BooleanOptionalAction,
                 metavar=None, help="also write top-N for every training user to top_n_all/ (blocked, no cross join)")
    cli.add_flag(evaluate, "--ranking-metrics", "evaluate.ranking_metrics", action=argparse.BooleanOptionalAction,
                 metavar=None, help="compute precision/recall/ndcg/map/coverage@K (a top-K per test user)")
    cli.add_flag(evaluate, "--warm-metrics", "evaluate.warm_metrics", action=argparse.BooleanOptionalAction,
                 metavar=None, help="also compute RMSE/MAE/R2 over the test rows whose user and movie are in training")
    cli.add_flag(evaluate, "--output", "train_als.output", metavar="DIR", help="output folder")
    return parser


# --- validation before Spark starts ---


def _section(cfg: Config, name: str) -> dict[str, Any]:
    return dict(cfg.get(name, {}))


def als_params(cfg: Config):
    from movierec_spark.models.fit import AlsParams

    return AlsParams.from_config(_section(cfg, "als"))


def ratings_per_block(cfg: Config) -> int:
    """``[als] ratings_per_block``, checked (0, the block counts as given, when unset)."""
    value = _section(cfg, "als").get("ratings_per_block", 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MovieRecError(f"[als] ratings_per_block must be a whole number of 0 or more, got {value!r}")
    return value


def sized_to(params, cfg: Config, rows: int | None, parallelism: int | None):
    """``params`` with ALS blocks sized to ``rows`` training ratings (``[als] ratings_per_block``).

    One block per ``ratings_per_block`` ratings, at least one per core, at
    most the configured counts (:func:`movierec_spark.sizing.pieces`): an
    ALS iteration runs a task per block and stage, so on a small release
    every block beyond one per core is overhead, and ml-25m's 20M training
    ratings keep 10 x 10 with 2,000,000. ALS seeds each block's initial
    factors with the seed and the block id, so another count is the same
    model from another random start. Unchanged when ``ratings_per_block``
    is 0 or the row count is unknown.
    """
    from movierec_spark.sizing import pieces

    per_block = ratings_per_block(cfg)
    if not per_block or rows is None or parallelism is None:
        return params
    return params.with_(
        num_user_blocks=pieces(rows, per_block, parallelism, params.num_user_blocks),
        num_item_blocks=pieces(rows, per_block, parallelism, params.num_item_blocks),
    )


def implicit_params(cfg: Config):
    from movierec_spark.models.fit import AlsParams

    return AlsParams.from_config({**_section(cfg, "als"), **_section(cfg, "implicit")})


def ease_params(cfg: Config):
    from movierec_spark.models.ease import EaseParams

    return EaseParams.from_config(_section(cfg, "ease"))


def rp3beta_params(cfg: Config):
    from movierec_spark.models.rp3beta import Rp3BetaParams

    return Rp3BetaParams.from_config(_section(cfg, "rp3beta"))


def topn_blend_weights(cfg: Config) -> dict[str, float]:
    """``[topn_blend]``: member name -> weight, checked."""
    section = _section(cfg, "topn_blend")
    members, weights = section.get("members", [IMPLICIT, EASE]), section.get("weights", [0.6, 0.4])
    if not isinstance(members, list) or not members or any(m not in TOPN_MEMBERS for m in members):
        raise MovieRecError(f"[topn_blend] members must be a list of {', '.join(TOPN_MEMBERS)}, got {members!r}")
    if len(set(members)) != len(members):
        raise MovieRecError(f"[topn_blend] members names a model twice: {members!r}")
    if (
        not isinstance(weights, list) or len(weights) != len(members)
        or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w < float("inf") for w in weights)
    ):
        raise MovieRecError(f"[topn_blend] weights must be {len(members)} numbers of 0 or more, one per member, got {weights!r}")
    return {member: float(weight) for member, weight in zip(members, weights)}


def topn_blend_normalise(cfg: Config) -> str:
    """``[topn_blend] normalise``, checked (``none`` when unset)."""
    from movierec_spark.models.ease import NORMALISE_NONE, check_normalisation

    return check_normalisation(_section(cfg, "topn_blend").get("normalise", NORMALISE_NONE))


def bias_params(cfg: Config):
    from movierec_spark.models.fit import BiasParams

    return BiasParams.from_config(_section(cfg, "bias"))


def models_wanted(cfg: Config) -> list[str]:
    names = _section(cfg, "evaluate").get("models", list(MODEL_NAMES))
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODEL_NAMES))
    if unknown or not names:
        raise MovieRecError(f"[evaluate] models: unknown {', '.join(unknown) or '(empty list)'}; choose from {', '.join(MODEL_NAMES)}")
    return list(dict.fromkeys(names))


def split_method(cfg: Config) -> str:
    section = _section(cfg, "split")
    if section.get("train_ratings_file") or section.get("test_ratings_file"):
        return "predefined"
    return section.get("method", "random")


def validate_data_and_split(cfg: Config) -> None:
    """Refuse ``[data]`` and ``[split]`` paths that do not exist (jobs/tune_als.py shares this).

    The values themselves were checked by movierec_spark.settings (cli.build_config).
    """
    data = _section(cfg, "data")
    for key in ("source", "ingested_dir"):
        if data.get(key) and not Path(data[key]).expanduser().exists():
            raise MovieRecError(f"{key.replace('_dir', '')} path {data[key]} does not exist")
    if split_method(cfg) == "predefined":
        split = _section(cfg, "split")
        for key, flag in (("train_ratings_file", "--train-ratings"), ("test_ratings_file", "--test-ratings")):
            if not Path(split.get(key) or "").expanduser().is_file():
                raise MovieRecError(f"{flag} file {split.get(key)} does not exist")


def validate(cfg: Config) -> None:
    """What the settings cannot know, before any JVM starts: the files exist, the output can be written."""
    validate_data_and_split(cfg)
    custom = _section(cfg, "recommend").get("custom_ratings_file")
    if custom and not Path(custom).expanduser().is_file():
        raise MovieRecError(f"custom ratings file {custom} does not exist (pass --custom-ratings '' for none)")
    if not _section(cfg, "train_als").get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    from movierec_spark import io
    io.check_output_dir(_section(cfg, "train_als")["output"])


# --- the job ---


def load_release(spark, cfg: Config):
    """The release's tables (``LoadedRelease``: ratings, movies, ..., scale)."""
    from movierec_spark.data.load import load_data

    return load_data(spark, cfg["data"])


def make_split(spark, cfg: Config, loaded):
    """The train/test split the config asks for, and rows rejected on the way."""
    from movierec_spark.evaluation import split as S

    section = _section(cfg, "split")
    method = split_method(cfg)
    if method == S.PREDEFINED:
        from movierec_spark.data.load import load_ratings_file
        from movierec_spark.data.releases import get_release

        release = get_release(loaded.name)
        movie_ids = loaded.movies.select(C.MOVIE_ID)
        train, train_rejects = load_ratings_file(spark, release, section["train_ratings_file"], movie_ids)
        test, test_rejects = load_ratings_file(spark, release, section["test_ratings_file"], movie_ids)
        return S.predefined_split(train, test), {
            "train_file_rejects": train_rejects.count(),
            "test_file_rejects": test_rejects.count(),
        }
    partitions = section.get("partitions", S.SPLIT_PARTITIONS)
    return S.split_ratings(
        loaded.ratings, method, float(section["test_fraction"]), int(section["seed"]), partitions
    ), {}


# Ratings per partition of the cached training and test ratings (about
# 20 MB of cached columns): what a task handles before more partitions help.
RATINGS_PER_PARTITION = 1_000_000


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
    Every later stage runs a task per partition of these frames (ALS
    partitions its input into its own blocks), so on a small release the
    random split's 16 partitions are mostly per-task overhead. Only ever
    fewer than the split made (:func:`fewer_partitions`): ml-25m asks for
    25 and keeps its 16.
    """
    from movierec_spark.sizing import pieces

    return None if rows is None else pieces(rows, RATINGS_PER_PARTITION, parallelism)


SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"


def fewer_shuffle_partitions(spark, partitions: int | None) -> str | None:
    """Lower the session's ``spark.sql.shuffle.partitions`` to ``partitions``; the value to restore, or None.

    Adaptive execution coalesces small shuffles, but not the tables the
    job checkpoints (the bias tables) nor joins with them (the top-N
    input), which keep their hash partitions: on ml-latest-small every job
    reading them and every write of them ran 16 tasks. Never raised:
    ml-25m keeps conf/spark-defaults.conf's 16. For the ratings-sized
    stages only: ``run`` restores the configured count
    (:func:`restore_shuffle_partitions`) once the test ratings are scored.
    """
    current = spark.conf.get(SHUFFLE_PARTITIONS)
    if partitions is None or partitions >= int(current):
        return None
    spark.conf.set(SHUFFLE_PARTITIONS, str(partitions))
    log.info("%d shuffle partitions (sized to the ratings; %s configured)", partitions, current)
    return current


def restore_shuffle_partitions(spark, before: str | None) -> None:
    """Set ``spark.sql.shuffle.partitions`` back to what :func:`fewer_shuffle_partitions` returned (None: nothing to do)."""
    if before is not None:
        spark.conf.set(SHUFFLE_PARTITIONS, before)
        log.info("%s shuffle partitions again (the configured count)", before)


def fewer_partitions(frame, partitions: int | None):
    """``frame`` in at most ``partitions`` partitions (``coalesce``: no shuffle, same rows); None: as it is."""
    return frame if partitions is None else frame.coalesce(partitions)


def knn_params(cfg: Config, name: str):
    """``KNNParams`` of ``item_knn`` or ``user_knn`` from their config section."""
    from movierec_spark.models.knn import ITEM_BASED, USER_BASED, KNNParams

    kind = ITEM_BASED if name == ITEM_KNN else USER_BASED
    return KNNParams.from_config({**_section(cfg, name), "kind": kind})


def blend_settings(cfg: Config) -> dict[str, Any]:
    """``[blend]``: members, validation_fraction, folds, ridge, refit, support (checked)."""
    section = _section(cfg, "blend")
    members = list(dict.fromkeys(section.get("members", list(BLEND_MEMBERS))))
    unknown = sorted(set(members) - set(BLEND_MEMBERS))
    if unknown or len(members) < 2:
        raise MovieRecError(
            f"[blend] members must name 2 or more of {', '.join(BLEND_MEMBERS)}, got {members!r}"
        )
    fraction = section.get("validation_fraction", 0.1)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise MovieRecError(f"[blend] validation_fraction must be between 0 and 1 (exclusive), got {fraction!r}")
    folds = section.get("folds", 5)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise MovieRecError(f"[blend] folds must be a whole number of 2 or more, got {folds!r}")
    ridge = section.get("ridge", 1e-4)
    if isinstance(ridge, bool) or not isinstance(ridge, (int, float)) or not 0 <= ridge < float("inf"):
        raise MovieRecError(f"[blend] ridge must be a finite number of 0 or more, got {ridge!r}")
    flags = {}
    for key, default in (("refit", True), ("support", False)):
        flags[key] = section.get(key, default)
        if not isinstance(flags[key], bool):
            raise MovieRecError(f"[blend] {key} must be true or false, got {flags[key]!r}")
    return {"members": members, "validation_fraction": float(fraction), "folds": folds,
            "ridge": float(ridge), **flags}


class _Fitters:
    """Fits any rating model on a ratings frame, one bias baseline per frame.

    ``rows`` (the training ratings) and ``parallelism`` (the session's
    default) size the ALS blocks when ``[als] ratings_per_block`` asks for it.
    """

    def __init__(self, cfg: Config, scale, rows: int | None = None, parallelism: int | None = None):
        self.cfg = cfg
        self.scale = scale
        self.rows = rows
        self.parallelism = parallelism
        self._baselines: dict[int, tuple[Any, Any]] = {}

    def als(self, params):
        return sized_to(params, self.cfg, self.rows, self.parallelism)

    def baseline(self, data):
        from movierec_spark.models import fit

        key = id(data)
        if key not in self._baselines:
            model = fit.fit_bias_model(data, self.scale, bias_params(self.cfg))
            # Checkpointed (computed now, lineage cut): every model built on
            # this baseline joins these tables, and the blend chains several
            # such models, so their query plans would otherwise repeat the
            # bias fitting many times over.
            model.user_bias = model.user_bias.checkpoint()
            model.item_bias = model.item_bias.checkpoint()
            if model.day_bias is not None:
                model.day_bias = model.day_bias.checkpoint()
            self._baselines[key] = (data, model)  # keeps data alive, so its id stays unique
        return self._baselines[key][1]

    def __call__(self, name: str, data):
        from movierec_spark.models import fit
        from movierec_spark.models.knn import fit_knn

        if name == GLOBAL_MEAN:
            return fit.fit_global_mean_model(data, self.scale)
        if name == BIAS:
            return self.baseline(data)
        if name == ALS_MODEL:
            return fit.fit_biased_als(
                data, self.scale, self.als(als_params(self.cfg)), bias_params(self.cfg), self.baseline(data)
            )
        if name in (ITEM_KNN, USER_KNN):
            model = fit_knn(data, self.baseline(data), knn_params(self.cfg, name))
            model.similarities.count()  # computed here, so the fit stage's time is the fit's
            return model
        if name == IMPLICIT:
            confidence = _section(self.cfg, "implicit").get("confidence", "binary")
            return fit.fit_implicit_als(data, self.scale, self.als(implicit_params(self.cfg)), confidence)
        if name == POPULARITY:
            return fit.fit_popularity_model(data, self.scale)
        if name == EASE:
            from movierec_spark.models.ease import fit_ease

            return fit_ease(data, ease_params(self.cfg))
        if name == RP3BETA:
            from movierec_spark.models.rp3beta import fit_rp3beta

            return fit_rp3beta(data, rp3beta_params(self.cfg))
        raise MovieRecError(f"unknown model {name!r}")  # pragma: no cover - names are checked first


def fit_models(train, scale, cfg: Config, timer, rows: int | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit every model in ``[evaluate] models``.

    Returns ``(name -> model with predict, name -> extra metrics)``; the
    blend's extra is its validation report (weights, each member's
    validation RMSE, whether it beat them all). ``rows``: the training
    ratings, known already, which size the ALS blocks (``[als] ratings_per_block``).
    """
    from movierec_spark.models import blend as B

    wanted = models_wanted(cfg)
    fitters = _Fitters(cfg, scale, rows, train.sparkSession.sparkContext.defaultParallelism)
    extra: dict[str, Any] = {}
    report = None
    first: dict[str, Any] = {}
    if BLEND in wanted:
        settings = blend_settings(cfg)
        members = settings["members"]
        with timer.stage("blend: fit members on the fit part"):
            seed = int(_section(cfg, "split").get("seed", 42))
            fit_part, validation = B.validation_split(train, settings["validation_fraction"], seed)
            fit_part, validation = fit_part.cache(), validation.cache()
            first = {name: fitters(name, fit_part) for name in members}
        with timer.stage("blend: weights on the validation slice"):
            scored = B.with_predictions(validation, first)
            if settings["support"]:
                scored = B.with_support(scored, B.support_tables(fit_part))
            scored = scored.cache()
            report = B.fit_blend_weights(
                scored, members, folds=settings["folds"], ridge=settings["ridge"], seed=seed,
                support=settings["support"],
            )
            report.params.update(validation_fraction=settings["validation_fraction"], refit=settings["refit"])
            scored.unpersist()
            validation.unpersist()
        if settings["refit"]:
            for model in first.values():
                if hasattr(model, "unpersist"):
                    model.unpersist()
            fit_part.unpersist()
    needed = set(wanted)
    if report is not None and report.params["refit"]:
        needed |= set(report.names)
    if TOPN_BLEND in wanted:
        needed |= set(topn_blend_weights(cfg))
    on_train = [n for n in MODEL_NAMES if n in needed and n not in (BLEND, TOPN_BLEND)]
    models: dict[str, Any] = {}
    for name in on_train:
        with timer.stage(f"fit {name}"):
            models[name] = fitters(name, train)
    if report is not None:
        members = models if report.params["refit"] else first
        if report.kept:
            # The support counts come from the ratings the members were fitted on.
            support = B.support_tables(train if report.params["refit"] else fit_part) if report.params["support"] else None
            models[BLEND] = B.BlendModel.from_report(members, report, scale, support)
        else:
            log.warning("the blend did not beat %s alone on validation: blend = %s", report.best_single, report.best_single)
            models[BLEND] = members[report.best_single]
        extra[BLEND] = {"blend": report.as_dict()}
    if TOPN_BLEND in wanted:
        from movierec_spark.models.ease import TopNBlend

        weights = topn_blend_weights(cfg)
        members = {name: models[name] for name in weights}
        models[TOPN_BLEND] = TopNBlend(members, weights, topn_blend_normalise(cfg))
    return {name: models[name] for name in wanted}, extra


def score_test(models: dict[str, Any], flagged_test):
    """``(flagged_test + one prediction column per rating model, name -> column)``.

    Every rating model scores the test rows once, here; the metrics, the
    blend and the predictions sample then read the columns. (A kNN model's
    prediction joins the whole similarity table: scoring the test rows once
    per use cost minutes on ml-latest-small.) The same fitted object under
    two names (the blend falling back to its best member) is scored once.
    """
    from pyspark.sql import functions as F

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
        if name in RANKING_ONLY:
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


def evaluate_model(
    name: str, model, train, flagged_test, k: int, predictions=None, ranking: bool = True,
    counts: dict[str, int] | None = None, warm: bool = True,
) -> dict[str, Any]:
    """Regression metrics (all rows and warm rows) and ranking metrics at ``k``.

    ``predictions``: the test rows with this model's ``prediction`` already
    computed (see :func:`score_test`); else the model predicts them here.
    ``ranking=False`` skips the ranking metrics (reported as None),
    ``warm=False`` the warm rows' (``warm`` is None).
    ``counts``: the split's counts (``test_rows``, ``cold_rows``), which
    spare the jobs that would check whether there are rows to evaluate.
    """
    from movierec_spark.evaluation import metrics as E
    result: dict[str, Any] = {}
    if name not in RANKING_ONLY:
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
    if ranking and name not in REGRESSION_ONLY:
        candidates = train.select(C.MOVIE_ID).distinct()
        users = flagged_test.select(C.USER_ID).distinct()
        top_k = ranking_top_k(model, users, candidates, train, k).cache()
        result.update(E.ranking_metrics(top_k, flagged_test, k))
        result[f"coverage@{k}"] = E.catalog_coverage(top_k, candidates)
        top_k.unpersist()
    else:
        result.update({f"{prefix}@{k}": None for prefix in E.RANKING_METRICS})
        result[f"coverage@{k}"] = None
    return result


def ranking_top_k(model, users, candidates, train, k: int):
    """Each test user's top-``k`` unseen candidates for the ranking metrics.

    A RecommenderModel (biases + factors) ranks by blocked factor products
    (movierec_spark.serving.topn_all); other models score the users x candidates
    cross join, which costs hours beyond ml-1m-sized data.
    """
    from movierec_spark.models.recommender import RecommenderModel
    from movierec_spark.serving.recommend import top_n_unseen
    from movierec_spark.serving.topn_all import top_n_all_users

    if isinstance(model, RecommenderModel):
        return top_n_all_users(model, train, k, users=users, candidates=candidates)
    return top_n_unseen(model, users, candidates, train, k)


def top_n_for_all_users(cfg: Config, model, train, rows: int | None = None):
    """Top-N (``[recommend] top_n``) for every training user, computed and cached.

    ``rows``: the training ratings. Up to :data:`RATINGS_PER_PARTITION`
    (data that fits one partition) the users are ranked on the driver
    (``top_n_all_users(on_driver=True)``): the same ranking without starting
    the executors' Python workers (their ranking job, then ``mapInPandas``, took 2.3 and 4.3 s
    in two event-logged ml-latest-small runs, bench/NOTES.md).
    """
    from movierec_spark.serving.topn_all import top_n_all_users

    on_driver = rows is not None and rows <= RATINGS_PER_PARTITION
    top = top_n_all_users(model, train, int(cfg["recommend"]["top_n"]), on_driver=on_driver).cache()
    log.info("%d top-N rows for every training user", top.count())
    return top


def read_custom_users(cfg: Config, catalog, scale):
    """The custom ratings file, checked and matched to movies (None without a file).

    Read before any model is fitted, so a bad line costs seconds, not a fit.
    Returns ``(ratings, title index)``.
    """
    from movierec_spark.serving import custom
    from movierec_spark.data.titles import TitleIndex

    path = _section(cfg, "recommend").get("custom_ratings_file")
    if not path:
        return None, None
    index = TitleIndex.from_frame(catalog)
    ratings = custom.read_custom_ratings(path, index, scale)
    for line in custom.describe(ratings):
        log.info("%s", line)
    return ratings, index


def recommend_for_custom_users(spark, cfg: Config, model, catalog, custom_ratings, index, train, scale, rows=None):
    """Top-N table of the custom users (movierec_spark.serving.personal; pandas), their first user id, ``model``'s movie table.

    ``[recommend] method``: ``foldin`` solves each custom user against the
    fitted model's fixed movies; ``retrain`` refits the model on the
    training ratings plus theirs (same parameters and seed). The movie
    table (a :class:`movierec_spark.serving.movie_table.MovieTable`) is the one
    ``foldin`` collected for ``model``, to be saved beside it; ``None``
    after ``retrain``, which collects the refitted model's instead.
    """
    from movierec_spark.models import fit
    from movierec_spark.serving.personal import METHOD_RETRAIN, CustomRecommender, RecommendSettings

    settings = RecommendSettings.from_config(_section(cfg, "recommend"))
    recommender = CustomRecommender(spark, model, catalog, settings, _index=index)
    first_id = recommender.next_user_id()
    rated = recommender.ratings_frame(custom_ratings, first_id)
    if settings.method == METHOD_RETRAIN:
        if model.als is not None:
            params = sized_to(als_params(cfg), cfg, rows, spark.sparkContext.defaultParallelism)
            refit = lambda everything: fit.fit_biased_als(everything, scale, params, bias_params(cfg))  # noqa: E731
        else:
            refit = lambda everything: fit.fit_bias_model(everything, scale, bias_params(cfg))  # noqa: E731
        custom_df = recommender.custom_frame(custom_ratings, first_id).cache()
        retrained = recommender.retrained(custom_df, refit, train)
        movies = recommender.collect_movie_table(retrained)
        users = recommender.collect_user_terms(retrained, custom_df)
        return recommender.top_n(rated, users, movies, model=retrained), first_id, None
    movies = recommender.collect_movie_table()
    return recommender.top_n(rated, recommender.fold_in(rated, movies), movies), first_id, movies


def model_params(model) -> dict[str, Any]:
    """The parameters a fitted model reports (a blend: its weights and members')."""
    from dataclasses import asdict

    from movierec_spark.models.blend import BlendModel
    from movierec_spark.models.ease import ItemWeightsModel, TopNBlend
    from movierec_spark.models.knn import KNNModel

    if isinstance(model, ItemWeightsModel):
        return {"model": model.NAME, **asdict(model.params)}
    if isinstance(model, TopNBlend):
        return {
            "model": TOPN_BLEND,
            "weights": model.weights,
            "normalise": model.normalise,
            "members": {name: model_params(member) for name, member in model.models.items()},
        }
    if isinstance(model, KNNModel):
        return {"model": "knn", **asdict(model.params), "baseline": model.baseline.params}
    if isinstance(model, BlendModel):
        return {
            "model": "blend",
            "intercept": model.intercept,
            "weights": model.weights,
            "members": {name: model_params(member) for name, member in model.models.items()},
        }
    return dict(model.params)


def best_models(results: dict[str, Any], k: int) -> dict[str, Any]:
    """The best model by test RMSE (lowest) and by nDCG@K (highest)."""
    best: dict[str, Any] = {}
    for metric, pick in (("rmse", min), (f"ndcg@{k}", max)):
        scored = {name: r[metric] for name, r in results.items() if r.get(metric) is not None}
        if scored:
            name = pick(scored, key=lambda n: scored[n])
            best[metric] = {"model": name, "value": scored[name]}
    return best


def predictions_sample(scored_test, column_of: dict[str, str], movies, n: int):
    """``n`` test rows (a fixed pseudo-random choice) with every rating model's prediction.

    The predictions come from ``scored_test`` (:func:`score_test`). Ranking
    models (implicit, EASE, the top-N blend, popularity) are left out: their
    scores are not ratings, and the top-N blend's per-user normalisation
    makes a score depend on which other movies of the user are scored, so a
    score for a sampled pair alone would not be the one it ranks by.
    Scoring them here also cost the default run most of its driver heap.
    """
    from pyspark.sql import functions as F

    from movierec_spark.evaluation import metrics as E

    sample = (
        scored_test.orderBy(F.xxhash64(C.USER_ID, C.MOVIE_ID), C.USER_ID, C.MOVIE_ID)
        .limit(n)
        .withColumns({name: F.col(column) for name, column in column_of.items()})
        .join(movies.select(C.MOVIE_ID, C.TITLE), on=C.MOVIE_ID, how="left")
    )
    columns = [C.USER_ID, C.MOVIE_ID, C.TITLE, C.RATING, E.COLD_USER, E.COLD_MOVIE, *column_of]
    return sample.select(*columns).orderBy(C.USER_ID, C.MOVIE_ID).toPandas()


def format_table(metrics: dict[str, Any], k: int) -> str:
    """The metrics of every model as a fixed-width text table."""
    columns = ["rmse", "mae", "r2", f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", f"coverage@{k}"]
    width = max(len(c) for c in columns) + 1
    lines = ["model".ljust(12) + "".join(c.rjust(width) for c in columns)]
    for name, values in metrics["models"].items():
        cells = []
        for column in columns:
            value = values.get(column)
            cells.append(("-" if value is None else f"{value:.4f}").rjust(width))
        lines.append(name.ljust(12) + "".join(cells))
    return "\n".join(lines)


def _checkpoint_dir(spark, cfg: Config) -> tuple[str, str | None]:
    """Set the checkpoint folder; return it and a temporary folder to remove after."""
    from movierec_spark.session import set_checkpoint_dir

    wanted = _section(cfg, "als").get("checkpoint_dir")
    if wanted:
        return set_checkpoint_dir(spark, wanted), None
    existing = spark.sparkContext.getCheckpointDir()
    if existing:
        return existing, None
    tmp = tempfile.mkdtemp(prefix="movierec-checkpoints-")
    return set_checkpoint_dir(spark, tmp), tmp


def run(spark, cfg: Config) -> int:
    from pyspark.sql import functions as F

    from movierec_spark.serving import custom
    from movierec_spark.evaluation import metrics as E
    from movierec_spark import io
    from movierec_spark.data.catalog import build_catalog
    from movierec_spark.serving.personal import save_catalog
    from movierec_spark.progress import StageTimer
    from movierec_spark.serving.tables import TOP_N_SCHEMA, for_csv, format_top_n, to_arrow

    started = time.perf_counter()
    timer = StageTimer()
    output = io.check_output_dir(cfg["train_als"]["output"])
    checkpoint_dir, tmp_checkpoints = _checkpoint_dir(spark, cfg)
    k = int(cfg["evaluate"]["k"])
    ranking = bool(cfg["evaluate"].get("ranking_metrics", True))
    warm = bool(cfg["evaluate"].get("warm_metrics", True))
    shuffle_before = None
    try:
        with timer.stage("load"):
            loaded = load_release(spark, cfg)
            ratings, movies, scale = loaded.ratings, loaded.movies, loaded.scale
        with timer.stage("custom ratings"):
            catalog = build_catalog(movies, ratings).cache()
            custom_ratings, title_index = read_custom_users(cfg, catalog, scale)
        parts = working_partitions(known_ratings(loaded), spark.sparkContext.defaultParallelism)
        shuffle_before = fewer_shuffle_partitions(spark, parts)
        with timer.stage("split"):
            split, rejected = make_split(spark, cfg, loaded)
            # Timestamps stay: the user-day bias ([bias] day_bias) uses them.
            keep = [c for c in (C.USER_ID, C.MOVIE_ID, C.RATING, C.TIMESTAMP) if c in split.train.columns]
            # Fewer partitions when the data is small (the same rows: the
            # split is decided before, per split partition).
            train = fewer_partitions(split.train.select(*keep), parts).cache()
            flagged_test = E.with_cold_flags(fewer_partitions(split.test.select(*keep), parts), train).cache()
            counts = {"train_rows": train.count(), **E.cold_start_counts(flagged_test), **rejected}
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
        models, extra = fit_models(train, scale, cfg, timer, counts["train_rows"])
        with timer.stage("score test"):
            scored_test, column_of = score_test(models, flagged_test)
            scored_test = scored_test.cache()
            scored_test.count()
        # The stages from here on shuffle more than the ratings: the ranking
        # metrics' candidate pairs are every user x every unseen movie (59
        # times ml-latest-small's ratings; in 2 shuffle partitions the top-N
        # blend's ranking ran out of a 4 GiB heap). They get the configured
        # count back, which adaptive execution coalesces by size.
        restore_shuffle_partitions(spark, shuffle_before)
        shuffle_before = None
        results: dict[str, Any] = {}
        for name, model in models.items():
            with timer.stage(f"evaluate {name}"):
                params = model_params(model)
                predictions = (
                    scored_test.withColumn(C.PREDICTION, F.col(column_of[name])) if name in column_of else None
                )
                results[name] = {
                    **evaluate_model(name, model, train, flagged_test, k, predictions, ranking, counts, warm),
                    "params": params,
                    "seed": params.get("seed"),
                    "counts": counts,
                    **extra.get(name, {}),
                }
        sample_rows = int(cfg["evaluate"]["predictions_sample"])
        with timer.stage("predictions sample"):
            sample = predictions_sample(scored_test, column_of, movies, sample_rows) if sample_rows else None
        recs_table = resolved = collected_movies = None
        # The biased ALS model recommends; without it (--models), the bias baseline.
        recommender_model = models.get(PRIMARY) or models.get(BIAS)
        if custom_ratings and recommender_model is None:
            log.warning("no als or bias model among --models: no recommendations for the custom users")
        elif custom_ratings:
            with timer.stage("recommend"):
                recs_table, first_id, collected_movies = recommend_for_custom_users(
                    spark, cfg, recommender_model, catalog, custom_ratings, title_index, train, scale,
                    counts["train_rows"],
                )
                resolved = custom.resolved_table(custom_ratings, first_id)
        all_top = None
        if _section(cfg, "recommend").get("all_users", False):
            if recommender_model is None:
                log.warning("no als or bias model among --models: no top-N for all users")
            else:
                with timer.stage("top-n all users"):
                    all_top = top_n_for_all_users(cfg, recommender_model, train, counts["train_rows"])

        metrics = {
            "dataset": loaded.name,
            "source": cfg["data"].get("ingested_dir") or cfg["data"].get("source"),
            "scale": {"low": scale.low, "high": scale.high, "step": scale.step},
            "split": {**split.describe(), "train_rows": counts["train_rows"], "test_rows": counts["test_rows"]},
            "counts": counts,
            "k": k,
            "models": results,
            "best": best_models(results, k),
            "checkpoint_dir": checkpoint_dir,
            "spark": {"version": spark.version, "master": spark.sparkContext.master},
        }
        with timer.stage("write"), io.staged_output(output) as staging:
            # Models share tables (the bias tables of bias and als, a blend's
            # members): each is written once, then copied as files.
            saved = io.SavedTables()
            for name, model in models.items():
                if hasattr(model, "save"):
                    model.save(staging / "models" / name, saved)
            if PRIMARY in models:
                # model/ is models/als again: a file copy, not a second write of
                # its tables from Spark (ml-25m's day bias table alone is 20M rows).
                shutil.copytree(staging / "models" / PRIMARY, staging / "model")
                # The recommend stage's movie table is this model's when it recommended.
                movies_of_primary = collected_movies if recommender_model is models[PRIMARY] else None
                save_catalog(models[PRIMARY], catalog, staging / "model", movies_of_primary)
            if sample is not None:
                io.write_csv(staging / "predictions_sample.csv", sample)
            if all_top is not None:
                io.write_table(all_top, staging / "top_n_all")
            if recs_table is not None:
                io.write_table(to_arrow(recs_table, TOP_N_SCHEMA), staging / "recommendations")
                io.write_csv(staging / "recommendations.csv", for_csv(recs_table))
                io.write_csv(staging / "custom_ratings.csv", resolved)
            metrics["stages"] = dict(timer.seconds)
            metrics["wall_seconds"] = time.perf_counter() - started
            io.write_json(staging / "metrics.json", metrics)
        metrics["stages"] = dict(timer.seconds)
        io.write_json(output / "metrics.json", {**metrics, "wall_seconds": time.perf_counter() - started})
    finally:
        restore_shuffle_partitions(spark, shuffle_before)
        if tmp_checkpoints:
            shutil.rmtree(tmp_checkpoints, ignore_errors=True)

    if recs_table is not None:
        print()
        print(format_top_n(recs_table))
    print(f"\nTest metrics ({counts['test_rows']} ratings, K={k}), written to {output}:")
    print(format_table(metrics, k))
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
