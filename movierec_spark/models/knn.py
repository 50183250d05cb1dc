"""Neighbourhood collaborative filtering: kNN on the residuals of a bias baseline.

The classic "people who liked this also liked" model, in the KNNBaseline form
(Koren 2010, section 2.2), computed with Spark joins and aggregations so that
it runs on a cluster; nothing is collected to the driver.

Item-based (the default), for user ``u`` and movie ``i``::

    r_hat(u, i) = b_ui + sum_j s_ij * (r_uj - b_uj) / sum_j |s_ij|

over the ``k`` movies ``j`` that ``u`` rated with the highest similarity to
``i`` (ties broken by the smaller id). ``b_ui = mu + b_u + b_i`` comes from
a fitted bias baseline (:class:`~movierec_spark.models.recommender.RecommenderModel`, its
``global_mean``, ``user_bias`` and ``item_bias``). User-based kNN swaps the
roles: the ``k`` users most similar to ``u`` among those who rated ``i``.
The result is clipped to the rating scale. A pair with no neighbour (an
unseen user or movie, or none of the user's movies similar to this one) is
predicted by the baseline alone; ``predict(..., with_neighbours=True)`` adds a
``knn_neighbours`` column so callers can count those fallbacks.

Similarity of movies ``i`` and ``j`` over the ``n`` users who rated both
(users and movies swap in user-based mode):

- ``pearson_baseline``: ``sum e_ui e_uj / sqrt(sum e_ui^2 * sum e_uj^2)`` of the
  baseline residuals ``e = r - b`` (Pearson correlation centred on the
  baseline instead of the sample means; Surprise's "pearson_baseline");
- ``pearson``: Pearson correlation of the raw ratings, centred on the means
  over the common users;
- ``cosine``: cosine of the raw rating vectors over the common users.

Each is shrunk towards 0 by its support, ``s * n / (n + shrinkage)``, pairs
with fewer than ``min_support`` common raters are dropped, and only positive
similarities are kept: a negative one says little about the rating (Surprise's
KNNBaseline also ignores them), and dropping them halves the table.

Cost. The similarities come from a self-join of the ratings on the user
(item-based), which yields ``sum_u n_u * (n_u - 1) / 2`` pair rows for users
with ``n_u`` ratings, aggregated into at most ``m * (m - 1) / 2`` movie pairs:
quadratic in the heaviest users' activity (ml-latest-small: 30.4 million pair
rows from 100,836 ratings, one user alone giving 3.6 million). ``join_cap``
bounds it: only ``join_cap`` ratings per user (per movie in user-based mode),
chosen by a seeded hash, enter the self-join, so it costs at most
``sum_u min(n_u, cap)^2 / 2`` rows (cap 300 on ml-latest-small: 6.9 million);
every rating still serves as a neighbour at prediction time. Predicting
``P`` pairs joins each pair with all of the user's ratings: ``sum_(u,i) n_u``
rows, then one window per pair keeps the ``k`` best.

Schemas:

- input ratings: ``user_id int, movie_id int, rating float`` (extra columns
  ignored);
- :attr:`KNNModel.residuals`: ``user_id int, movie_id int, residual double``;
- :attr:`KNNModel.similarities`: ``movie_id int`` (``user_id`` when
  user-based), ``neighbour_id int, similarity double, support long``, both
  directions of every pair;
- :meth:`KNNModel.predict`: the input pairs, every row and column kept, plus
  ``prediction double`` (and ``knn_neighbours int`` on request).

Saved layout (``save``/``load``)::

    DIR/metadata.json    kind, parameters, format version
    DIR/baseline/        the bias baseline, a RecommenderModel
    DIR/residuals/       Parquet, schema above
    DIR/similarities/    Parquet, schema above
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from movierec_spark import MovieRecError, io
from movierec_spark import columns as C
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.settings import ItemKnnSettings, parse_section

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ITEM_BASED = "item"
USER_BASED = "user"
KINDS = (ITEM_BASED, USER_BASED)
PEARSON_BASELINE = "pearson_baseline"
PEARSON = "pearson"
COSINE = "cosine"

RESIDUAL = "residual"
NEIGHBOUR_ID = "neighbour_id"
SIMILARITY = "similarity"
SUPPORT = "support"
NEIGHBOURS = "knn_neighbours"

# Internal names, chosen so they cannot clash with a caller's columns.
_BASE = "_knn_baseline"
_NUM = "_knn_num"
_DEN = "_knn_den"
_X = "_knn_x"
_Y = "_knn_y"
_A = "_knn_a"
_B = "_knn_b"
_OVER = "_knn_over"
_RANK = "_knn_rank"


_KNN = ItemKnnSettings()  # [user_knn] ships the same defaults (tests/test_settings.py)


@dataclass(frozen=True)
class KNNParams:
    """Settings of the neighbourhood model: conf/movierec.toml's [item_knn] or
    [user_knn] (defaults and ranges, from movierec_spark.settings), the kind,
    and the seed of the join cap's sample.

    ``join_cap`` of 0 means no cap on the ratings per user (per movie when
    user-based) that enter the similarity self-join; see the module docstring.
    """

    kind: str = ITEM_BASED
    similarity: str = _KNN.similarity
    k: int = _KNN.k
    shrinkage: float = _KNN.shrinkage
    min_support: int = _KNN.min_support
    join_cap: int = _KNN.join_cap
    seed: int = 42

    def validate(self) -> "KNNParams":
        """Return self, or raise MovieRecError naming the bad setting."""
        if self.kind not in KINDS:
            raise MovieRecError(f"knn kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        section = "item_knn" if self.kind == ITEM_BASED else "user_knn"
        parse_section(section, {k: v for k, v in asdict(self).items() if k not in ("kind", "seed")})
        return self

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "KNNParams":
        """Params from a config section such as ``cfg["item_knn"]``; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in section.items() if k in names}).validate()

    @property
    def key(self) -> str:
        """The column whose neighbours are looked for."""
        return C.MOVIE_ID if self.kind == ITEM_BASED else C.USER_ID

    @property
    def over(self) -> str:
        """The column the similarity is computed over (the common raters)."""
        return C.USER_ID if self.kind == ITEM_BASED else C.MOVIE_ID


