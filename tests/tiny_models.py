"""A hand-built biased-ALS model and catalog whose every number a test can recompute."""

from __future__ import annotations

from types import SimpleNamespace

from movierec_spark.model import KIND_EXPLICIT, RecommenderModel
from movierec_spark.releases import HALF_STARS

GLOBAL_MEAN = 3.0
ITEM_FACTORS = {
    10: [1.0, 0.0],
    20: [0.0, 1.0],
    30: [1.0, 1.0],
    40: [0.5, -1.0],
    70: [0.2, 0.2],
    80: [0.2, 0.2],  # the same movie as 70 to the model: ties
}
ITEM_BIAS = {10: 0.5, 20: -0.5, 30: 0.0, 40: 1.0, 50: 0.25, 70: 0.3, 80: 0.3}
# movie_id -> (title, year, genres, num_ratings)
CATALOG = {
    10: ("Matrix, The", 1999, ["Action", "Sci-Fi"], 100),
    20: ("Heat", 1995, ["Crime"], 50),
    30: ("Obscure Thing", 2001, ["Drama"], 5),
    40: ("Alien", 1979, ["Horror", "Sci-Fi"], 30),
    50: ("No Factors", None, [], 40),
    60: ("Nobody Rated", 2010, ["Comedy"], 0),
    70: ("Twin A", 1990, ["Comedy"], 25),
    80: ("Twin B", 1990, ["Comedy"], 25),
}


def tiny_model(spark) -> RecommenderModel:
    """Biases and item factors above; ALS is faked by the two frames fold-in reads."""
    item_factors = spark.createDataFrame(
        [(i, [float(x) for x in f]) for i, f in ITEM_FACTORS.items()], "id int, features array<float>"
    )
    user_factors = spark.createDataFrame([(1, [0.1, 0.2])], "id int, features array<float>")
    return RecommenderModel(
        global_mean=GLOBAL_MEAN,
        user_bias=spark.createDataFrame([(1, 0.1)], "user_id int, user_bias double"),
        item_bias=spark.createDataFrame(list(ITEM_BIAS.items()), "movie_id int, item_bias double"),
        als=SimpleNamespace(itemFactors=item_factors, userFactors=user_factors),
        scale=HALF_STARS,
        kind=KIND_EXPLICIT,
        params={"model": "als", "reg_param": 0.1, "user_damping": 1.0, "nonnegative": False},
    )


def tiny_catalog(spark):
    return spark.createDataFrame(
        [(i, t, y, g, n) for i, (t, y, g, n) in CATALOG.items()],
        "movie_id int, title string, year int, genres array<string>, num_ratings int",
    )
