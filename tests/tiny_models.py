"""A hand-built biased-ALS model and catalog whose every number a test can recompute."""

from __future__ import annotations

from types import SimpleNamespace

from movierec_spark.models.recommender import KIND_EXPLICIT, RecommenderModel
from movierec_spark.data.releases import HALF_STARS

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


# --- a small model really fitted by fit.fit_biased_als, saved with its catalog ---

# Two tastes: people who like the first group dislike the second and the
# other way round; "Heat" exists twice so that titles need a year.
TRAINED_MOVIES = [
    (1, "Matrix, The", 1999, ["Action", "Sci-Fi"]),
    (2, "Alien", 1979, ["Horror", "Sci-Fi"]),
    (3, "Heat", 1995, ["Action", "Crime"]),
    (4, "Terminator, The", 1984, ["Action", "Sci-Fi"]),
    (5, "Die Hard", 1988, ["Action"]),
    (6, "Aliens", 1986, ["Action", "Horror", "Sci-Fi"]),
    (7, "Predator", 1987, ["Action", "Sci-Fi"]),
    (8, "Toy Story", 1995, ["Animation", "Children", "Comedy"]),
    (9, "Notting Hill", 1999, ["Comedy", "Romance"]),
    (10, "Amelie (Fabuleux destin d'Amélie Poulain, Le)", 2001, ["Comedy", "Romance"]),
    (11, "Finding Nemo", 2003, ["Animation", "Children", "Comedy"]),
    (12, "Love Actually", 2003, ["Comedy", "Drama", "Romance"]),
    (13, "Up", 2009, ["Animation", "Children"]),
    (14, "Heat", 1972, ["Drama"]),
    (15, "Rarely Seen", 2000, ["Drama"]),
]
ACTION_IDS = {1, 2, 3, 4, 5, 6, 7}


def trained_ratings(spark, users: int = 40, seed: int = 7):
    """``users`` people, half of each taste, rating most movies 1-5 in half stars."""
    import random

    rng = random.Random(seed)
    rows = []
    for user in range(1, users + 1):
        likes_action = user % 2 == 0
        for movie, *_ in TRAINED_MOVIES:
            if movie == 15 and user > 3:  # a movie almost nobody saw
                continue
            if movie != 15 and rng.random() < 0.25:
                continue
            liked = (movie in ACTION_IDS) == likes_action
            base = 4.3 if liked else 1.8
            rating = min(5.0, max(0.5, round((base + rng.uniform(-0.7, 0.7)) * 2) / 2))
            rows.append((user, movie, rating))
    return spark.createDataFrame(rows, "user_id int, movie_id int, rating float")


def save_trained_model(spark, path):
    """Fit biased ALS on :func:`trained_ratings`, save it, its catalog and movie table under ``path``."""
    from movierec_spark.data.catalog import build_catalog
    from movierec_spark.models.fit import AlsParams, BiasParams, fit_biased_als
    from movierec_spark.serving.personal import save_catalog

    ratings = trained_ratings(spark).cache()
    movies = spark.createDataFrame(
        TRAINED_MOVIES, "movie_id int, title string, year int, genres array<string>"
    )
    model = fit_biased_als(
        ratings, HALF_STARS, AlsParams(rank=3, max_iter=8, reg_param=0.05, num_user_blocks=2, num_item_blocks=2),
        BiasParams(user_damping=2.0, item_damping=2.0),
    )
    model.save(path)
    save_catalog(model, build_catalog(movies, ratings), path)
    ratings.unpersist()
    return path


_SAVED: dict[int, object] = {}


def saved_trained_model(spark, tmp_path_factory):
    """The folder of :func:`save_trained_model`, fitted once per test session."""
    key = id(spark)
    if key not in _SAVED:
        _SAVED[key] = save_trained_model(spark, tmp_path_factory.mktemp("trained") / "model")
    return _SAVED[key]
