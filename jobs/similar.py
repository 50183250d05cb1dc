"""Movies most like a given movie, by cosine similarity of the model's item factors.

    ./spark-submit.sh jobs/similar.py --movie "The Matrix" [--model DIR] [--top-n N] [--output DIR]

``--movie`` is a MovieLens id or a title (matched like the custom ratings
file's: case, accents, punctuation, a missing year, "Matrix, The" or "The
Matrix"; an ambiguous or unknown title stops with close matches). Only
movies with at least ``--min-ratings`` ratings are listed. Prints the table;
with ``--output DIR`` also writes ``similar/`` (Parquet: movie_id, rank,
similar_movie_id, title, year, genres, num_ratings, similarity) and
``similar.csv``.

A local model folder with its movie table is served without Spark (no JVM,
no session: ``movierec_spark.serving.local``); one without runs on Spark.
"""

from __future__ import annotations

import logging
import sys

from movierec_spark import MovieRecError, cli
from movierec_spark.config import Config

log = logging.getLogger("jobs.similar")

PROG = "similar"


def build_parser():
    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_flag(parser, "--movie", "similar.movie", metavar="TITLE_OR_ID", help="the movie to start from")
    cli.add_flag(parser, "--model", "recommend.model", metavar="DIR",
                 help="model folder train_als.py wrote (its OUTPUT/model)")
    cli.add_flag(parser, "--top-n", "recommend.similar_n", type=cli.whole_number, help="similar movies to list")
    cli.add_flag(parser, "--min-ratings", "recommend.min_ratings", type=cli.whole_number,
                 help="fewest ratings a listed movie must have")
    cli.add_flag(parser, "--output", "similar.output", metavar="DIR", help="also write the table here")
    cli.add_data_flags(parser)
    return parser


def validate(cfg: Config) -> None:
    """What the settings cannot know: the model exists, a movie is named, the output can be written."""
    from movierec_spark.serving.local import check_model_dir

    check_model_dir(cfg.get("recommend", {}).get("model"))
    if not str(cfg.get("similar", {}).get("movie") or "").strip():
        raise MovieRecError("no movie: pass --movie TITLE_OR_ID")
    from movierec_spark import io
    io.check_job_paths(cfg.get("data"), cfg.get("similar", {}).get("output"))


def run_local(cfg: Config) -> int | None:
    """The run without Spark when the model folder holds its movie table; else None."""
    from movierec_spark.serving.local import LocalRecommender, serves_locally
    from movierec_spark.settings import RecommendSettings

    model_dir = cfg["recommend"].get("model")
    if not serves_locally(model_dir, users=0):
        return None
    recommender = LocalRecommender.load(model_dir, RecommendSettings.from_config(cfg["recommend"]))
    movie, frame = recommender.similar(cfg["similar"]["movie"])
    return publish(cfg, movie, frame)


def run(spark, cfg: Config) -> int:
    from movierec_spark.serving.personal import CustomRecommender, RecommendSettings, check_model_dir

    settings = RecommendSettings.from_config(cfg["recommend"])
    recommender = CustomRecommender.load(
        spark, check_model_dir(cfg["recommend"].get("model")), settings, data_cfg=cfg.get("data")
    )
    movie, frame = recommender.similar(cfg["similar"]["movie"], recommender.collect_movie_table())
    return publish(cfg, movie, frame)


def publish(cfg: Config, movie, frame) -> int:
    """Print the table of movies like ``movie`` and, with ``--output``, write it."""
    from movierec_spark import io
    from movierec_spark.serving.tables import SIMILAR_ARROW, for_csv, format_similar, to_arrow

    if frame.empty:
        raise MovieRecError(
            f"{movie.label} (id {movie.movie_id}) has no item factors in this model (no training ratings), "
            "or no other movie has --min-ratings ratings; try another movie or a lower --min-ratings"
        )
    output = cfg.get("similar", {}).get("output")
    if output:
        output = io.check_output_dir(output)
        with io.staged_table(output, "similar", to_arrow(frame, SIMILAR_ARROW), for_csv(frame)):
            pass  # the table is all there is to publish
    cli.print_result(format_similar(frame, f"{movie.label} (id {movie.movie_id})"), output)
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate, run_local)


if __name__ == "__main__":
    sys.exit(main())
