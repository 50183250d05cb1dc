"""The fitted recommender every later job loads: biases plus ALS on residuals.

A rating is predicted as ``global_mean + user_bias + item_bias + day_bias +
p_u . q_i`` where the biases are damped means and ``p_u``, ``q_i`` are ALS
factors fitted to the residuals that the biases leave, then clipped to the
rating scale. ``day_bias`` (optional) is the user's mood on the day of the
rating (Koren's b_u,t): it applies to pairs that carry a ``timestamp`` on a
day the user rated in training, and is 0 everywhere else (a recommendation
has no day).
Without factors (``als is None``) it is the damped-bias baseline; in
``implicit`` mode the biases are zero and the score is the ALS preference
``p_u . q_i`` alone (a ranking score, not a rating, so it is not clipped).

Unknown users or movies fall back to what is known about them: an unseen
user gets ``global_mean + item_bias``, an unseen movie
``global_mean + user_bias``, both unseen the global mean.

Saved layout (``save``/``load``)::

    DIR/metadata.json   kind, global mean, rating scale, parameters, the largest
                        user id (so a custom user's fresh id costs no Spark job)
    DIR/user_bias/      Parquet: user_id int, user_bias double
    DIR/item_bias/      Parquet: movie_id int, item_bias double
    DIR/day_bias/       Parquet: user_id int, day long, day_bias double (if fitted)
    DIR/als/            pyspark.ml ALSModel (absent for the bias baseline): its
                        metadata/ and the Parquet tables userFactors/, itemFactors/

``load(spark, DIR, factors_only=True)`` reads those two tables directly
(:class:`SavedFactors`) instead of through ``ALSModel.load``: loading then
runs no Spark job, where ``ALSModel.load`` runs three (a one-task job for
its metadata file and a Parquet footer read for each table). Scoring, fold-in, top-N and similar movies only read the factor
tables, so ``jobs/recommend.py`` and ``jobs/similar.py`` load that way; a
model loaded so cannot be saved again (load it whole for that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.ml.recommendation import ALSModel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError, io
from movierec_spark import columns as C
from movierec_spark.columns import ITEM_BIAS, USER_BIAS
from movierec_spark.data import schemas
from movierec_spark.data.releases import RatingScale
# The kinds and column names are defined without Spark (the serving path
# without a JVM reads them) and kept importable from here.
from movierec_spark.models.saved import FORMAT_VERSION, KIND_EXPLICIT, KIND_IMPLICIT, read_metadata  # noqa: F401 - KIND_IMPLICIT re-exported

DAY_BIAS = "day_bias"
DAY = "day"
SECONDS_PER_DAY = 86_400
_BASELINE = "_baseline"
_DAY = "_day"
_DAY_BIAS = "_day_bias"
_USER_FACTORS = "_user_factors"
_ITEM_FACTORS = "_item_factors"


def day_of(timestamp: Column) -> Column:
    """The UTC day number (days since 1970-01-01) of a Unix-seconds timestamp."""
    return F.floor(timestamp / F.lit(SECONDS_PER_DAY)).cast("long")


@dataclass(frozen=True, eq=False)  # DataFrames: compared by identity
class SavedFactors:
    """The factor tables of a saved ALSModel, read as Parquet with their known schema.

    What ``RecommenderModel.load(..., factors_only=True)`` puts in ``als``:
    the two tables every scoring function here reads, named as on
    ``ALSModel`` (``id int, features array<float>``). Not an ``ALSModel``:
    it has no ``transform`` and cannot be saved.
    """

    userFactors: DataFrame
    itemFactors: DataFrame

    @classmethod
    def read(cls, spark: SparkSession, als_dir: str | Path) -> "SavedFactors":
        """The tables of the ALSModel saved in ``als_dir`` (no Spark job); a missing one is a MovieRecError."""
        tables = io.read_als_factors(spark, als_dir)
        return cls(userFactors=tables["userFactors"], itemFactors=tables["itemFactors"])


@dataclass
class RecommenderModel:
    """Damped biases plus (optionally) ALS factors of the residuals."""

    global_mean: float
    user_bias: DataFrame  # user_id, user_bias
    item_bias: DataFrame  # movie_id, item_bias
    als: ALSModel | SavedFactors | None
    scale: RatingScale
    kind: str = KIND_EXPLICIT
    params: dict[str, Any] = field(default_factory=dict)
    day_bias: DataFrame | None = None  # user_id, day, day_bias
    # The largest user id of the bias table and the ALS user factors, once known
    # (recorded in metadata.json by save, so a loaded model knows it).
    known_max_user_id: int | None = field(default=None, repr=False)

    @property
    def clips(self) -> bool:
        return self.kind == KIND_EXPLICIT

    @property
    def has_factors(self) -> bool:
        return self.als is not None

    @property
    def predicts_ratings(self) -> bool:
        """Explicit models predict ratings; implicit ALS and popularity score a ranking."""
        return self.kind == KIND_EXPLICIT

    @property
    def ranks(self) -> bool:
        """Every model but the global mean, which ties every movie."""
        return self.params.get("model") != "global_mean"

    def describe(self) -> dict[str, Any]:
        return dict(self.params)

    def max_user_id(self) -> int | None:
        """The largest user id the model knows (biases or factors); None for a model without users.

        Computed in Spark the first time (one job), then remembered; a loaded
        model reads it from its metadata and runs no job.
        """
        if self.known_max_user_id is None:
            ids = self.user_bias.select(C.USER_ID)
            if self.als is not None:
                ids = ids.unionByName(self.als.userFactors.select(F.col("id").alias(C.USER_ID)))
            self.known_max_user_id = ids.agg(F.max(C.USER_ID)).first()[0]
        return self.known_max_user_id

    def with_baseline(self, pairs: DataFrame, name: str) -> DataFrame:
        """``pairs`` plus column ``name``: the unclipped ``mean + b_u + b_i (+ b_u,day)``.

        Unknown users, movies and days add 0. The day term needs a
        ``timestamp`` column in ``pairs``; without one it is 0 too.
        """
        # The bias tables have one row per user or movie, far fewer than the
        # pairs scored (a top-N run scores users x movies): broadcasting them
        # avoids shuffling the pairs.
        out = (
            pairs.join(F.broadcast(self.user_bias), on=C.USER_ID, how="left")
            .join(F.broadcast(self.item_bias), on=C.MOVIE_ID, how="left")
            .fillna(0.0, subset=[USER_BIAS, ITEM_BIAS])
        )
        baseline = F.lit(float(self.global_mean)) + F.col(USER_BIAS) + F.col(ITEM_BIAS)
        if self.day_bias is not None and C.TIMESTAMP in pairs.columns:
            # Broadcast too: one row per user and day they rated (ml-25m's
            # 20M training ratings: 1.3M rows, 17 MB of Parquet), where a
            # sort-merge join shuffled and sorted every scored pair (the
            # residuals ALS fits and the test rows, bench/NOTES.md).
            # The day joins as an int (days since 1970 fit one), so Spark packs
            # the (user, day) key into one long and looks it up in a
            # long-keyed hash table, not a generic one over binary rows.
            days = self.day_bias.select(
                C.USER_ID, F.col(DAY).cast("int").alias(_DAY), F.col(DAY_BIAS).alias(_DAY_BIAS)
            )
            out = out.withColumn(_DAY, day_of(F.col(C.TIMESTAMP)).cast("int")).join(
                F.broadcast(days), on=[C.USER_ID, _DAY], how="left"
            )
            baseline = baseline + F.coalesce(F.col(_DAY_BIAS), F.lit(0.0))
            out = out.withColumn(name, baseline.cast("double")).drop(_DAY, _DAY_BIAS)
        else:
            out = out.withColumn(name, baseline.cast("double"))
        return out.drop(USER_BIAS, ITEM_BIAS)

    def predict(self, pairs: DataFrame, score_col: str | None = None) -> DataFrame:
        """``pairs`` (user_id, movie_id, ...) plus a ``prediction`` column.

        Rows are never dropped: cold-start pairs get the fallback described
        in the module docstring. With ``score_col`` the unclipped score is
        kept in that column too: ranking by it keeps the order among pairs
        whose predictions were all clipped to the top of the scale.
        """
        # Factors are broadcast like the biases (with_baseline): ALSModel.transform's
        # sort-merge joins would shuffle the pairs twice.
        scored = self.with_baseline(pairs, _BASELINE)
        if self.als is not None:
            user_factors = self.als.userFactors.select(
                F.col("id").alias(C.USER_ID), F.col("features").alias(_USER_FACTORS)
            )
            item_factors = self.als.itemFactors.select(
                F.col("id").alias(C.MOVIE_ID), F.col("features").alias(_ITEM_FACTORS)
            )
            scored = scored.join(F.broadcast(user_factors), on=C.USER_ID, how="left").join(
                F.broadcast(item_factors), on=C.MOVIE_ID, how="left"
            )
            dot = F.aggregate(
                F.zip_with(_USER_FACTORS, _ITEM_FACTORS, lambda u, i: u * i),
                F.lit(0.0).cast("double"),
                lambda acc, x: acc + x,
            )
            # A user or movie without factors (cold start) contributes nothing.
            factor = F.coalesce(dot, F.lit(0.0))
        else:
            factor = F.lit(0.0)
        raw = F.col(_BASELINE) + factor
        unclipped = raw
        if self.clips:
            raw = F.least(F.greatest(raw, F.lit(self.scale.low)), F.lit(self.scale.high))
        if score_col is not None:
            scored = scored.withColumn(score_col, unclipped.cast("double"))
        out = scored.withColumn(C.PREDICTION, raw.cast("double"))
        return out.drop(_BASELINE, _USER_FACTORS, _ITEM_FACTORS)

    # --- persistence ---

    def metadata(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "global_mean": self.global_mean,
            "scale": {"low": self.scale.low, "high": self.scale.high, "step": self.scale.step},
            "has_factors": self.als is not None,
            "has_day_bias": self.day_bias is not None,
            "params": self.params,
            "max_user_id": self.max_user_id(),
        }

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the model under ``path`` (a folder that must not exist yet).

        ``tables``: the tables this output has saved already; a bias table
        saved before (the baseline of a biased ALS model, saved as a model
        of its own) is copied from there instead of written again.
        """
        if isinstance(self.als, SavedFactors):
            raise MovieRecError(
                "this model was loaded with factors_only=True (its factor tables, not the ALSModel); "
                "load it with RecommenderModel.load(spark, path) to save it again"
            )
        path = Path(path)
        tables = tables if tables is not None else io.SavedTables()
        path.mkdir(parents=True, exist_ok=False)
        tables.write(self.user_bias, path / "user_bias")
        tables.write(self.item_bias, path / "item_bias")
        if self.day_bias is not None:
            tables.write(self.day_bias, path / "day_bias")
        if self.als is not None:
            self.als.save(str(path / "als"))
        # Written last: a folder with metadata.json is a complete model.
        (path / "metadata.json").write_text(json.dumps(self.metadata(), indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path, *, factors_only: bool = False) -> "RecommenderModel":
        """Load a model saved by :meth:`save`; anything else is a MovieRecError.

        ``factors_only=True`` reads the ALS factor tables as
        :class:`SavedFactors` instead of loading the ``ALSModel``: no Spark
        job runs (see the module docstring), and everything but :meth:`save`
        works as on the whole model.
        """
        path = Path(path)
        meta = read_metadata(path)
        als: ALSModel | SavedFactors | None = None
        if meta.get("has_factors"):
            als = SavedFactors.read(spark, path / "als") if factors_only else ALSModel.load(str(path / "als"))
        # Known schemas: without them Spark runs one job per table to read a file footer.
        read = spark.read
        return cls(
            global_mean=float(meta["global_mean"]),
            user_bias=read.schema(schemas.USER_BIASES).parquet(str(path / "user_bias")),
            item_bias=read.schema(schemas.ITEM_BIASES).parquet(str(path / "item_bias")),
            als=als,
            scale=RatingScale(**meta["scale"]),
            kind=meta["kind"],
            params=meta.get("params", {}),
            day_bias=read.schema(schemas.DAY_BIASES).parquet(str(path / "day_bias")) if meta.get("has_day_bias") else None,
            # Models saved before the key existed compute it on first use.
            known_max_user_id=meta.get("max_user_id"),
        )
