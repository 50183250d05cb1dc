"""Hyper-parameter search for the two ALS models with ``pyspark.ml.tuning``.

Input: training ratings (``user_id`` int, ``movie_id`` int, ``rating``
float) -- the training part of a split only; the test part is never seen.

* Explicit mode: :class:`movierec_spark.models.fit.BiasedALS` (damped biases + ALS
  on their residuals) scored with ``RegressionEvaluator(metricName="rmse")``
  (lower is better).
* Implicit (top-N) mode: :class:`ImplicitALS`, ALS with ``implicitPrefs``,
  whose model turns validation ratings into one row per validation user::

      user_id int, prediction array<double>, label array<double>

  ``prediction`` is the user's top-``k`` movie ids (movies of the
  estimator's training data the user has not rated there, ranked by score
  then id), ``label`` the user's validation movie ids; scored with
  ``RankingEvaluator(metricName="ndcgAtK", k=k)`` (higher is better).

A grid is a mapping ``name -> list of values`` over :data:`GRID_PARAMS`
(config names: ``rank``, ``max_iter``, ``reg_param``, ...), read from
``[tune] <mode>_<name>`` lists and ``--grid name=v1,v2`` flags; names not
listed keep the value of their own config section. :func:`leaderboard`
turns a fitted ``TrainValidationSplitModel`` / ``CrossValidatorModel`` into
rows best first, and :func:`best_config` the best row into the
``{section: {key: value}}`` that ``train_als.py --config`` reads.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.models.fit import ALSEstimatorParams, BiasedALS, fit_implicit_als
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.data.releases import RatingScale
from movierec_spark.settings import AlsSettings, EvaluateSettings, ImplicitSettings, parse_section

log = logging.getLogger(__name__)

EXPLICIT = "explicit"
IMPLICIT = "implicit"
MODES = (EXPLICIT, IMPLICIT)
TVS = "tvs"
CV = "cv"
METHODS = (TVS, CV)

PLACE = "place"  # leaderboard position, 1 = best ("rank" is an ALS parameter)
FIT_SECONDS = "fit_seconds"
METRIC_STD = "metric_std"

# How a grid value is read from text; its range is its setting's (movierec_spark.settings).
_COUNT = "count"  # a whole number
_AMOUNT = "amount"  # a number
_CHOICE = "choice"


@dataclass(frozen=True)
class GridParam:
    """One tunable parameter: its config home (which gives its range) and its Estimator Param name."""

    name: str
    section: str
    key: str
    estimator_param: str
    kind: str

    def parse(self, raw: Any, where: str) -> Any:
        """``raw`` (text from a flag, or a TOML value) as this parameter's type, in its setting's range."""
        value = raw.strip() if isinstance(raw, str) else raw
        if isinstance(value, str) and self.kind != _CHOICE:
            try:
                value = int(value) if self.kind == _COUNT else float(value)
            except ValueError:
                kind = "a whole number" if self.kind == _COUNT else "a number"
                raise MovieRecError(f"{where}: {self.name} value {raw!r} is not {kind}") from None
        try:
            parse_section(self.section, {self.key: value})
        except MovieRecError as exc:
            raise MovieRecError(f"{where}: {exc}") from None
        return float(value) if self.kind == _AMOUNT else value


GRID_PARAMS: dict[str, dict[str, GridParam]] = {
    EXPLICIT: {
        p.name: p
        for p in (
            GridParam("rank", "als", "rank", "rank", _COUNT),
            GridParam("max_iter", "als", "max_iter", "maxIter", _COUNT),
            GridParam("reg_param", "als", "reg_param", "regParam", _AMOUNT),
            GridParam("user_damping", "bias", "user_damping", "userDamping", _AMOUNT),
            GridParam("item_damping", "bias", "item_damping", "itemDamping", _AMOUNT),
            GridParam("day_damping", "bias", "day_damping", "dayDamping", _AMOUNT),
        )
    },
    IMPLICIT: {
        p.name: p
        for p in (
            GridParam("rank", "implicit", "rank", "rank", _COUNT),
            GridParam("max_iter", "implicit", "max_iter", "maxIter", _COUNT),
            GridParam("reg_param", "implicit", "reg_param", "regParam", _AMOUNT),
            GridParam("alpha", "implicit", "alpha", "alpha", _AMOUNT),
            GridParam("confidence", "implicit", "confidence", "confidence", _CHOICE),
        )
    },
}


# --- the grid ---


def parse_grid_flag(text: str) -> tuple[str, list[str]]:
    """``"name=v1,v2"`` as ``(name, ["v1", "v2"])``; names and values are checked later."""
    name, sep, values = text.partition("=")
    parts = [v.strip() for v in values.split(",")]
    if not sep or not name.strip() or not all(parts):
        raise ValueError(f"{text!r} is not NAME=VALUE[,VALUE...]")
    return name.strip().replace("-", "_"), parts


def grid_from_config(cfg: Mapping[str, Mapping[str, Any]], mode: str) -> dict[str, list[Any]]:
    """The search grid of ``mode``: ``name -> distinct values`` in the order given.

    Sources, later ones winning: each parameter's own config value (one
    point), ``[tune] <mode>_<name>`` lists, ``[tune] grid`` entries
    (``"name=v1,v2"``, what ``--grid`` flags add). Unknown names, empty
    lists and bad values raise MovieRecError naming the culprit.
    """
    if mode not in MODES:
        raise MovieRecError(f"[tune] mode must be one of {', '.join(MODES)}, got {mode!r}")
    params = GRID_PARAMS[mode]
    tune = dict(cfg.get("tune", {}))
    raw: dict[str, tuple[list[Any], str]] = {}
    for p in params.values():
        section = dict(cfg.get(p.section, {}))
        if mode == IMPLICIT and p.key not in section:
            section = {**cfg.get("als", {}), **section}  # [implicit] falls back on [als]
        if p.key in section:
            raw[p.name] = ([section[p.key]], f"[{p.section}] {p.key}")
    for other in MODES:
        for key in tune:
            if key.startswith(f"{other}_") and key[len(other) + 1 :] not in GRID_PARAMS[other]:
                raise MovieRecError(
                    f"[tune] {key}: unknown {other} grid parameter; choose from "
                    + ", ".join(f"{other}_{n}" for n in GRID_PARAMS[other])
                )
    for name in params:
        key = f"{mode}_{name}"
        if key in tune:
            values = tune[key] if isinstance(tune[key], list) else [tune[key]]
            raw[name] = (values, f"[tune] {key}")
    for entry in tune.get("grid") or []:
        name, values = parse_grid_flag(entry) if isinstance(entry, str) else entry
        if name not in params:
            raise MovieRecError(f"--grid {name}: unknown {mode} parameter; choose from {', '.join(params)}")
        raw[name] = (values, f"--grid {name}")
    grid: dict[str, list[Any]] = {}
    for name, (values, where) in raw.items():
        if not values:
            raise MovieRecError(f"{where}: the list of values is empty")
        parsed = [params[name].parse(v, where) for v in values]
        grid[name] = list(dict.fromkeys(parsed))
    return grid


def grid_size(grid: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(v) for v in grid.values())


def param_maps(estimator: Params, grid: Mapping[str, Sequence[Any]], mode: str) -> list[dict]:
    """``ParamGridBuilder`` maps of ``estimator`` for every point of ``grid``."""
    from pyspark.ml.tuning import ParamGridBuilder

    builder = ParamGridBuilder()
    for name, values in grid.items():
        builder.addGrid(estimator.getParam(GRID_PARAMS[mode][name].estimator_param), list(values))
    return builder.build()


def point_of(param_map: Mapping[Any, Any], mode: str) -> dict[str, Any]:
    """A param map as ``{config name: value}`` (only the grid's parameters)."""
    by_estimator = {p.estimator_param: p.name for p in GRID_PARAMS[mode].values()}
    return {by_estimator[param.name]: value for param, value in param_map.items() if param.name in by_estimator}


# --- fit timing ---


class _TimesFits:
    """Mixin for Estimators: append ``(grid point, seconds)`` to ``fit_log`` after each fit.

    ``Params.copy`` is a shallow copy, so the copies a tuner fits share the
    list set on the original (``estimator.fit_log = []``).
    """

    fit_log: list | None = None
    tune_mode: str = EXPLICIT

    def _fit(self, dataset: DataFrame):
        start = time.perf_counter()
        model = self._fit_untimed(dataset)
        if self.fit_log is not None:
            point = point_of(self.extractParamMap(), self.tune_mode)
            self.fit_log.append((point, time.perf_counter() - start))
        return model


class TimedBiasedALS(_TimesFits, BiasedALS):
    """:class:`movierec_spark.models.fit.BiasedALS` that records its fit times."""

    tune_mode = EXPLICIT

    def _fit_untimed(self, dataset: DataFrame):
        return BiasedALS._fit(self, dataset)


def mean_fit_seconds(fit_log: Sequence[tuple[dict, float]], point: Mapping[str, Any]) -> float | None:
    """Mean wall seconds of the fits recorded for ``point`` (None if none were)."""
    seconds = [s for p, s in fit_log if all(p.get(k) == v for k, v in point.items())]
    return sum(seconds) / len(seconds) if seconds else None


# --- top-N Estimator for RankingEvaluator ---


# Defaults: conf/movierec.toml's [implicit] ([als]'s for the blocks, checkpoints and seed).
_ALS, _IMPLICIT, _EVALUATE = AlsSettings(), ImplicitSettings(), EvaluateSettings()


class _ImplicitALSParams(ALSEstimatorParams):
    alpha = Param(Params._dummy(), "alpha", "confidence growth per unit of preference", TypeConverters.toFloat)
    confidence = Param(Params._dummy(), "confidence", "binary or rating", TypeConverters.toString)
    k = Param(Params._dummy(), "k", "movies recommended per user", TypeConverters.toInt)
    predictionCol = Param(Params._dummy(), "predictionCol", "top-k movie ids column", TypeConverters.toString)
    labelCol = Param(Params._dummy(), "labelCol", "validation movie ids column", TypeConverters.toString)


class ImplicitALS(_TimesFits, Estimator, _ImplicitALSParams):
    """``pyspark.ml`` Estimator: ALS with ``implicitPrefs`` scored as top-``k`` lists.

    Input columns ``user_id``, ``movie_id``, ``rating``. The fitted
    :class:`ImplicitALSModel` keeps the training ratings so its top-``k``
    lists leave out movies a user rated there; see the module docstring for
    its output. ALS needs a checkpoint directory (``fit`` refuses without).

    >>> from pyspark.ml.evaluation import RankingEvaluator   # doctest: +SKIP
    >>> est = ImplicitALS(scale=WHOLE_STARS, k=10, alpha=5.0)  # doctest: +SKIP
    >>> RankingEvaluator(metricName="ndcgAtK", k=10).evaluate(est.fit(train).transform(valid))  # doctest: +SKIP
    """

    tune_mode = IMPLICIT

    @keyword_only
    def __init__(
        self,
        *,
        scale: RatingScale,
        rank: int = _IMPLICIT.rank,
        maxIter: int = _IMPLICIT.max_iter,
        regParam: float = _IMPLICIT.reg_param,
        alpha: float = _IMPLICIT.alpha,
        confidence: str = _IMPLICIT.confidence,
        numBlocks: int = _ALS.num_user_blocks,
        checkpointInterval: int = _ALS.checkpoint_interval,
        seed: int = _ALS.seed,
        k: int = _EVALUATE.k,
        predictionCol: str = "prediction",
        labelCol: str = "label",
    ):
        super().__init__()
        self.scale = scale
        self._setDefault(
            rank=_IMPLICIT.rank, maxIter=_IMPLICIT.max_iter, regParam=_IMPLICIT.reg_param, alpha=_IMPLICIT.alpha,
            confidence=_IMPLICIT.confidence, numBlocks=_ALS.num_user_blocks,
            checkpointInterval=_ALS.checkpoint_interval, seed=_ALS.seed, k=_EVALUATE.k,
            predictionCol="prediction", labelCol="label",
        )
        kwargs = dict(self._input_kwargs)
        kwargs.pop("scale", None)
        self._set(**kwargs)

    def _fit_untimed(self, dataset: DataFrame) -> "ImplicitALSModel":
        confidence = self.getOrDefault(self.confidence)
        parse_section("implicit", {"confidence": confidence})
        model = fit_implicit_als(dataset, self.scale, self.als_params(), confidence)
        seen = dataset.select(C.USER_ID, C.MOVIE_ID)
        return self._copyValues(ImplicitALSModel(model, seen))


class ImplicitALSModel(Model, _ImplicitALSParams):
    """A fitted :class:`ImplicitALS`: ``recommender`` and the ``seen`` training pairs."""

    def __init__(self, recommender: RecommenderModel, seen: DataFrame):
        super().__init__()
        self.recommender = recommender
        self.seen = seen

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from movierec_spark.evaluation.metrics import ranking_frame
        from movierec_spark.serving.recommend import top_n_unseen

        relevant = dataset.select(C.USER_ID, C.MOVIE_ID)
        candidates = self.seen.select(C.MOVIE_ID).distinct()
        users = relevant.select(C.USER_ID).distinct()
        top_k = top_n_unseen(self.recommender, users, candidates, self.seen, self.getOrDefault(self.k))
        frame = ranking_frame(top_k, relevant)
        # ranking_frame's columns, in order: user_id, predicted ids, relevant ids.
        _, predicted, truth = frame.columns
        return frame.select(
            F.col(C.USER_ID),
            F.col(predicted).alias(self.getOrDefault(self.predictionCol)),
            F.col(truth).alias(self.getOrDefault(self.labelCol)),
        )


# --- results ---


def leaderboard(
    points: Sequence[Mapping[str, Any]],
    metrics: Sequence[float],
    metric_name: str,
    larger_is_better: bool,
    metric_std: Sequence[float] | None = None,
    fit_seconds: Sequence[float | None] | None = None,
) -> list[dict[str, Any]]:
    """One row per grid point, best first, with its ``place`` (1 = best).

    Ties keep grid order. Rows: ``place``, the point's parameters,
    ``metric_name``, ``metric_std`` (cross-validation), ``fit_seconds``,
    ``grid_index`` (position in the tuner's param maps).
    """
    if len(points) != len(metrics):
        raise ValueError(f"{len(points)} grid points but {len(metrics)} metrics")
    rows = []
    for i, (point, metric) in enumerate(zip(points, metrics)):
        row: dict[str, Any] = {**point, metric_name: float(metric)}
        if metric_std is not None:
            row[METRIC_STD] = float(metric_std[i])
        if fit_seconds is not None:
            row[FIT_SECONDS] = fit_seconds[i]
        row["grid_index"] = i
        rows.append(row)

    def key(row):
        value = row[metric_name]
        bad = math.isnan(value)  # a NaN metric goes last, whatever the direction
        return (bad, -value if larger_is_better and not bad else (value if not bad else 0.0), row["grid_index"])

    ordered = sorted(rows, key=key)
    return [{PLACE: place, **row} for place, row in enumerate(ordered, start=1)]


def best_config(mode: str, best: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The best row's parameters under the config keys ``train_als.py`` reads."""
    config: dict[str, dict[str, Any]] = {}
    for name, p in GRID_PARAMS[mode].items():
        if name in best:
            config.setdefault(p.section, {})[p.key] = best[name]
    return config
