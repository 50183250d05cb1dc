"""A linear blend of rating models, fitted on a validation slice of the training data.

Base models are anything with ``predict(pairs) -> pairs + prediction``
(:class:`~movierec_spark.models.recommender.RecommenderModel`, biased or implicit ALS;
:class:`~movierec_spark.models.knn.KNNModel`; :class:`~movierec_spark.models.ease.EaseModel`).
A member need not predict ratings: a ranking model's score (implicit ALS,
EASE) enters as one more feature, and its weight puts it on the rating
scale. The blend predicts::

    r_hat(u, i) = w_0 + sum_m w_m * p_m(u, i)      clipped to the rating scale

With ``support`` (the Netflix Prize blends' trick) the weights may depend on
how much the members know of the pair: ``s_u = log(1 + ratings of u)`` and
``s_i = log(1 + ratings of i)`` in the members' training ratings join the
features, alone and times every member's prediction::

    r_hat(u, i) = w_0 + sum_m (w_m + w_mu s_u + w_mi s_i) p_m(u, i) + w_u s_u + w_i s_i

so a member that is good for heavy raters and poor for new ones can weigh
more for the first (and the blend still has one closed-form fit).

with weights from least squares with an intercept (and a tiny ridge on the
weights so that near-identical models cannot blow up), solved in closed form
on the driver from the ``(M + 2)^2`` sums ``X'X``, ``X'y``, ``y'y`` that one
Spark aggregation returns; the validation rows themselves never leave Spark.

Protocol (:func:`fit_blend` runs it all):

1. :func:`validation_split` cuts the training ratings into a fit part and a
   validation slice (seeded hash of the pair, so re-evaluation cannot move a
   row); the test set is never involved.
2. Every base model is fitted on the fit part and predicts the validation
   slice (:func:`with_predictions`).
3. :func:`fit_blend_weights` reports each model's validation RMSE and the
   blend's *cross-validated* RMSE: the validation rows are hashed into folds,
   weights fitted on all folds but one score the one left out (in-sample, a
   least-squares blend can never lose to one of its members, so that
   comparison would be empty). The blend is kept only if it beats every
   model alone; its final weights use all validation rows.
4. With ``refit`` the base models are fitted again on all training ratings
   and the weights applied to them (more data for the members; the weights
   carry over, as in the Netflix Prize "probe" blends).

Schemas: :func:`with_predictions` adds one ``double`` column per model,
``pred_<name>``; :func:`with_support` adds ``user_support double,
movie_support double`` (0 for a user or movie the members never saw);
:meth:`BlendModel.predict` returns the input pairs, every row and column
kept, plus ``prediction double``.

Saved layout (``BlendModel.save``/``load``)::

    DIR/metadata.json   weights, intercept, scale, the member names and kinds
    DIR/<name>/         each member model, saved by its own ``save``
    DIR/user_support/   with support: Parquet (user_id, user_support)
    DIR/movie_support/  with support: Parquet (movie_id, movie_support)
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError, io
from movierec_spark import columns as C
from movierec_spark.data.releases import RatingScale
from movierec_spark.models.base import Recommender
from movierec_spark.models.ease import EASE, EaseModel
from movierec_spark.models.knn import KNNModel
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.session import cut_plan

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BLEND = "blend"
_FOLD = "_blend_fold"
_HASH_BUCKETS = 1_000_000


# Loaders of the member kinds a saved blend may hold.
_MEMBER_KINDS: dict[type, str] = {RecommenderModel: "recommender", KNNModel: "knn", EaseModel: EASE}
_LOADERS: dict[str, Callable[[SparkSession, Path], Recommender]] = {
    "recommender": RecommenderModel.load,
    "knn": KNNModel.load,
    EASE: EaseModel.load,
}


USER_SUPPORT = "user_support"
MOVIE_SUPPORT = "movie_support"
_SUPPORT_KEYS = {USER_SUPPORT: C.USER_ID, MOVIE_SUPPORT: C.MOVIE_ID}


def pred_col(name: str) -> str:
    """The column holding model ``name``'s prediction."""
    return f"pred_{name}"


