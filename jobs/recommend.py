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

import logging
import sys
import time

from movierec_spark import cli
from movierec_spark.config import Config
from movierec_spark.serving import command

log = logging.getLogger("jobs.recommend")

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
    from movierec_spark import io
    from movierec_spark.serving import custom
    from movierec_spark.progress import StageTimer
    from movierec_spark.serving import local
    from movierec_spark.serving.foldin import fold_in
    from movierec_spark.serving.personal import CustomRecommender, RecommendSettings, check_model_dir
    from movierec_spark.serving.tables import format_top_n

    started = time.perf_counter()
    section = cfg["recommend"]
    settings = RecommendSettings.from_config(section)
    output = io.check_output_dir(section["output"])
    model_dir = check_model_dir(section.get("model"))
    timer = StageTimer()
    with timer.stage("load model"):
        recommender = CustomRecommender.load(spark, model_dir, settings, data_cfg=cfg.get("data"))
    with timer.stage("collect movies"):
        # One Spark action: the catalog with the model's item bias, factors and
        # taste features. The title index, fold-in and top-N below use it.
        movies = recommender.collect_movie_table()
    with timer.stage("read custom ratings"):
        ratings = recommender.read_ratings(section["custom_ratings_file"])
        for line in custom.describe(ratings):
            log.info("%s", line)
    with timer.stage("fold in"):
        first_id = recommender.next_user_id()
        ids = custom.user_ids(ratings, first_id)
        rated = recommender.ratings_frame(ratings, first_id)
        if len(ids) > local.LOCAL_MAX_USERS:
            # Thousands of people: one applyInPandas group each, on the executors.
            custom_df = recommender.custom_frame(ratings, first_id)
            users = fold_in(recommender.model, custom_df).users.toPandas()
        else:
            users = recommender.fold_in(rated, movies)
        log.info("folded in %d users", len(ids))
    with timer.stage("top-n"):
        frame = recommender.top_n(rated, users, movies)
    with timer.stage("write"):
        command.publish_top_n(output, frame, ratings, first_id, {
            "model": str(model_dir),
            "custom_ratings_file": str(section["custom_ratings_file"]),
            "method": "foldin",
            "served": "spark",
            "users": ids,
            "ratings": len(ratings),
            "rows": len(frame),
            "settings": command.report_settings(settings),
            "stages": dict(timer.seconds),
            "wall_seconds": time.perf_counter() - started,
        })
    cli.print_result(format_top_n(frame), output)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate, run_local)


if __name__ == "__main__":
    sys.exit(main())
