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
                          because_you_liked, because_movie_id, similarity
    top_n.csv             the same, genres as Action|Drama
    custom_ratings.csv    each input line and the movie it was matched to
    report.json           model, file, settings, users, wall time per stage

and prints the tables.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from movierec_spark import MovieRecError, cli
from movierec_spark.config import Config

log = logging.getLogger("jobs.recommend")

PROG = "recommend"


def build_parser():
    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_flag(parser, "--model", "recommend.model", metavar="DIR",
                 help="model folder train_als.py wrote (its OUTPUT/model)")
    cli.add_flag(parser, "--custom-ratings", "recommend.custom_ratings_file", metavar="FILE",
                 help="CSV with columns user,movie,rating; movie is an id or a title")
    cli.add_flag(parser, "--output", "recommend.output", metavar="DIR", help="output folder")
    cli.add_flag(parser, "--top-n", "recommend.top_n", type=cli.whole_number, help="movies per user")
    cli.add_flag(parser, "--min-ratings", "recommend.min_ratings", type=cli.whole_number,
                 help="fewest ratings a recommended movie must have")
    cli.add_flag(parser, "--liked-rating", "recommend.liked_rating", type=cli.number,
                 help="lowest rating that counts as liked ('because you liked', taste match)")
    cli.add_flag(parser, "--content-weight", "recommend.content_weight", type=cli.number,
                 help="ranking score = predicted rating + this * genre/decade match; 0: predicted rating only")
    cli.add_data_flags(parser)
    return parser


def validate(cfg: Config) -> None:
    """What the settings cannot know: the model and the ratings file exist, the output can be written."""
    from movierec_spark.serving.personal import check_model_dir

    section = cfg.get("recommend", {})
    check_model_dir(section.get("model"))
    ratings = section.get("custom_ratings_file")
    if not ratings:
        raise MovieRecError("no custom ratings: pass --custom-ratings FILE (columns user,movie,rating)")
    if not Path(ratings).expanduser().is_file():
        raise MovieRecError(f"custom ratings file {ratings} does not exist")
    if not section.get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    from movierec_spark import io
    io.check_job_paths(cfg.get("data"), section["output"])


def run(spark, cfg: Config) -> int:
    from movierec_spark import io
    from movierec_spark.serving import custom
    from movierec_spark.serving.personal import CustomRecommender, RecommendSettings, check_model_dir
    from movierec_spark.progress import StageTimer
    from movierec_spark.serving.tables import TOP_N_SCHEMA, for_csv, format_top_n, to_arrow

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
        users = recommender.fold_in(rated, movies)
        log.info("folded in %d users", len(ids))
    with timer.stage("top-n"):
        frame = recommender.top_n(rated, users, movies)
        table = to_arrow(frame, TOP_N_SCHEMA)
    with timer.stage("write"), io.staged_table(output, "top_n", table, for_csv(frame)) as staging:
        io.write_csv(staging / "custom_ratings.csv", custom.resolved_table(ratings, first_id))
        io.write_json(
            staging / "report.json",
            {
                "model": str(model_dir),
                "custom_ratings_file": str(section["custom_ratings_file"]),
                "method": "foldin",
                "users": ids,
                "ratings": len(ratings),
                "rows": len(frame),
                "settings": settings.model_dump(exclude={"model", "output", "custom_ratings_file", "all_users"}),
                "stages": dict(timer.seconds),
                "wall_seconds": time.perf_counter() - started,
            },
        )
    cli.print_result(format_top_n(frame), output)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
