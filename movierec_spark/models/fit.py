"""Fitting the models: global mean, damped biases, biased ALS, implicit ALS.

Input: training ratings (``user_id`` int, ``movie_id`` int, ``rating``
float). Output: :class:`movierec_spark.models.recommender.RecommenderModel` objects,
which predict with cold-start fallbacks and save/load themselves.

* :func:`fit_global_mean_model`: every prediction is the training mean.
* :func:`fit_bias_model`: ``mean + b_u + b_i`` with damped (shrunk) biases,
  ``b_i = sum(r - mean - b_u) / (n_i + item_damping)`` and
  ``b_u = sum(r - mean - b_i) / (n_u + user_damping)``, alternated
  ``bias_iterations`` times starting from ``b_u = 0``. With ``day_bias``
  a day term follows: ``b_u,day = sum(r - mean - b_u - b_i) / (n_u,day +
  day_damping)`` over the user's ratings of that (UTC) day, which captures
  the mood of a rating session (Koren 2009, "Collaborative filtering with
  temporal dynamics"). It needs a ``timestamp`` column; on ml-latest-small
  (80/20, seed 42) it takes the baseline from RMSE 0.873 to 0.860, because
  97% of test ratings fall on a day the user also rated in training.
* :func:`fit_biased_als`: the bias model plus ALS factors fitted to its
  residuals ``r - mean - b_u - b_i (- b_u,day)``; predictions are clipped to the scale.
* :func:`fit_implicit_als`: ALS with ``implicitPrefs`` for top-N ranking;
  each rating is an interaction whose confidence is ``1 + alpha * c`` with
  ``c`` 1 (``confidence="binary"``) or the rating (``"rating"``).

:class:`BiasedALS` wraps :func:`fit_biased_als` as a ``pyspark.ml``
Estimator so ``TrainValidationSplit`` / ``CrossValidator`` can tune it.

Spark's ALS scales ``regParam`` by each user's / item's number of ratings
(ALS-WR), so good values are smaller than in SGD matrix factorisation.
ALS needs a checkpoint directory for long fits (``maxIter`` 20 and more
die with ``StackOverflowError`` on the RDD lineage otherwise): every fit
here refuses to start without one.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.models.recommender import (
    DAY,
    DAY_BIAS,
    ITEM_BIAS,
    KIND_EXPLICIT,
    KIND_IMPLICIT,
    USER_BIAS,
    RecommenderModel,
    day_of,
)
from movierec_spark.data.releases import RatingScale
from movierec_spark.session import current_checkpoint_dir, is_connect, master
from movierec_spark.settings import AlsSettings, BiasSettings, ImplicitSettings, parse_section

log = logging.getLogger(__name__)

_RESIDUAL = "_residual"
_BASELINE = "_baseline"
_PREFERENCE = "_preference"

CONFIDENCE_BINARY = "binary"
CONFIDENCE_RATING = "rating"
CONFIDENCES = (CONFIDENCE_BINARY, CONFIDENCE_RATING)

SOLVER_AUTO = "auto"
SOLVER_MLLIB = "mllib"
SOLVER_DRIVER = "driver"


# --- parameters ---


# Defaults and ranges: conf/movierec.toml's, held by movierec_spark.settings.
_ALS, _IMPLICIT, _BIAS = AlsSettings(), ImplicitSettings(), BiasSettings()


@dataclass(frozen=True)
class AlsParams:
    """Every ALS setting worth exposing; names, defaults and ranges are
    conf/movierec.toml's [als] (``alpha``: [implicit]'s; it only counts in
    implicit fits)."""

    rank: int = _ALS.rank
    max_iter: int = _ALS.max_iter
    reg_param: float = _ALS.reg_param
    alpha: float = _IMPLICIT.alpha
    nonnegative: bool = _ALS.nonnegative
    num_user_blocks: int = _ALS.num_user_blocks
    num_item_blocks: int = _ALS.num_item_blocks
    checkpoint_interval: int = _ALS.checkpoint_interval
    seed: int = _ALS.seed
    # Who solves an explicit fit: "mllib" (Spark's distributed ALS), "driver"
    # (driver_als: the same equations in the driver process) or "auto"
    # (driver on a local master, MLlib on a cluster; MLlib for nonnegative).
    # Implicit fits are always MLlib's.
    solver: str = _ALS.solver

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "AlsParams":
        """Take the keys this class knows from a config section, ignore the rest."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})

    def with_(self, **changes: Any) -> "AlsParams":
        return replace(self, **changes)

    def validate(self) -> None:
        """Refuse values ALS would reject or misuse, with [als]'s one-line message."""
        values = asdict(self)
        parse_section("implicit", {"alpha": values.pop("alpha")})
        parse_section("als", values)

    def solver_for(self, master: str, connect: bool = False) -> str:
        """The solver an explicit fit runs with: ``"mllib"`` or ``"driver"`` (see ``solver``).

        ``"auto"`` picks the driver on a local master (``local``, ``local[N]``,
        ``local[*]``), where the driver's machine does all the work anyway,
        unless ``nonnegative`` is set (the driver solver has no NNLS;
        :meth:`validate` refuses asking for both); MLlib otherwise. A Spark
        Connect client always gets MLlib: the driver solver builds its model
        in the JVM, which a client has none of, and would pull every rating
        over the network.
        """
        if connect:
            if self.solver != SOLVER_MLLIB:
                _say_once("Spark Connect: ALS fits with MLlib's solver (the driver solver needs a classic session)")
            return SOLVER_MLLIB
        if self.solver == SOLVER_DRIVER:
            return SOLVER_DRIVER
        if self.solver == SOLVER_AUTO and not self.nonnegative and master.startswith("local"):
            return SOLVER_DRIVER
        return SOLVER_MLLIB

    def estimator(self, rating_col: str, implicit: bool = False) -> ALS:
        return ALS(
            rank=self.rank,
            maxIter=self.max_iter,
            regParam=float(self.reg_param),
            alpha=float(self.alpha),
            nonnegative=self.nonnegative,
            implicitPrefs=implicit,
            numUserBlocks=self.num_user_blocks,
            numItemBlocks=self.num_item_blocks,
            checkpointInterval=self.checkpoint_interval,
            seed=self.seed,
            userCol=C.USER_ID,
            itemCol=C.MOVIE_ID,
            ratingCol=rating_col,
            # Unknown users/movies get NaN, which RecommenderModel.predict
            # replaces with the bias fallback instead of dropping the row.
            coldStartStrategy="nan",
        )