# --- data ---


def validation_split(ratings: DataFrame, fraction: float, seed: int) -> tuple[DataFrame, DataFrame]:
    """``(fit_part, validation)``: about ``fraction`` of the rows, chosen by a
    seeded hash of (user_id, movie_id), go to validation.

    A hash, unlike ``randomSplit``, gives the same answer however the input
    is partitioned or re-evaluated, so no row can land in both parts.
    """
    if not 0.0 < fraction < 1.0:
        raise MovieRecError(f"blend validation fraction must be between 0 and 1 (exclusive), got {fraction}")
    bucket = F.pmod(F.xxhash64(C.USER_ID, C.MOVIE_ID, F.lit(seed)), F.lit(_HASH_BUCKETS))
    in_validation = bucket < F.lit(int(round(fraction * _HASH_BUCKETS)))
    return ratings.where(~in_validation), ratings.where(in_validation)


def with_predictions(pairs: DataFrame, models: Mapping[str, Recommender]) -> DataFrame:
    """``pairs`` plus ``pred_<name>`` for every model, in the given order."""
    if C.PREDICTION in pairs.columns:
        raise MovieRecError(f"pairs to blend already have a {C.PREDICTION!r} column; drop it first")
    scored = pairs
    for name, model in models.items():
        columns = scored.columns
        scored = cut_plan(model.predict(scored).select(*columns, F.col(C.PREDICTION).alias(pred_col(name))))
    return scored


def support_tables(ratings: DataFrame) -> dict[str, DataFrame]:
    """``user_support`` (``user_id, user_support``) and ``movie_support``
    (``movie_id, movie_support``): log(1 + each one's ratings in ``ratings``)."""
    return {
        name: ratings.groupBy(key).agg(F.log1p(F.count(F.lit(1)).cast("double")).alias(name))
        for name, key in _SUPPORT_KEYS.items()
    }


def with_support(pairs: DataFrame, tables: Mapping[str, DataFrame]) -> DataFrame:
    """``pairs`` plus the support columns of :func:`support_tables`; 0 where a table has no row."""
    scored = pairs
    for name, table in tables.items():
        columns = scored.columns
        scored = scored.join(table, on=_SUPPORT_KEYS[name], how="left").select(
            *columns, F.coalesce(F.col(name), F.lit(0.0)).alias(name)
        )
    return scored


def support_features(members: Mapping[str, Column]) -> dict[str, Column]:
    """The support features over the members' prediction columns: each support
    term alone (``user_support``) and times each member (``als*user_support``)."""
    features = {name: F.col(name) for name in _SUPPORT_KEYS}
    for member, column in members.items():
        for name in _SUPPORT_KEYS:
            features[f"{member}*{name}"] = column * F.col(name)
    return features


# --- fitting the weights ---


@dataclass
class BlendReport:
    """What the validation slice said: each model alone and the blend."""

    names: list[str]
    rows: int
    rmse: dict[str, float]  # validation RMSE of each model alone, and "blend" (cross-validated)
    intercept: float
    weights: dict[str, float]
    kept: bool
    folds: int
    ridge: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def best_single(self) -> str:
        """The model with the lowest validation RMSE alone (ties: first given)."""
        return min(self.names, key=lambda name: self.rmse[name])

    def as_dict(self) -> dict[str, Any]:
        return {
            "validation_rows": self.rows,
            "validation_rmse": self.rmse,
            "intercept": self.intercept,
            "weights": self.weights,
            "kept": self.kept,
            "best_single": self.best_single,
            "folds": self.folds,
            "ridge": self.ridge,
            **self.params,
        }