# --- baseline and residuals ---


def with_baseline(df: DataFrame, baseline: RecommenderModel, name: str = _BASE) -> DataFrame:
    """``df`` plus column ``name``: the baseline's unclipped ``mu + b_u + b_i``
    (plus the user-day bias when the baseline has one and ``df`` a timestamp).

    Unknown users or movies add a bias of 0, the same fallback as the model.
    """
    return baseline.with_baseline(df, name)


def residuals(ratings: DataFrame, baseline: RecommenderModel) -> DataFrame:
    """``user_id, movie_id, rating double, residual double`` with ``residual = r - b_ui``."""
    timestamp = [C.TIMESTAMP] if C.TIMESTAMP in ratings.columns else []
    return (
        ratings.select(C.USER_ID, C.MOVIE_ID, F.col(C.RATING).cast("double").alias(C.RATING), *timestamp)
        .transform(lambda df: with_baseline(df, baseline))
        .withColumn(RESIDUAL, F.col(C.RATING) - F.col(_BASE))
        .select(C.USER_ID, C.MOVIE_ID, C.RATING, RESIDUAL)
    )


# --- similarities ---


def _capped(values: DataFrame, cap: int, seed: int) -> DataFrame:
    """At most ``cap`` rows per ``_OVER`` value, picked by a seeded hash (deterministic)."""
    if not cap:
        return values
    order = Window.partitionBy(_OVER).orderBy(F.xxhash64(_OVER, _A, F.lit(seed)), F.col(_A))
    return values.withColumn(_RANK, F.row_number().over(order)).where(F.col(_RANK) <= cap).drop(_RANK)


def _raw_similarity(similarity: str) -> Column:
    """Similarity from the pair sums; 0 when a denominator is 0 (ANSI-safe)."""
    n, sx, sy = F.col("n"), F.col("sx"), F.col("sy")
    sxy, sxx, syy = F.col("sxy"), F.col("sxx"), F.col("syy")
    if similarity == PEARSON:
        cov = sxy - sx * sy / n
        var = (sxx - sx * sx / n) * (syy - sy * sy / n)
    else:  # cosine of residuals (pearson_baseline) or of raw ratings (cosine)
        cov, var = sxy, sxx * syy
    # Sums of many floats can leave a tiny negative variance; treat it as 0.
    return F.when(var > 1e-12, cov / F.sqrt(var)).otherwise(F.lit(0.0))


