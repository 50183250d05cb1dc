"""The top-N blend: ranking models' scores, each rescaled per user, added with fixed weights.

``[topn_blend]`` combines implicit ALS, EASE, RP3beta or popularity; the
result is a ranking, not a rating. Input: pairs ``user_id, movie_id``;
``predict`` adds ``prediction``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from movierec_spark import MovieRecError, io
from movierec_spark import columns as C
from movierec_spark.models.ease import EASE, EaseModel
from movierec_spark.models.item_weights import ItemWeightsModel
from movierec_spark.models.recommender import RecommenderModel
from movierec_spark.models.rp3beta import Rp3BetaModel
from movierec_spark.settings import parse_section

FORMAT_VERSION = 1
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

    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True

    def describe(self) -> dict[str, Any]:
        return {
            "model": TOPN_BLEND,
            "weights": self.weights,
            "normalise": self.normalise,
            "members": {name: member.describe() for name, member in self.models.items()},
        }

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