def _fold_sums(scored: DataFrame, features: Sequence[Column], label: str, folds: int, seed: int) -> list[dict]:
    """One small row per fold: n, sum y, sum y^2, sum p_m, sum p_m*y, sum p_m*p_n."""
    y = F.col(label).cast("double")
    preds = [column.cast("double") for column in features]
    aggs = [F.count(F.lit(1)).alias("n"), F.sum(y).alias("y"), F.sum(y * y).alias("yy")]
    for a, pa in enumerate(preds):
        aggs += [F.sum(pa).alias(f"p{a}"), F.sum(pa * y).alias(f"p{a}y")]
        aggs += [F.sum(pa * preds[b]).alias(f"p{a}p{b}") for b in range(a, len(preds))]
    by_fold = scored.groupBy(fold_of(folds, seed).alias(_FOLD)).agg(*aggs)
    return [row.asDict() for row in by_fold.orderBy(_FOLD).collect()]


def fold_of(folds: int, seed: int):
    """The cross-validation fold (0 .. folds-1) of a validation row: a seeded hash of the pair."""
    return F.pmod(F.xxhash64(C.USER_ID, C.MOVIE_ID, F.lit(seed + 1)), F.lit(folds))


def _normal_equations(sums: Sequence[Mapping[str, float]], m: int) -> tuple[list[list[float]], list[float], float, float]:
    """``X'X``, ``X'y``, ``y'y`` and n for the design ``[1, p_1 .. p_m]`` over ``sums``."""
    def total(key: str) -> float:
        return float(sum(s[key] or 0.0 for s in sums))

    xtx = [[0.0] * (m + 1) for _ in range(m + 1)]
    xty = [0.0] * (m + 1)
    xtx[0][0] = total("n")
    xty[0] = total("y")
    for a in range(m):
        xtx[0][a + 1] = xtx[a + 1][0] = total(f"p{a}")
        xty[a + 1] = total(f"p{a}y")
        for b in range(a, m):
            xtx[a + 1][b + 1] = xtx[b + 1][a + 1] = total(f"p{a}p{b}")
    return xtx, xty, total("yy"), total("n")


def _solve(xtx: list[list[float]], xty: list[float], ridge: float) -> list[float]:
    """Least-squares coefficients; ``ridge * n`` added to the weights' diagonal."""
    import numpy as np

    a = np.array(xtx, dtype=float)
    n = a[0, 0]
    penalty = np.eye(len(xty)) * ridge * n
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    return [float(v) for v in np.linalg.solve(a + penalty, np.array(xty, dtype=float))]


def _sse(coef: Sequence[float], xtx, xty, yy: float) -> float:
    """sum (y - X coef)^2 from the sums: y'y - 2 coef.X'y + coef' X'X coef."""
    quad = sum(coef[a] * xtx[a][b] * coef[b] for a in range(len(coef)) for b in range(len(coef)))
    return yy - 2.0 * sum(c * v for c, v in zip(coef, xty)) + quad