@dataclass(frozen=True)
class BiasParams:
    """Damping of the bias baseline, pseudo-counts pulling biases towards 0:
    conf/movierec.toml's [bias] (defaults and ranges)."""

    user_damping: float = _BIAS.user_damping
    item_damping: float = _BIAS.item_damping
    bias_iterations: int = _BIAS.bias_iterations
    day_bias: bool = _BIAS.day_bias
    day_damping: float = _BIAS.day_damping

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "BiasParams":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in known})

    def validate(self) -> None:
        parse_section("bias", asdict(self))


# --- helpers ---


_said: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.info(message)


def _require_checkpoint_dir(ratings: DataFrame) -> None:
    if current_checkpoint_dir(ratings.sparkSession) is None:
        raise RuntimeError(
            "no Spark checkpoint directory is set; call "
            "movierec_spark.session.set_checkpoint_dir first (long ALS fits overflow the stack without one)"
        )


def _empty_bias(ratings: DataFrame, id_col: str, bias_col: str) -> DataFrame:
    schema = T.StructType(
        [T.StructField(id_col, T.IntegerType(), False), T.StructField(bias_col, T.DoubleType(), False)]
    )
    return ratings.sparkSession.createDataFrame([], schema)


# --- models ---


def global_mean(ratings: DataFrame) -> float:
    """Mean training rating (an action: returning the number is the point)."""
    value = ratings.agg(F.avg(F.col(C.RATING).cast("double"))).first()[0]
    if value is None:
        raise MovieRecError("the training split has no ratings; use a smaller test fraction or more data")
    return float(value)