def pair_sums(resid: DataFrame, params: KNNParams) -> DataFrame:
    """The co-rating self-join: one row per pair ``_knn_a < _knn_b`` with
    ``n, sxy, sxx, syy, sx, sy`` summed over their common raters.

    This is the expensive step (see "Cost" in the module docstring); callers
    trying several shrinkages can persist it and call
    :func:`similarities_from_sums` on it.
    """
    value = RESIDUAL if params.similarity == PEARSON_BASELINE else C.RATING
    values = resid.select(
        F.col(params.over).alias(_OVER), F.col(params.key).alias(_A), F.col(value).cast("double").alias(_X)
    ).transform(lambda df: _capped(df, params.join_cap, params.seed))
    right = values.select(_OVER, F.col(_A).alias(_B), F.col(_X).alias(_Y))
    return (
        values.join(right, on=_OVER, how="inner")
        .where(F.col(_A) < F.col(_B))
        .groupBy(_A, _B)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(F.col(_X) * F.col(_Y)).alias("sxy"),
            F.sum(F.col(_X) * F.col(_X)).alias("sxx"),
            F.sum(F.col(_Y) * F.col(_Y)).alias("syy"),
            F.sum(_X).alias("sx"),
            F.sum(_Y).alias("sy"),
        )
    )


def similarities_from_sums(sums: DataFrame, params: KNNParams) -> DataFrame:
    """Shrunk positive similarities, both directions, from :func:`pair_sums`."""
    n = F.col("n")
    shrunk = _raw_similarity(params.similarity) * n / (n + F.lit(float(params.shrinkage)))
    pairs = (
        sums.where(n >= params.min_support)
        .select(_A, _B, shrunk.alias(SIMILARITY), n.alias(SUPPORT))
        .where(F.col(SIMILARITY) > 0)
    )
    forward = pairs.select(F.col(_A).alias(params.key), F.col(_B).alias(NEIGHBOUR_ID), SIMILARITY, SUPPORT)
    backward = pairs.select(F.col(_B).alias(params.key), F.col(_A).alias(NEIGHBOUR_ID), SIMILARITY, SUPPORT)
    return forward.unionByName(backward)


def similarities(resid: DataFrame, params: KNNParams) -> DataFrame:
    """Shrunk positive similarities of every pair of movies (users, when user-based).

    ``resid`` is the output of :func:`residuals`. The result has both
    directions of each pair: ``<key> int, neighbour_id int, similarity double,
    support long``.
    """
    params.validate()
    return similarities_from_sums(pair_sums(resid, params), params)


# --- the model ---


