"""The model registry: every model's name, its config section and its fit function.

A job names models (``--models als,ease``); :class:`ModelFitter` fits them
through :data:`REGISTRY`, so no job keeps a list of model names with special
cases. What a fitted model can do is declared by the model itself (see
:class:`movierec_spark.models.base.Recommender`): ``predicts_ratings`` (RMSE,
MAE and R2 apply), ``ranks`` (the top-N metrics apply), ``describe()``,
``save`` and ``load``.

Models built from other models (the rating blend, the top-N blend) fit
their members through the same :class:`ModelFitter`, which fits each model
once per ratings frame: a member fitted on the training ratings is the
same object the job reports under its own name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from pyspark.sql import DataFrame

from movierec_spark import MovieRecError
from movierec_spark.config import Config
from movierec_spark.data.releases import RatingScale

log = logging.getLogger(__name__)

GLOBAL_MEAN = "global_mean"
BIAS = "bias"
ALS = "als"
ITEM_KNN = "item_knn"
USER_KNN = "user_knn"
BLEND = "blend"
IMPLICIT = "implicit"
EASE = "ease"
RP3BETA = "rp3beta"
TOPN_BLEND = "topn_blend"
POPULARITY = "popularity"

# Models the rating blend can combine: the rating models, and the two ranking
# models whose scores carry what the ratings' values do not (which movies a
# user chose to rate).
BLEND_MEMBERS = (BIAS, ALS, ITEM_KNN, USER_KNN, IMPLICIT, EASE)
# Models the top-N blend can combine (each scores a ranking).
TOPN_MEMBERS = (IMPLICIT, EASE, RP3BETA, POPULARITY)


def section(cfg: Config, name: str) -> dict[str, Any]:
    """A copy of config section ``name`` (empty when absent)."""
    return dict(cfg.get(name, {}))


# --- each model's settings, from its config section ---


def als_params(cfg: Config):
    from movierec_spark.models.fit import AlsParams

    return AlsParams.from_config(section(cfg, "als"))


def implicit_params(cfg: Config):
    """``[implicit]`` over ``[als]``: implicit ALS shares the blocks, seed and checkpointing."""
    from movierec_spark.models.fit import AlsParams

    return AlsParams.from_config({**section(cfg, "als"), **section(cfg, "implicit")})


def bias_params(cfg: Config):
    from movierec_spark.models.fit import BiasParams

    return BiasParams.from_config(section(cfg, "bias"))


def ease_params(cfg: Config):
    from movierec_spark.models.ease import EaseParams

    return EaseParams.from_config(section(cfg, "ease"))


def rp3beta_params(cfg: Config):
    from movierec_spark.models.rp3beta import Rp3BetaParams

    return Rp3BetaParams.from_config(section(cfg, "rp3beta"))


def knn_params(cfg: Config, name: str):
    """``KNNParams`` of ``item_knn`` or ``user_knn`` from their config section."""
    from movierec_spark.models.knn import ITEM_BASED, USER_BASED, KNNParams

    kind = ITEM_BASED if name == ITEM_KNN else USER_BASED
    return KNNParams.from_config({**section(cfg, name), "kind": kind})


def ratings_per_block(cfg: Config) -> int:
    """``[als] ratings_per_block`` (0: the block counts as given)."""
    return int(section(cfg, "als").get("ratings_per_block", 0))


def blend_settings(cfg: Config) -> dict[str, Any]:
    """``[blend]``: members (each once), validation_fraction, folds, ridge, refit, support."""
    values = section(cfg, "blend")
    return {**values, "members": list(dict.fromkeys(values["members"]))}


def topn_blend_weights(cfg: Config) -> dict[str, float]:
    """``[topn_blend]``: member name -> weight."""
    values = section(cfg, "topn_blend")
    return {member: float(weight) for member, weight in zip(values["members"], values["weights"])}


def topn_blend_normalise(cfg: Config) -> str:
    """``[topn_blend] normalise``."""
    return section(cfg, "topn_blend")["normalise"]


def implicit_confidence(cfg: Config) -> str:
    """``[implicit] confidence``."""
    return section(cfg, "implicit")["confidence"]


# --- fitting ---


class ModelFitter:
    """Fits registered models on ratings frames, each model once per frame.

    ``rows`` (the training ratings) and ``parallelism`` (the session's
    default) size the ALS blocks when ``[als] ratings_per_block`` asks for
    it. ``extra`` collects what a fit reports besides the model (the rating
    blend's validation report), keyed by model name.
    """

    def __init__(self, cfg: Config, scale: RatingScale, rows: int | None = None, parallelism: int | None = None):
        self.cfg = cfg
        self.scale = scale
        self.rows = rows
        self.parallelism = parallelism
        self.extra: dict[str, dict[str, Any]] = {}
        # id(frame) -> (frame, {name: model}); the frame is kept so its id stays unique.
        self._fitted: dict[int, tuple[DataFrame, dict[str, Any]]] = {}

    def sized(self, params):
        """ALS ``params`` with blocks sized to the training ratings (see :func:`sized_to`)."""
        return sized_to(params, ratings_per_block(self.cfg), self.rows, self.parallelism)

    def __call__(self, name: str, data: DataFrame):
        """The model ``name`` fitted on ``data`` (fitted now, or the one fitted before)."""
        spec = REGISTRY.get(name)
        if spec is None:
            raise MovieRecError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
        fitted = self._fitted.setdefault(id(data), (data, {}))[1]
        if name not in fitted:
            fitted[name] = spec.fit(self, data)
        return fitted[name]


def sized_to(params, per_block: int, rows: int | None, parallelism: int | None):
    """``params`` with ALS blocks sized to ``rows`` training ratings.

    One block per ``per_block`` ratings, at least one per core, at most the
    configured counts (:func:`movierec_spark.sizing.pieces`): an ALS
    iteration runs a task per block and stage, so on a small release every
    block beyond one per core is overhead. ALS seeds each block's initial
    factors with the seed and the block id, so another count is the same
    model from another random start. Unchanged when ``per_block`` is 0 or
    the row count is unknown.
    """
    from movierec_spark.sizing import pieces

    if not per_block or rows is None or parallelism is None:
        return params
    return params.with_(
        num_user_blocks=pieces(rows, per_block, parallelism, params.num_user_blocks),
        num_item_blocks=pieces(rows, per_block, parallelism, params.num_item_blocks),
    )


def _fit_global_mean(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.fit import fit_global_mean_model

    return fit_global_mean_model(data, fitter.scale)


def _fit_bias(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.fit import fit_bias_model

    model = fit_bias_model(data, fitter.scale, bias_params(fitter.cfg))
    # Checkpointed (computed now, lineage cut): every model built on this
    # baseline joins these tables, and the blend chains several such
    # models, so their query plans would otherwise repeat the bias fit.
    model.user_bias = model.user_bias.checkpoint()
    model.item_bias = model.item_bias.checkpoint()
    if model.day_bias is not None:
        model.day_bias = model.day_bias.checkpoint()
    return model


def _fit_als(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.fit import fit_biased_als

    return fit_biased_als(
        data, fitter.scale, fitter.sized(als_params(fitter.cfg)), bias_params(fitter.cfg), fitter(BIAS, data)
    )


def _fit_knn(name: str) -> Callable[[ModelFitter, DataFrame], Any]:
    def fit(fitter: ModelFitter, data: DataFrame):
        from movierec_spark.models.knn import fit_knn

        model = fit_knn(data, fitter(BIAS, data), knn_params(fitter.cfg, name))
        model.similarities.count()  # computed here, so the fit stage's time is the fit's
        return model

    return fit


def _fit_implicit(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.fit import fit_implicit_als

    return fit_implicit_als(
        data, fitter.scale, fitter.sized(implicit_params(fitter.cfg)), implicit_confidence(fitter.cfg)
    )


def _fit_ease(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.ease import fit_ease

    return fit_ease(data, ease_params(fitter.cfg))


def _fit_rp3beta(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.rp3beta import fit_rp3beta

    return fit_rp3beta(data, rp3beta_params(fitter.cfg))


def _fit_popularity(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.fit import fit_popularity_model

    return fit_popularity_model(data, fitter.scale)


def _fit_blend(fitter: ModelFitter, data: DataFrame):
    """The rating blend, or its best member alone when the blend did not beat it on validation."""
    from movierec_spark.models.blend import fit_blend

    settings = blend_settings(fitter.cfg)
    members = {name: (lambda frame, name=name: fitter(name, frame)) for name in settings.pop("members")}
    seed = int(section(fitter.cfg, "split").get("seed", 42))
    result = fit_blend(data, members, fitter.scale, seed=seed, **settings)
    fitter.extra[BLEND] = {"blend": result.report.as_dict()}
    if result.blend is None:
        log.warning("the blend did not beat %s alone on validation: blend = %s",
                    result.report.best_single, result.report.best_single)
    return result.best


def _fit_topn_blend(fitter: ModelFitter, data: DataFrame):
    from movierec_spark.models.topn_blend import TopNBlend

    weights = topn_blend_weights(fitter.cfg)
    members = {name: fitter(name, data) for name in weights}
    return TopNBlend(members, weights, topn_blend_normalise(fitter.cfg))


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its name, the config section of its settings, its fit function."""

    name: str
    section: str | None
    fit: Callable[[ModelFitter, DataFrame], Any]
    summary: str


# In the order models are fitted and reported: every model after the ones it is built on.
REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(GLOBAL_MEAN, None, _fit_global_mean, "the training mean for every pair"),
        ModelSpec(BIAS, "bias", _fit_bias, "damped user, movie (and user-day) biases"),
        ModelSpec(ALS, "als", _fit_als, "the biases plus Spark MLlib ALS on their residuals"),
        ModelSpec(ITEM_KNN, ITEM_KNN, _fit_knn(ITEM_KNN), "item-based kNN on the biases' residuals"),
        ModelSpec(USER_KNN, USER_KNN, _fit_knn(USER_KNN), "user-based kNN on the biases' residuals"),
        ModelSpec(IMPLICIT, "implicit", _fit_implicit, "ALS with implicit preferences (a ranking)"),
        ModelSpec(EASE, "ease", _fit_ease, "EASE item-to-item weights (a ranking)"),
        ModelSpec(RP3BETA, "rp3beta", _fit_rp3beta, "RP3beta random-walk item weights (a ranking)"),
        ModelSpec(POPULARITY, None, _fit_popularity, "the share of users who rated each movie (a ranking)"),
        ModelSpec(BLEND, "blend", _fit_blend, "a linear blend of rating models, weighted on a validation slice"),
        ModelSpec(TOPN_BLEND, "topn_blend", _fit_topn_blend, "a weighted sum of ranking models' scores"),
    )
}
MODEL_NAMES = tuple(REGISTRY)


def fit_models(train: DataFrame, names: list[str], fitter: ModelFitter, timer) -> dict[str, Any]:
    """``name -> model`` for every name in ``names``, fitted on ``train`` in registry order, one timed stage each.

    A model another one is built on (the blends' members, the biases under
    ALS and kNN) is fitted in its own stage first when it is also wanted.
    """
    models = {}
    for name in MODEL_NAMES:
        if name in names:
            with timer.stage(f"fit {name}"):
                models[name] = fitter(name, train)
    return {name: models[name] for name in names}
