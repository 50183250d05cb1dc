"""EASE, a linear item-to-item top-N model, and the top-N blend it joins.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data")
sees the ratings as interactions (``X[u, i] = 1`` when user ``u`` rated
movie ``i``, whatever the stars) and learns the item-to-item weights ``B``
that best rebuild ``X`` from itself, with no movie allowed to explain
itself::

    B = argmin ||X - X B||^2 + reg_param ||B||^2   with diag(B) = 0
      = -P / diag(P)  (column-wise),  P = (X'X + reg_param I)^-1

A user's score for movie ``j`` is the sum of ``B[i, j]`` over the movies
``i`` they rated. Unlike a neighbourhood model it accounts for movies that
are rated together for the same reason, which makes it one of the strongest
top-N models on MovieLens-sized catalogues.

Two options from Steck 2020 ("Autoencoders that don't overfit towards the
Identity") regularise the way dropping each input with probability
``dropout`` would: the penalty on movie ``i`` grows with its rating count,
``Λ = reg_param I + dropout / (1 - dropout) diagMat(X'X)``, so the most-rated
movies explain less of the others. ``diagonal`` picks the solution:
``zero`` is the constrained one above with ``Λ`` for ``reg_param I``
(EDLAE, full rank); ``free`` is DLAE's ``B = (X'X + Λ)^-1 X'X = I - P Λ``
(``P = (X'X + Λ)^-1``), whose off-diagonal weights ``-P[i, j] Λ[j]`` are
kept and whose diagonal is dropped (a movie's weight on itself only ever
scores a movie the user has seen already). ``dropout = 0`` with ``zero``
is plain EASE.

Where the work happens: Spark sums the Gram matrix ``X'X`` over users
(a dense buffer per partition, summed in a tree); the inverse is a
dense ``M x M`` solve on the driver, so the model covers the ``max_items``
most-rated movies (5000 by default: a 200 MB matrix, seconds to invert) and
gives the others no score. The weights, pruned to each movie's
``neighbours`` largest, go back to Spark as a table, and scoring is a join
of a user's ratings with it.

:class:`TopNBlend` adds the scores of ranking models with fixed weights,
each member's scores optionally rescaled per user first
(:func:`normalise_per_user`): the top-N mode's blend of implicit ALS,
EASE and RP3beta (``[topn_blend]``). :class:`ItemWeightsModel` scores any
item-to-item weights table (EASE's, RP3beta's) the same way.

Input: ratings ``user_id, movie_id`` (other columns ignored). Scores:
``predict(pairs)`` returns ``pairs`` plus ``prediction`` (the score; not a
rating).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from movierec_spark import MovieRecError, io
from movierec_spark import columns as C
from movierec_spark.settings import EaseSettings, parse_section

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
EASE = "ease"
TOPN_BLEND = "topn_blend"

# How TopNBlend rescales each member's scores per user before adding them.
NORMALISE_NONE = "none"
NORMALISE_MAX = "max"
NORMALISE_ZSCORE = "zscore"
NORMALISE_RRF = "rrf"
NORMALISATIONS = (NORMALISE_NONE, NORMALISE_MAX, NORMALISE_ZSCORE, NORMALISE_RRF)
# Reciprocal-rank fusion's constant (Cormack, Clarke, Buettcher 2009): a
# row's score is 1 / (RRF_K + its rank), so the top ranks differ little.
RRF_K = 60


def check_normalisation(how: Any) -> str:
    """``how`` if it is one of :data:`NORMALISATIONS` ([topn_blend] normalise), else a MovieRecError."""
    parse_section("topn_blend", {"normalise": how})
    return how

WEIGHT = "weight"
SOURCE = "_source_movie_id"
_INDEX = "_item_index"
_SCORE = "_item_score"

# How the weights' diagonal is handled (see the module docstring).
DIAGONAL_ZERO = "zero"  # EASE: constrained to 0 while solving
DIAGONAL_FREE = "free"  # DLAE: solved freely, then dropped
DIAGONALS = (DIAGONAL_ZERO, DIAGONAL_FREE)


_EASE = EaseSettings()


@dataclass(frozen=True)
class EaseParams:
    """``[ease]``: the L2 penalty and dropout, the diagonal, how many movies, how many weights each keeps
    (defaults and ranges: conf/movierec.toml's, held by movierec_spark.settings)."""

    reg_param: float = _EASE.reg_param
    max_items: int = _EASE.max_items
    neighbours: int = _EASE.neighbours
    dropout: float = _EASE.dropout
    diagonal: str = _EASE.diagonal

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "EaseParams":
        keys = ("reg_param", "max_items", "neighbours", "dropout", "diagonal")
        known = {k: section[k] for k in keys if k in section}
        return cls(**known).validate()

    def validate(self) -> "EaseParams":
        parse_section("ease", asdict(self))
        return self


def item_index(ratings: DataFrame, max_items: int) -> list[int]:
    """The ``max_items`` most-rated movies, most rated first (ties: lower id first)."""
    counts = ratings.groupBy(C.MOVIE_ID).agg(F.count(F.lit(1)).alias("_n"))
    rows = counts.orderBy(F.col("_n").desc(), F.col(C.MOVIE_ID).asc()).limit(max_items).collect()
    return [row[C.MOVIE_ID] for row in rows]


def gram_matrix(ratings: DataFrame, movies: list[int]) -> np.ndarray:
    """``X'X`` over ``movies`` (in that order): co-rating counts, summed by Spark.

    Each partition adds its users' co-rated pairs into one dense buffer
    (float32, exact for counts below 2^24; 100 MB at 5000 movies), and the
    buffers are summed pairwise on the way to the driver. Partitions are
    coalesced to the number of cores, so there is one buffer per core.
    """
    spark = ratings.sparkSession
    size = len(movies)
    index = spark.createDataFrame(
        pd.DataFrame({C.MOVIE_ID: movies, _INDEX: range(size)}).astype({C.MOVIE_ID: "int32", _INDEX: "int32"})
    )
    per_user = (
        ratings.select(C.USER_ID, C.MOVIE_ID)
        .distinct()
        .join(F.broadcast(index), on=C.MOVIE_ID, how="inner")
        .groupBy(C.USER_ID)
        .agg(F.collect_list(_INDEX).alias(_INDEX))
        .select(_INDEX)
    )

    def partial_gram(rows):
        gram = np.zeros((size, size), dtype=np.float32)
        for row in rows:
            rated = np.asarray(row[0], dtype=np.int64)
            gram[np.ix_(rated, rated)] += 1.0
        yield gram

    cores = spark.sparkContext.defaultParallelism
    return per_user.coalesce(cores).rdd.mapPartitions(partial_gram).treeReduce(np.add).astype(np.float64)


def ease_weights(gram: np.ndarray, reg_param: float, dropout: float = 0.0, diagonal: str = DIAGONAL_ZERO) -> np.ndarray:
    """The weights ``B`` from the Gram matrix ``G``, with ``diag(B) = 0``.

    ``P = (G + Λ)^-1``, ``Λ = reg_param I + dropout / (1 - dropout) diagMat(G)``;
    ``zero``: EASE's ``B = -P / diag(P)`` by column; ``free``: DLAE's
    ``B = I - P Λ``, diagonal dropped.
    """
    penalty = reg_param + dropout / (1.0 - dropout) * np.diag(gram).astype(np.float64)
    penalised = np.array(gram, dtype=np.float64, copy=True)
    penalised[np.diag_indices_from(penalised)] += penalty
    precision = np.linalg.inv(penalised)
    if diagonal == DIAGONAL_FREE:
        weights = -precision * penalty[None, :]
    else:
        weights = -precision / np.diag(precision)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def prune(weights: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``neighbours`` largest weights by size, as ``(row, column, weight)`` arrays.

    Zero weights (the diagonal) are never kept.
    """
    keep = min(neighbours, weights.shape[1])
    size = np.abs(weights)
    if keep < weights.shape[1]:
        columns = np.argpartition(-size, keep - 1, axis=1)[:, :keep]
    else:
        columns = np.tile(np.arange(weights.shape[1]), (weights.shape[0], 1))
    rows = np.repeat(np.arange(weights.shape[0]), columns.shape[1])
    columns = columns.ravel()
    values = weights[rows, columns]
    nonzero = values != 0.0
    return rows[nonzero], columns[nonzero], values[nonzero]


@dataclass
class ItemWeightsModel:
    """Item-to-item weights (``_source_movie_id, movie_id, weight``) and the ratings they score.

    A user's score for a movie is the sum of the weights from the movies
    they rated to it: EASE (:class:`EaseModel`) and RP3beta
    (:class:`movierec_spark.models.rp3beta.Rp3BetaModel`) differ only in how the
    weights are learnt. Subclasses name the model (``NAME``, saved in
    ``metadata.json``) and its parameters' dataclass (``PARAMS``).
    """

    weights: DataFrame
    seen: DataFrame  # user_id, movie_id: the training interactions
    params: Any

    NAME: ClassVar[str] = ""
    PARAMS: ClassVar[type] = type(None)

    def _scores(self, pairs: DataFrame) -> DataFrame:
        """``user_id, movie_id, _item_score`` for the pairs of ``pairs`` a user's ratings reach.

        Each rating's weights are kept only where they meet a wanted pair
        before they are summed, so scoring a sample of pairs does not sum
        every movie of every sampled user. The wanted users' ratings are
        spread over the shuffle partitions first: each task's partial sum
        then holds its own users' pairs only (with the few partitions a
        small release is read into, one task's hash map held millions of
        pairs and ran the driver's heap short in local mode).
        """
        wanted = pairs.select(C.USER_ID, C.MOVIE_ID)
        partitions = int(pairs.sparkSession.conf.get("spark.sql.shuffle.partitions"))
        return (
            self.seen.join(wanted.select(C.USER_ID).distinct(), on=C.USER_ID, how="inner")
            .repartition(partitions, C.USER_ID)
            .select(C.USER_ID, F.col(C.MOVIE_ID).alias(SOURCE))
            .join(self.weights, on=SOURCE, how="inner")
            .join(wanted, on=[C.USER_ID, C.MOVIE_ID], how="left_semi")
            .groupBy(C.USER_ID, C.MOVIE_ID)
            .agg(F.sum(WEIGHT).alias(_SCORE))
        )

    def predict(self, pairs: DataFrame, score_col: str | None = None) -> DataFrame:
        """``pairs`` plus ``prediction``: the summed weights (0 for a movie or user they cannot reach)."""
        kept = [c for c in pairs.columns if c != C.PREDICTION]
        scored = pairs.select(*kept).join(self._scores(pairs), on=[C.USER_ID, C.MOVIE_ID], how="left")
        score = F.coalesce(F.col(_SCORE), F.lit(0.0)).cast("double")
        out = scored.withColumn(C.PREDICTION, score)
        if score_col is not None:
            out = out.withColumn(score_col, score)
        return out.drop(_SCORE)

    @property
    def metadata(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "model": self.NAME, "params": asdict(self.params)}

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the model under ``path`` (a folder that must not exist yet).

        ``tables``: the tables this output has saved already: copied, not rewritten.
        """
        path = Path(path)
        tables = tables if tables is not None else io.SavedTables()
        path.mkdir(parents=True, exist_ok=False)
        tables.write(self.weights, path / "weights")
        tables.write(self.seen, path / "seen")
        # Written last: a folder with metadata.json is a complete model.
        (path / "metadata.json").write_text(json.dumps(self.metadata, indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path):
        """Load a model saved by :meth:`save`; anything else is a MovieRecError."""
        meta = io.read_model_metadata(path, cls.NAME, FORMAT_VERSION)
        path = Path(path)
        return cls(
            weights=spark.read.parquet(str(path / "weights")),
            seen=spark.read.parquet(str(path / "seen")),
            params=cls.PARAMS(**meta["params"]).validate(),
        )


class EaseModel(ItemWeightsModel):
    """EASE weights and the ratings they score (:func:`fit_ease`); ``params``: :class:`EaseParams`."""

    NAME = EASE
    PARAMS = EaseParams


def fit_ease(ratings: DataFrame, params: EaseParams = EaseParams()) -> EaseModel:
    """Fit EASE on ``ratings`` (``user_id, movie_id``; every rating counts as 1)."""
    params.validate()
    movies = item_index(ratings, params.max_items)
    if not movies:
        raise MovieRecError("EASE needs at least one rating to learn from")
    gram = gram_matrix(ratings, movies)
    solved = ease_weights(gram, float(params.reg_param), float(params.dropout), params.diagonal)
    rows, columns, values = prune(solved, params.neighbours)
    ids = np.asarray(movies, dtype=np.int32)
    table = pd.DataFrame({SOURCE: ids[rows], C.MOVIE_ID: ids[columns], WEIGHT: values.astype(np.float64)})
    spark = ratings.sparkSession
    # Checkpointed (written to the checkpoint folder now): the table came from
    # the driver, and every later scan of it would ship it inside a task.
    weights = spark.createDataFrame(table, f"{SOURCE} int, {C.MOVIE_ID} int, {WEIGHT} double").checkpoint()
    log.info("EASE on the %d most-rated movies: %d weights kept", len(movies), len(table))
    return EaseModel(weights=weights, seen=ratings.select(C.USER_ID, C.MOVIE_ID), params=params)


def normalise_per_user(scored: DataFrame, columns: list[str], how: str) -> DataFrame:
    """``scored`` with each of ``columns`` rescaled over each user's rows.

    ``none``: as they are; ``max``: divided by the largest absolute score
    among the user's rows (the user's best row scores 1); ``zscore``: minus
    the mean of the user's rows, divided by their standard deviation. A
    user whose scores are all 0 (``max``) or all equal (``zscore``) gets 0.
    ``rrf`` (reciprocal-rank fusion): ``1 / (RRF_K + rank)``, the row's rank
    among the user's rows by score (1 = highest; ties: lower movie id
    first). Null scores count as 0. The statistics are over the rows
    ``scored`` holds, so pass every candidate of a user at once (as ranking
    does: :func:`movierec_spark.serving.recommend.top_n_unseen`); a lone pair always
    scores 1 or 0 (``rrf``: ``1 / (RRF_K + 1)``). ``max`` and ``zscore``
    share one window for all columns (one sort by user); ``rrf`` sorts each
    user's rows once per column.
    """
    if check_normalisation(how) == NORMALISE_NONE or not columns:
        return scored
    user = Window.partitionBy(C.USER_ID)
    rescaled = []
    for name in columns:
        score = F.coalesce(F.col(name), F.lit(0.0)).cast("double")
        if how == NORMALISE_RRF:
            ranked = user.orderBy(score.desc(), F.col(C.MOVIE_ID).asc())
            rescaled.append((F.lit(1.0) / (F.lit(float(RRF_K)) + F.row_number().over(ranked))).alias(name))
            continue
        if how == NORMALISE_MAX:
            spread = F.max(F.abs(score)).over(user)
            value = score / spread
        else:
            spread = F.stddev_pop(score).over(user)
            value = (score - F.avg(score).over(user)) / spread
        rescaled.append(F.when(spread > 0, value).otherwise(F.lit(0.0)).alias(name))
    others = [F.col(c) for c in scored.columns if c not in columns]
    return scored.select(*others, *rescaled).select(*scored.columns)


@dataclass
class TopNBlend:
    """Ranking models' scores added with fixed weights (a ranking, not a rating).

    ``normalise`` (one of :data:`NORMALISATIONS`) rescales each member's
    scores over each user's pairs first (:func:`normalise_per_user`), so a
    member whose raw scores run larger for some users does not outweigh the
    others there.
    """

    models: dict[str, Any]
    weights: dict[str, float]
    normalise: str = NORMALISE_NONE

    def __post_init__(self) -> None:
        check_normalisation(self.normalise)

    def predict(self, pairs: DataFrame, score_col: str | None = None) -> DataFrame:
        """``pairs`` plus ``prediction``: the weighted sum of the members' (rescaled) scores.

        With a ``normalise`` other than ``none``, a user's scores depend on
        the other pairs of that user in ``pairs``: score all of a user's
        candidates together.
        """
        kept = [c for c in pairs.columns if c != C.PREDICTION]
        scored = pairs.select(*kept)
        members = [f"_member_score_{i}" for i in range(len(self.models))]
        for column, model in zip(members, self.models.values()):
            scored = model.predict(scored, score_col=column).drop(C.PREDICTION)
        scored = normalise_per_user(scored, members, self.normalise)
        total = F.lit(0.0)
        for column, name in zip(members, self.models):
            total = total + F.lit(float(self.weights[name])) * F.coalesce(F.col(column), F.lit(0.0))
        out = scored.withColumn(C.PREDICTION, total.cast("double"))
        if score_col is not None:
            out = out.withColumn(score_col, F.col(C.PREDICTION))
        return out.drop(*members)

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the members and the weights under ``path`` (a folder that must not exist yet).

        ``tables``: the tables this output has saved already (members saved
        as models of their own): copied, not rewritten.
        """
        path = Path(path)
        tables = tables if tables is not None else io.SavedTables()
        path.mkdir(parents=True, exist_ok=False)
        members = {}
        for name, model in self.models.items():
            model.save(path / name, tables)
            members[name] = model.NAME if isinstance(model, ItemWeightsModel) else "recommender"
        meta = {
            "format_version": FORMAT_VERSION,
            "model": TOPN_BLEND,
            "weights": self.weights,
            "normalise": self.normalise,
            "members": members,
        }
        (path / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path) -> "TopNBlend":
        """Load a blend saved by :meth:`save`; anything else is a MovieRecError."""
        from movierec_spark.models.recommender import RecommenderModel
        from movierec_spark.models.rp3beta import Rp3BetaModel

        meta = io.read_model_metadata(path, TOPN_BLEND, FORMAT_VERSION)
        path = Path(path)
        loaders = {EASE: EaseModel.load, Rp3BetaModel.NAME: Rp3BetaModel.load, "recommender": RecommenderModel.load}
        try:
            models = {name: loaders[kind](spark, path / name) for name, kind in meta["members"].items()}
            weights = {name: float(meta["weights"][name]) for name in models}
        except (KeyError, TypeError, ValueError) as exc:
            raise MovieRecError(f"{path / 'metadata.json'} is damaged ({exc}); retrain the model") from None
        # Blends saved before per-user normalisation existed added raw scores.
        return cls(models, weights, meta.get("normalise", NORMALISE_NONE))
