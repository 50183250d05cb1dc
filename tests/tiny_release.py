"""A tiny release with a learnable pattern, for the job tests (train_als, tune_als)."""

from __future__ import annotations

import types

from movierec_spark.data.releases import WHOLE_STARS


def tiny_release(spark, catalog_movies: int = 12):
    """30 users x 12 rated movies; user taste and movie quality make a learnable signal.

    ``catalog_movies`` above 12 adds movies nobody rated to the catalog.
    """
    rows = []
    for user in range(1, 31):
        for movie in range(1, 13):
            if (user * 7 + movie * 3) % 4 == 0:
                continue
            rating = 1 + (user % 3 + movie % 4 + (user * movie) % 2) % 5
            rows.append((user, movie, float(rating), 1000 + user * 100 + movie))
    ratings = spark.createDataFrame(rows, "user_id int, movie_id int, rating float, timestamp long")
    movies = spark.createDataFrame(
        [(m, f"Movie {m}", 2000 + m, ["Drama"]) for m in range(1, catalog_movies + 1)],
        "movie_id int, title string, year int, genres array<string>",
    )
    return types.SimpleNamespace(name="ml-100k", ratings=ratings, movies=movies, scale=WHOLE_STARS)