def fit_blend_weights(
    scored: DataFrame,
    names: Sequence[str],
    *,
    label: str = C.RATING,
    folds: int = 5,
    ridge: float = 1e-4,
    seed: int = 42,
    support: bool = False,
) -> BlendReport:
    """Blend weights for the ``pred_<name>`` columns of ``scored`` (the validation slice).

    With ``support``, ``scored`` also holds :func:`with_support`'s columns and
    the :func:`support_features` join the members' predictions as features.
    One Spark action; see the module docstring for the cross-validation.
    """
    names = list(names)
    features = {name: F.col(pred_col(name)) for name in names}
    if support:
        features.update(support_features(dict(features)))
    if not names:
        raise MovieRecError("a blend needs at least one model")
    if folds < 2:
        raise MovieRecError(f"blend folds must be 2 or more, got {folds}")
    if not ridge >= 0:
        raise MovieRecError(f"blend ridge must be 0 or more, got {ridge}")
    m = len(features)
    sums = _fold_sums(scored, list(features.values()), label, folds, seed)
    xtx, xty, yy, n = _normal_equations(sums, m)
    if n < 2 * (m + 1) or len(sums) < 2:
        raise MovieRecError(
            f"the blend's validation slice has {int(n)} rows, too few to fit {m + 1} weights; "
            "use more training data or a larger validation fraction"
        )
    rmse = {}
    for a, name in enumerate(names):
        only = [0.0] * (m + 1)
        only[a + 1] = 1.0
        rmse[name] = math.sqrt(max(_sse(only, xtx, xty, yy), 0.0) / n)
    held_out_sse = 0.0
    for k, fold in enumerate(sums):
        rest = [s for j, s in enumerate(sums) if j != k]
        coef = _solve(*_normal_equations(rest, m)[:2], ridge)
        f_xtx, f_xty, f_yy, _ = _normal_equations([fold], m)
        held_out_sse += _sse(coef, f_xtx, f_xty, f_yy)
    rmse[BLEND] = math.sqrt(max(held_out_sse, 0.0) / n)
    coef = _solve(xtx, xty, ridge)
    kept = all(rmse[BLEND] < rmse[name] for name in names)
    report = BlendReport(
        names=names,
        rows=int(n),
        rmse=rmse,
        intercept=coef[0],
        weights=dict(zip(features, coef[1:])),
        kept=kept,
        folds=folds,
        ridge=ridge,
        params={"support": support},
    )
    log.info(
        "blend on %d validation rows: %s; blend (%d-fold CV) %.4f -> %s",
        report.rows,
        ", ".join(f"{name} {rmse[name]:.4f}" for name in names),
        folds,
        rmse[BLEND],
        "kept" if kept else f"not kept, {report.best_single} alone is as good",
    )
    return report


# --- the blended model ---


