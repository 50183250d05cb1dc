"""What a saved model folder says about itself, read without Spark: its ``metadata.json``.

:meth:`movierec_spark.models.recommender.RecommenderModel.save` writes::

    {"format_version": 1, "kind": "explicit" | "implicit", "global_mean": 3.5,
     "scale": {"low": 0.5, "high": 5.0, "step": 0.5}, "has_factors": true,
     "has_day_bias": false, "params": {...}, "max_user_id": 610}

:func:`read_metadata` checks and returns it (``RecommenderModel.load``
reads it through here too); :class:`SavedModel` is the part of a model the
serving path needs once the per-movie numbers come from the saved movie
table (:mod:`movierec_spark.serving.movie_table`): the global mean, the
scale, the kind and parameters (the fold-in's objective) and the largest
user id. Importing this module imports no pyspark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from movierec_spark import MovieRecError
from movierec_spark.data.releases import RatingScale

FORMAT_VERSION = 1
KIND_EXPLICIT = "explicit"  # biases + ALS on residuals, predicts ratings
KIND_IMPLICIT = "implicit"  # ALS with implicitPrefs, predicts preference scores


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked ``metadata.json`` of the model saved in ``path``; anything else is a MovieRecError."""
    from movierec_spark import io

    path = Path(path)
    meta_path = path / "metadata.json"
    if not meta_path.is_file():
        raise MovieRecError(
            f"{path} is not a movierec model (no metadata.json); "
            "train one with ./spark-submit.sh jobs/train_als.py --output DIR and pass DIR/model"
        )
    meta = io.read_json(meta_path)
    try:
        version = meta["format_version"]
    except (KeyError, TypeError):
        raise MovieRecError(f"{meta_path} is damaged (no format_version); retrain the model") from None
    if version != FORMAT_VERSION:
        raise MovieRecError(f"{path} was saved in model format {version}; this version reads {FORMAT_VERSION}")
    return meta


@dataclass(frozen=True)
class SavedModel:
    """A saved model's scalars: what fold-in and ranking need besides the per-movie table."""

    global_mean: float
    scale: RatingScale
    kind: str = KIND_EXPLICIT
    params: dict[str, Any] = field(default_factory=dict)
    has_factors: bool = False
    known_max_user_id: int | None = None

    @classmethod
    def read(cls, path: str | Path) -> "SavedModel":
        meta = read_metadata(path)
        return cls(
            global_mean=float(meta["global_mean"]),
            scale=RatingScale(**meta["scale"]),
            kind=meta["kind"],
            params=meta.get("params", {}),
            has_factors=bool(meta.get("has_factors")),
            known_max_user_id=meta.get("max_user_id"),
        )

    @property
    def clips(self) -> bool:
        return self.kind == KIND_EXPLICIT

    def max_user_id(self) -> int | None:
        return self.known_max_user_id