def fit_global_mean_model(ratings: DataFrame, scale: RatingScale, mean: float | None = None) -> RecommenderModel:
    """Predicts the training mean for every pair."""
    mean = global_mean(ratings) if mean is None else mean
    return RecommenderModel(
        global_mean=mean,
        user_bias=_empty_bias(ratings, C.USER_ID, USER_BIAS),
        item_bias=_empty_bias(ratings, C.MOVIE_ID, ITEM_BIAS),
        als=None,
        scale=scale,
        kind=KIND_EXPLICIT,
        params={"model": "global_mean"},
    )


def damped_biases(ratings: DataFrame, mean: float, params: BiasParams) -> tuple[DataFrame, DataFrame]:
    """``(user_bias, item_bias)`` frames of damped, alternately refined biases.

    ``user_bias``: user_id int, user_bias double; ``item_bias``: movie_id
    int, item_bias double. One row per user / movie of ``ratings``.
    """
    centred = ratings.select(
        C.USER_ID, C.MOVIE_ID, (F.col(C.RATING).cast("double") - F.lit(mean)).alias(_RESIDUAL)
    )
    user_bias = None
    item_bias = None
    # The bias tables are broadcast into the passes (one row per user or
    # movie): a sort-merge join would shuffle every rating again on each
    # pass (about 200 MB per pass at ml-25m, bench/NOTES.md).
    for _ in range(params.bias_iterations):
        with_user = (
            centred.join(F.broadcast(user_bias), on=C.USER_ID, how="left").fillna(0.0, subset=[USER_BIAS])
            if user_bias is not None
            else centred.withColumn(USER_BIAS, F.lit(0.0))
        )
        item_bias = with_user.groupBy(C.MOVIE_ID).agg(
            (F.sum(F.col(_RESIDUAL) - F.col(USER_BIAS)) / (F.count(F.lit(1)) + F.lit(float(params.item_damping))))
            .alias(ITEM_BIAS)
        ).cache()
        user_bias = (
            centred.join(F.broadcast(item_bias), on=C.MOVIE_ID, how="left")
            .groupBy(C.USER_ID)
            .agg(
                (F.sum(F.col(_RESIDUAL) - F.col(ITEM_BIAS)) / (F.count(F.lit(1)) + F.lit(float(params.user_damping))))
                .alias(USER_BIAS)
            )
        ).cache()
    # Cached (lazily: one row per user / movie, a few MB at ml-25m): every
    # bias table is built from the one before, and the user bias, the movie
    # bias, the day bias and every model using them would otherwise each
    # recompute the whole chain of passes over the ratings (train_als
    # checkpoints three of them: three times the chain).
    return user_bias, item_bias


def damped_day_bias(ratings: DataFrame, partial: RecommenderModel, damping: float) -> DataFrame:
    """``user_id int, day long, day_bias double``: the damped mean of what the
    ``partial`` model (mean + user and movie biases) leaves of each user's
    ratings of one day. Ratings without a timestamp are left out.

    Cached (lazily), as :func:`damped_biases` caches the user and movie
    tables: whoever uses it again -- a checkpoint's write after its
    computing job, every model on this baseline -- reads it instead of
    merging the ratings' partial sums per user-day again."""
    return (
        partial.with_baseline(ratings.where(F.col(C.TIMESTAMP).isNotNull()), _BASELINE)
        .groupBy(C.USER_ID, day_of(F.col(C.TIMESTAMP)).alias(DAY))
        .agg(
            (F.sum(F.col(C.RATING).cast("double") - F.col(_BASELINE)) / (F.count(F.lit(1)) + F.lit(float(damping))))
            .alias(DAY_BIAS)
        )
    ).cache()