@dataclass
class BlendModel:
    """Fitted members and the weights that combine their predictions.

    ``support``: the :func:`support_tables` of the members' training ratings
    when the weights include support features, else None.
    """

    models: dict[str, Recommender]
    intercept: float
    weights: dict[str, float]
    scale: RatingScale
    support: dict[str, DataFrame] | None = None

    predicts_ratings: ClassVar[bool] = True
    ranks: ClassVar[bool] = False  # its kNN members cannot score every unseen movie in time

    def describe(self) -> dict[str, Any]:
        return {
            "model": BLEND,
            "intercept": self.intercept,
            "weights": self.weights,
            "members": {name: member.describe() for name, member in self.models.items()},
        }

    @classmethod
    def from_report(
        cls,
        models: Mapping[str, Recommender],
        report: BlendReport,
        scale: RatingScale,
        support: Mapping[str, DataFrame] | None = None,
    ) -> "BlendModel":
        """The blend of ``report``'s weights; ``support``: the members' :func:`support_tables`
        (required when the weights were fitted with support)."""
        missing = [name for name in report.names if name not in models]
        if missing:
            raise MovieRecError(f"blend weights name models that were not given: {', '.join(missing)}")
        if bool(report.params.get("support")) != (support is not None):
            raise MovieRecError("a blend fitted with support features needs the members' support tables, and only then")
        return cls(
            {name: models[name] for name in report.names},
            report.intercept,
            dict(report.weights),
            scale,
            dict(support) if support is not None else None,
        )

    def with_support(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` plus the support columns :meth:`combine` reads (unchanged without support)."""
        return pairs if self.support is None else with_support(pairs, self.support)

    def combine(self, members: Mapping[str, Column] | None = None) -> Column:
        """The clipped blend of the members' prediction columns (default ``pred_<name>``)
        and, with support, of the columns :meth:`with_support` adds."""
        columns = dict(members) if members is not None else {name: F.col(pred_col(name)) for name in self.models}
        if self.support is not None:
            columns.update(support_features(dict(columns)))
        raw = F.lit(float(self.intercept))
        for name, weight in self.weights.items():
            raw = raw + F.lit(float(weight)) * columns[name]
        return F.least(F.greatest(raw, F.lit(float(self.scale.low))), F.lit(float(self.scale.high)))

    def predict(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` plus the clipped blended ``prediction``; no row is dropped."""
        kept = [c for c in pairs.columns if c != C.PREDICTION]
        scored = self.with_support(with_predictions(pairs.select(*kept), self.models))
        return scored.select(*kept, self.combine().alias(C.PREDICTION))

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the blend and its members under ``path`` (a folder that must not exist yet).

        ``tables``: the tables this output has saved already (members saved
        as models of their own): copied, not rewritten.
        """
        path = Path(path)
        tables = tables if tables is not None else io.SavedTables()
        path.mkdir(parents=True, exist_ok=False)
        members = {}
        for name, model in self.models.items():
            kind = _MEMBER_KINDS.get(type(model))
            if kind is None:
                raise TypeError(f"cannot save blend member {name!r} of type {type(model).__name__}")
            model.save(path / name, tables)
            members[name] = kind
        for name, table in (self.support or {}).items():
            tables.write(table, path / name)
        meta = {
            "format_version": FORMAT_VERSION,
            "model": BLEND,
            "intercept": self.intercept,
            "weights": self.weights,
            "members": members,
            "support": sorted(self.support) if self.support is not None else None,
            "scale": {"low": self.scale.low, "high": self.scale.high, "step": self.scale.step},
        }
        (path / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path) -> "BlendModel":
        """Load a blend saved by :meth:`save`; anything else is a MovieRecError."""
        path = Path(path)
        meta = io.read_model_metadata(path, BLEND, FORMAT_VERSION)
        try:
            members = {name: _LOADERS[kind](spark, path / name) for name, kind in meta["members"].items()}
            weights = {name: float(w) for name, w in meta["weights"].items()}
            names = meta.get("support")
            support = None if names is None else {name: spark.read.parquet(str(path / name)) for name in names}
            return cls(members, float(meta["intercept"]), weights, RatingScale(**meta["scale"]), support)
        except (ValueError, KeyError, TypeError) as exc:
            raise MovieRecError(f"{path / 'metadata.json'} is damaged ({exc}); retrain the model") from None


# --- the whole protocol ---


@dataclass
class BlendResult:
    """The fitted members, the blend (None when it did not beat them) and the report."""

    models: dict[str, Recommender]
    blend: BlendModel | None
    report: BlendReport

    @property
    def best(self) -> Recommender:
        """The blend when kept, else the model that was best alone on validation."""
        return self.blend if self.blend is not None else self.models[self.report.best_single]


def fit_blend(
    train: DataFrame,
    fitters: Mapping[str, Callable[[DataFrame], Recommender]],
    scale: RatingScale,
    *,
    validation_fraction: float = 0.1,
    folds: int = 5,
    ridge: float = 1e-4,
    seed: int = 42,
    refit: bool = True,
    support: bool = False,
) -> BlendResult:
    """Run the protocol of the module docstring on the training ratings.

    ``fitters`` maps a model name to a function fitting that model on a
    ratings DataFrame. With ``refit`` the returned members were fitted on all
    of ``train``, else on the fit part only; with ``support`` the weights
    include the support features, counted on the same ratings as the members.
    """
    fit_part, validation = validation_split(train, validation_fraction, seed)
    # Cached: every member is fitted on the one and scores the other.
    fit_part, validation = fit_part.cache(), validation.cache()
    first = {name: fit(fit_part) for name, fit in fitters.items()}
    scored = with_predictions(validation, first)
    if support:
        scored = with_support(scored, support_tables(fit_part))
    scored = scored.cache()
    report = fit_blend_weights(scored, list(fitters), folds=folds, ridge=ridge, seed=seed, support=support)
    report.params.update(validation_fraction=validation_fraction, seed=seed, refit=refit)
    scored.unpersist()
    validation.unpersist()
    if refit:
        for model in first.values():
            if hasattr(model, "unpersist"):
                model.unpersist()
        fit_part.unpersist()
        models = {name: fit(train) for name, fit in fitters.items()}
    else:
        models = first
    tables = support_tables(train if refit else fit_part) if support else None
    blend = BlendModel.from_report(models, report, scale, tables) if report.kept else None
    return BlendResult(models=models, blend=blend, report=report)
