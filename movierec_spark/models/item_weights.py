"""Item-to-item weights models: a user's score for a movie sums the weights from the movies they rated.

EASE (:mod:`movierec_spark.models.ease`) and RP3beta
(:mod:`movierec_spark.models.rp3beta`) learn the weights differently and
score them the same way, here. Weights table: ``_source_movie_id,
movie_id, weight``; scores are rankings, not ratings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import io
from movierec_spark import columns as C

FORMAT_VERSION = 1
WEIGHT = "weight"
SOURCE = "_source_movie_id"
_SCORE = "_item_score"


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
    predicts_ratings: ClassVar[bool] = False
    ranks: ClassVar[bool] = True

    def describe(self) -> dict[str, Any]:
        return {"model": self.NAME, **asdict(self.params)}

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
