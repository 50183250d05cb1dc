"""What every fitted model declares and can do: the one model interface.

Every model class here (:class:`~movierec_spark.models.recommender.RecommenderModel`,
:class:`~movierec_spark.models.knn.KNNModel`,
:class:`~movierec_spark.models.blend.BlendModel`,
:class:`~movierec_spark.models.item_weights.ItemWeightsModel` and its EASE and
RP3beta subclasses, :class:`~movierec_spark.models.topn_blend.TopNBlend`)
implements :class:`Recommender`; the evaluation and the jobs ask a model
what it can do instead of keeping lists of model names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pyspark.sql import DataFrame, SparkSession

from movierec_spark import io


@runtime_checkable
class Recommender(Protocol):
    """A fitted model.

    ``predicts_ratings``: its scores are ratings on the release's scale, so
    RMSE, MAE and R2 apply. ``ranks``: its scores order a user's unseen
    movies well enough to report top-N metrics for (a global mean ties
    every movie; a neighbourhood model's scores for every unseen movie
    cost a join per rating and candidate).
    """

    predicts_ratings: bool
    ranks: bool

    def predict(self, pairs: DataFrame) -> DataFrame:
        """``pairs`` (``user_id, movie_id``, other columns kept) plus ``prediction``."""
        ...

    def describe(self) -> dict[str, Any]:
        """The parameters to report (``metrics.json``): JSON-ready values."""
        ...

    def save(self, path: str | Path, tables: io.SavedTables | None = None) -> None:
        """Write the model under ``path``, a folder that must not exist yet."""
        ...

    @classmethod
    def load(cls, spark: SparkSession, path: str | Path) -> "Recommender":
        """The model :meth:`save` wrote; anything else is a MovieRecError."""
        ...