def fit_bias_model(
    ratings: DataFrame, scale: RatingScale, params: BiasParams = BiasParams(), mean: float | None = None
) -> RecommenderModel:
    """The damped user + item (+ user-day) bias baseline."""
    params.validate()
    mean = global_mean(ratings) if mean is None else mean
    user_bias, item_bias = damped_biases(ratings, mean, params)
    model = RecommenderModel(
        global_mean=mean,
        user_bias=user_bias,
        item_bias=item_bias,
        als=None,
        scale=scale,
        kind=KIND_EXPLICIT,
        params={"model": "bias", **asdict(params)},
    )
    if params.day_bias:
        if C.TIMESTAMP in ratings.columns:
            model.day_bias = damped_day_bias(ratings, model, params.day_damping)
        else:
            log.warning("day_bias is on but the ratings have no timestamp column: fitting without it")
            model.params["day_bias"] = False
    return model


def residuals(ratings: DataFrame, bias_model: RecommenderModel) -> DataFrame:
    """``user_id, movie_id, _residual`` with ``_residual = rating - baseline`` (unclipped)."""
    keep = [c for c in (C.USER_ID, C.MOVIE_ID, C.RATING, C.TIMESTAMP) if c in ratings.columns]
    return bias_model.with_baseline(ratings.select(*keep), _BASELINE).select(
        C.USER_ID, C.MOVIE_ID, (F.col(C.RATING).cast("double") - F.col(_BASELINE)).alias(_RESIDUAL)
    )


def fit_biased_als(
    ratings: DataFrame,
    scale: RatingScale,
    als_params: AlsParams = AlsParams(),
    bias_params: BiasParams = BiasParams(),
    bias_model: RecommenderModel | None = None,
) -> RecommenderModel:
    """Damped biases plus explicit ALS on their residuals.

    Pass an already fitted ``bias_model`` to reuse it (the job fits the
    baseline once and reports it too).
    """
    als_params.validate()
    _require_checkpoint_dir(ratings)
    if bias_model is None:
        bias_model = fit_bias_model(ratings, scale, bias_params)
    spark = ratings.sparkSession
    solver = als_params.solver_for(master(spark), is_connect(spark))
    if solver == SOLVER_DRIVER:
        from movierec_spark.models import driver_als

        als_model = driver_als.fit_explicit(
            residuals(ratings, bias_model), _RESIDUAL, rank=als_params.rank, max_iter=als_params.max_iter,
            reg_param=als_params.reg_param, seed=als_params.seed,
        )  # fmt: skip
    else:
        als_model = als_params.estimator(_RESIDUAL).fit(residuals(ratings, bias_model))
    return RecommenderModel(
        global_mean=bias_model.global_mean,
        user_bias=bias_model.user_bias,
        item_bias=bias_model.item_bias,
        als=als_model,
        scale=scale,
        kind=KIND_EXPLICIT,
        # solver: the one that ran ("auto" resolved).
        params={"model": "als", **asdict(als_params), "solver": solver, **_bias_part(bias_model)},
        day_bias=bias_model.day_bias,
    )


def _bias_part(bias_model: RecommenderModel) -> dict[str, Any]:
    return {k: v for k, v in bias_model.params.items() if k != "model"}


def preferences(ratings: DataFrame, confidence: str) -> DataFrame:
    """Implicit-feedback input: one row per rating with a ``_preference`` strength."""
    if confidence == CONFIDENCE_BINARY:
        strength = F.lit(1.0)
    elif confidence == CONFIDENCE_RATING:
        strength = F.col(C.RATING).cast("double")
    else:
        raise MovieRecError(f"implicit confidence must be one of {', '.join(CONFIDENCES)}, got {confidence!r}")
    return ratings.select(C.USER_ID, C.MOVIE_ID, strength.alias(_PREFERENCE))


