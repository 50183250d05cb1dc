"""Column expressions on ALS factor vectors (``array<float>``), and the item factors of a model.

Dot products and norms are built from Spark's higher-order functions
(``zip_with``, ``aggregate``, ``transform``), so they run in the JVM with no
Python UDF. Output of :func:`item_factors`::

    movie_id int, features array<float>
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.columns import FEATURES

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def require_factors(model) -> None:
    """A MovieRecError unless ``model`` has ALS factors."""
    # A RecommenderModel, a SavedModel (no Spark) or anything with ``als``.
    has = getattr(model, "has_factors", None)
    if not (has if has is not None else getattr(model, "als", None) is not None):
        raise MovieRecError(
            "this model has no ALS item factors (it is a bias baseline); "
            "train one with ./spark-submit.sh jobs/train_als.py"
        )


def item_factors(model) -> DataFrame:
    """The model's ALS item factors keyed by ``movie_id``; a model without them is an error."""
    from pyspark.sql import functions as F

    require_factors(model)
    return model.als.itemFactors.select(
        F.col("id").cast("int").alias(C.MOVIE_ID), F.col(FEATURES)
    )


def dot(left: str | Column, right: str | Column) -> Column:
    """``sum(left[k] * right[k])`` as a double; null when either side is null."""
    from pyspark.sql import functions as F

    left = F.col(left) if isinstance(left, str) else left
    right = F.col(right) if isinstance(right, str) else right
    products = F.zip_with(left, right, lambda x, y: x.cast("double") * y.cast("double"))
    return F.aggregate(products, F.lit(0.0).cast("double"), lambda acc, x: acc + x)


def norm(vector: str | Column) -> Column:
    """Euclidean length of ``vector``."""
    from pyspark.sql import functions as F

    return F.sqrt(dot(vector, vector))


def unit(vector: str | Column) -> Column:
    """``vector / |vector|`` as ``array<double>``; null for a zero vector."""
    from pyspark.sql import functions as F

    vector = F.col(vector) if isinstance(vector, str) else vector
    length = norm(vector)
    return F.when(length > 0, F.transform(vector, lambda x: x.cast("double") / length))