@dataclass
class KNNModel:
    """A fitted neighbourhood model: baseline, training residuals, similarities."""

    baseline: RecommenderModel
    residuals: DataFrame  # user_id, movie_id, residual
    similarities: DataFrame  # <key>, neighbour_id, similarity, support
    params: KNNParams

    predicts_ratings: ClassVar[bool] = True
    # Scoring every unseen movie of every user joins each candidate with the
    # user's ratings: hours on a large release, for a model that ranks poorly.
    ranks: ClassVar[bool] = False

    @property
    def scale(self):
        return self.baseline.scale

    def describe(self) -> dict[str, Any]:
        return {"model": "knn", **asdict(self.params), "baseline": self.baseline.describe()}

    def neighbour_scores(self, pairs: DataFrame) -> DataFrame:
        """For each distinct (user_id, movie_id) of ``pairs`` that has neighbours:
        the weighted residual sum, the weight sum and the neighbour count."""
        key, over = self.params.key, self.params.over
        targets = pairs.select(C.USER_ID, C.MOVIE_ID).distinct()
        known = self.residuals.select(over, F.col(key).alias(NEIGHBOUR_ID), RESIDUAL)
        best_first = Window.partitionBy(C.USER_ID, C.MOVIE_ID).orderBy(
            F.desc(SIMILARITY), F.asc(NEIGHBOUR_ID)
        )
        return (
            targets.join(known, on=over, how="inner")
            .join(self.similarities.select(key, NEIGHBOUR_ID, SIMILARITY), on=[key, NEIGHBOUR_ID], how="inner")
            .withColumn(_RANK, F.row_number().over(best_first))
            .where(F.col(_RANK) <= self.params.k)
            .groupBy(C.USER_ID, C.MOVIE_ID)
            .agg(
                F.sum(F.col(SIMILARITY) * F.col(RESIDUAL)).alias(_NUM),
                F.sum(F.abs(SIMILARITY)).alias(_DEN),
                F.count(F.lit(1)).cast("int").alias(NEIGHBOURS),
            )
        )

    def predict(self, pairs: DataFrame, with_neighbours: bool = False) -> DataFrame:
        """``pairs`` (user_id, movie_id, ...) plus ``prediction``; no row is dropped.

        With ``with_neighbours`` a ``knn_neighbours`` column (0 where the
        prediction fell back to the baseline) is kept too.
        """
        scale = self.baseline.scale
        offset = F.when(F.col(_DEN) > 0, F.col(_NUM) / F.col(_DEN)).otherwise(F.lit(0.0))
        raw = F.col(_BASE) + offset
        clipped = F.least(F.greatest(raw, F.lit(float(scale.low))), F.lit(float(scale.high)))
        out = (
            pairs.drop(C.PREDICTION, NEIGHBOURS)
            .join(self.neighbour_scores(pairs), on=[C.USER_ID, C.MOVIE_ID], how="left")
            .transform(lambda df: with_baseline(df, self.baseline))
            .withColumn(C.PREDICTION, clipped.cast("double"))
            .withColumn(NEIGHBOURS, F.coalesce(F.col(NEIGHBOURS), F.lit(0)))
        )
        kept = [c for c in pairs.columns if c not in (C.PREDICTION, NEIGHBOURS)]
        extra = [NEIGHBOURS] if with_neighbours else []
        return out.select(*kept, C.PREDICTION, *extra)

    def unpersist(self) -> None:
        self.residuals.unpersist()
        self.similarities.unpersist()

    # --- persistence ---

    def metadata(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "model": "knn", "params": asdict(self.params)}

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the model under ``path`` (a folder that must not exist yet).

        ``tables``: the tables this output has saved already (the baseline's
        bias tables, when the bias model was saved too): copied, not rewritten.
        """
        path = Path(path)
        tables = tables if tables is not None else io.SavedTables()
        path.mkdir(parents=True, exist_ok=False)
        self.baseline.save(path / "baseline", tables)
        tables.write(self.residuals, path / "residuals")
        tables.write(self.similarities, path / "similarities")
        # Written last: a folder with metadata.json is a complete model.
        (path / "metadata.json").write_text(json.dumps(self.metadata(), indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path) -> "KNNModel":
        """Load a model saved by :meth:`save`; anything else is a MovieRecError."""
        path = Path(path)
        meta = io.read_model_metadata(path, "knn", FORMAT_VERSION, label="kNN")
        return cls(
            baseline=RecommenderModel.load(spark, path / "baseline"),
            residuals=spark.read.parquet(str(path / "residuals")),
            similarities=spark.read.parquet(str(path / "similarities")),
            params=KNNParams(**meta["params"]).validate(),
        )


def fit_knn(ratings: DataFrame, baseline: RecommenderModel, params: KNNParams | None = None) -> KNNModel:
    """Fit the neighbourhood model on ``ratings`` around a fitted ``baseline``.

    Lazy like every DataFrame: the residuals and similarities are persisted
    (memory, then disk) and computed by the first prediction, then reused by
    every later one; :meth:`KNNModel.unpersist` frees them.
    """
    params = (params or KNNParams()).validate()
    resid = residuals(ratings, baseline).persist(StorageLevel.MEMORY_AND_DISK)
    sims = similarities(resid, params).persist(StorageLevel.MEMORY_AND_DISK)
    log.info(
        "kNN: %s-based, %s similarity, k=%d, shrinkage=%g, min_support=%d, join_cap=%s",
        params.kind, params.similarity, params.k, params.shrinkage, params.min_support,
        params.join_cap or "none",
    )
    return KNNModel(
        baseline=baseline,
        residuals=resid.select(C.USER_ID, C.MOVIE_ID, RESIDUAL),
        similarities=sims,
        params=params,
    )