def fit_implicit_als(
    ratings: DataFrame,
    scale: RatingScale,
    als_params: AlsParams = AlsParams(),
    confidence: str = CONFIDENCE_BINARY,
) -> RecommenderModel:
    """ALS with ``implicitPrefs`` on the ratings seen as interactions (top-N mode).

    Its scores rank movies for a user; they are not ratings, so regression
    metrics of this model mean little and predictions are not clipped.
    """
    als_params.validate()
    _require_checkpoint_dir(ratings)
    als_model = als_params.estimator(_PREFERENCE, implicit=True).fit(preferences(ratings, confidence))
    return RecommenderModel(
        global_mean=0.0,
        user_bias=_empty_bias(ratings, C.USER_ID, USER_BIAS),
        item_bias=_empty_bias(ratings, C.MOVIE_ID, ITEM_BIAS),
        als=als_model,
        scale=scale,
        kind=KIND_IMPLICIT,
        params={"model": "implicit", **asdict(als_params), "solver": SOLVER_MLLIB, "confidence": confidence},
    )


def fit_popularity_model(ratings: DataFrame, scale: RatingScale) -> RecommenderModel:
    """Top-N baseline: a movie's score is the share of users who rated it.

    A ranking model (kind ``implicit``): regression metrics do not apply.
    """
    n_users = ratings.select(C.USER_ID).distinct().count()
    item_score = ratings.groupBy(C.MOVIE_ID).agg(
        (F.count(F.lit(1)) / F.lit(float(max(n_users, 1)))).alias(ITEM_BIAS)
    )
    return RecommenderModel(
        global_mean=0.0,
        user_bias=_empty_bias(ratings, C.USER_ID, USER_BIAS),
        item_bias=item_score,
        als=None,
        scale=scale,
        kind=KIND_IMPLICIT,
        params={"model": "popularity"},
    )


# --- pyspark.ml Estimator for tuning ---


class ALSEstimatorParams(Params):
    """The ALS Params every tuning Estimator here shares, and their :class:`AlsParams`.

    :class:`BiasedALS` adds ``nonnegative``, ``tune.ImplicitALS`` adds
    ``alpha``: an Estimator's Params named like an optional AlsParams field
    (:attr:`OPTIONAL_ALS_PARAMS`) are passed on too, the rest keep AlsParams'
    defaults. ``numBlocks`` sets the user and the item blocks alike.
    """

    rank = Param(Params._dummy(), "rank", "rank of the factorisation", TypeConverters.toInt)
    maxIter = Param(Params._dummy(), "maxIter", "ALS iterations", TypeConverters.toInt)
    regParam = Param(Params._dummy(), "regParam", "ALS regularisation", TypeConverters.toFloat)
    numBlocks = Param(Params._dummy(), "numBlocks", "user and item blocks", TypeConverters.toInt)
    checkpointInterval = Param(Params._dummy(), "checkpointInterval", "checkpoint every N", TypeConverters.toInt)
    seed = Param(Params._dummy(), "seed", "random seed", TypeConverters.toInt)

    OPTIONAL_ALS_PARAMS = ("nonnegative", "alpha", "solver")

    def als_params(self) -> AlsParams:
        blocks = self.getOrDefault(self.numBlocks)
        optional = {name: self.getOrDefault(name) for name in self.OPTIONAL_ALS_PARAMS if self.hasParam(name)}
        return AlsParams(
            rank=self.getOrDefault(self.rank),
            max_iter=self.getOrDefault(self.maxIter),
            reg_param=self.getOrDefault(self.regParam),
            num_user_blocks=blocks,
            num_item_blocks=blocks,
            checkpoint_interval=self.getOrDefault(self.checkpointInterval),
            seed=self.getOrDefault(self.seed),
            **optional,
        )


