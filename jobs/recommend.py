"""Top-N movies for people's own ratings, from a saved model, without retraining.

    ./spark-submit.sh jobs/recommend.py [--model DIR] [--custom-ratings FILE] [--output DIR]

Reads the model ``jobs/train_als.py`` saved (``OUTPUT/model``, with the
movies and rating counts it saves beside it in ``OUTPUT/model/catalog``; a
model without a catalog takes it from the release the data flags name),
checks and matches the custom ratings file (columns user, movie, rating;
movie is an id or a title), folds every custom user into the model (their
bias and factors solved against the fixed movies, see
``movierec_spark.serving.foldin``), and writes to ``--output DIR``:

    top_n/                Parquet: user, user_id, rank, movie_id, title, year,
                          genres, prediction, num_ratings, match,
                          because_you_liked, because_movie_id, similarity, basis
    top_n.csv             the same, genres as Action|Drama
    custom_ratings.csv    each input line and the movie it was matched to
    report.json           model, file, settings, users, wall time per stage

and prints the tables. A local model folder with its movie table and a file
of at most ``LOCAL_MAX_USERS`` people is served without Spark (no session:
``movierec_spark.serving.local``, the same path as the ``movierec-recommend``
command); anything else runs on Spark, where more people than that fold in
on the executors (``foldin.fold_in``).
"""

from __future__ import annotations

import sys
import time

from movierec_spark import cli
from movierec_spark.config import Config
from movierec_spark.serving import command

PROG = "recommend"


def build_parser():
    return command.recommend_parser(PROG, __doc__.split("\n\n")[0])


validate = command.validate


def run_local(cfg: Config) -> int | None:
    """The run without Spark, when the model folder and the number of people allow it; else None."""
    from movierec_spark.serving.local import serves_locally

    section = cfg["recommend"]
    if not serves_locally(section["model"], command.count_people(section["custom_ratings_file"])):
        return None
    return command.run(cfg)


def run(spark, cfg: Config) -> int:
    """The run on Spark: the model's tables loaded in Spark, then the same serving as without it."""
    from movierec_spark.progress import StageTimer
    from movierec_spark.serving import local
    from movierec_spark.serving.foldin import fold_in
    from movierec_spark.serving.personal import CustomRecommender, RecommendSettings, check_model_dir

    started, timer = time.perf_counter(), StageTimer()
    settings = RecommendSettings.from_config(cfg["recommend"])
    with timer.stage("load model"):
        recommender = CustomRecommender.load(
            spark, check_model_dir(cfg["recommend"].get("model")), settings, data_cfg=cfg.get("data"))
    with timer.stage("collect movies"):
        # One Spark action at most (none when the folder holds its movie table):
        # the catalog with the model's item bias, factors and taste features.
        served = local.LocalRecommender(recommender.model, recommender.collect_movie_table(), settings)

    def on_executors(ratings, first_user_id):
        # Thousands of people: one applyInPandas group each, on the executors.
        return fold_in(recommender.model, recommender.custom_frame(ratings, first_user_id)).users.toPandas()

    many = command.count_people(cfg["recommend"]["custom_ratings_file"]) > local.LOCAL_MAX_USERS
    return command.serve_file(cfg, served, timer, started, "spark", on_executors if many else None)


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate, run_local)


if __name__ == "__main__":
    sys.exit(main())