class _BiasedALSParams(ALSEstimatorParams):
    nonnegative = Param(Params._dummy(), "nonnegative", "non-negative factors", TypeConverters.toBoolean)
    solver = Param(Params._dummy(), "solver", "auto, mllib or driver (AlsParams.solver)", TypeConverters.toString)
    userDamping = Param(Params._dummy(), "userDamping", "user bias damping", TypeConverters.toFloat)
    itemDamping = Param(Params._dummy(), "itemDamping", "item bias damping", TypeConverters.toFloat)
    biasIterations = Param(Params._dummy(), "biasIterations", "bias refinement passes", TypeConverters.toInt)
    dayBias = Param(Params._dummy(), "dayBias", "fit a user-day bias", TypeConverters.toBoolean)
    dayDamping = Param(Params._dummy(), "dayDamping", "user-day bias damping", TypeConverters.toFloat)

    # Maps Estimator param names to AlsParams / BiasParams / config names.
    CONFIG_NAMES = {
        "rank": ("als", "rank"),
        "maxIter": ("als", "max_iter"),
        "regParam": ("als", "reg_param"),
        "nonnegative": ("als", "nonnegative"),
        "solver": ("als", "solver"),
        "checkpointInterval": ("als", "checkpoint_interval"),
        "seed": ("als", "seed"),
        "userDamping": ("bias", "user_damping"),
        "itemDamping": ("bias", "item_damping"),
        "biasIterations": ("bias", "bias_iterations"),
        "dayBias": ("bias", "day_bias"),
        "dayDamping": ("bias", "day_damping"),
    }

    def bias_params(self) -> BiasParams:
        return BiasParams(
            user_damping=self.getOrDefault(self.userDamping),
            item_damping=self.getOrDefault(self.itemDamping),
            bias_iterations=self.getOrDefault(self.biasIterations),
            day_bias=self.getOrDefault(self.dayBias),
            day_damping=self.getOrDefault(self.dayDamping),
        )


class BiasedALS(Estimator, _BiasedALSParams):
    """``pyspark.ml`` Estimator: damped biases + explicit ALS on residuals.

    Input columns ``user_id``, ``movie_id``, ``rating``; the fitted
    :class:`BiasedALSModel` adds ``prediction`` (clipped to ``scale``) and
    never drops cold-start rows, so ``RegressionEvaluator`` sees every row.

    >>> from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
    >>> est = BiasedALS(scale=HALF_STARS, rank=10)              # doctest: +SKIP
    >>> grid = ParamGridBuilder().addGrid(est.regParam, [0.05, 0.1]).build()  # doctest: +SKIP
    """

    @keyword_only
    def __init__(
        self,
        *,
        scale: RatingScale,
        rank: int = _ALS.rank,
        maxIter: int = _ALS.max_iter,
        regParam: float = _ALS.reg_param,
        nonnegative: bool = _ALS.nonnegative,
        solver: str = _ALS.solver,
        numBlocks: int = _ALS.num_user_blocks,
        checkpointInterval: int = _ALS.checkpoint_interval,
        seed: int = _ALS.seed,
        userDamping: float = _BIAS.user_damping,
        itemDamping: float = _BIAS.item_damping,
        biasIterations: int = _BIAS.bias_iterations,
        dayBias: bool = _BIAS.day_bias,
        dayDamping: float = _BIAS.day_damping,
    ):
        super().__init__()
        self.scale = scale
        self._setDefault(
            rank=_ALS.rank, maxIter=_ALS.max_iter, regParam=_ALS.reg_param, nonnegative=_ALS.nonnegative,
            solver=_ALS.solver, numBlocks=_ALS.num_user_blocks, checkpointInterval=_ALS.checkpoint_interval,
            seed=_ALS.seed, userDamping=_BIAS.user_damping, itemDamping=_BIAS.item_damping,
            biasIterations=_BIAS.bias_iterations, dayBias=_BIAS.day_bias, dayDamping=_BIAS.day_damping,
        )
        kwargs = dict(self._input_kwargs)
        kwargs.pop("scale", None)
        self._set(**kwargs)

    def _fit(self, dataset: DataFrame) -> "BiasedALSModel":
        model = fit_biased_als(dataset, self.scale, self.als_params(), self.bias_params())
        return self._copyValues(BiasedALSModel(model))


class BiasedALSModel(Model, _BiasedALSParams):
    """A fitted :class:`BiasedALS`; ``recommender`` is the RecommenderModel."""

    def __init__(self, recommender: RecommenderModel):
        super().__init__()
        self.recommender = recommender

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return self.recommender.predict(dataset)
