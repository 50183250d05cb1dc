"""``movierec-recommend``: a person's top-N from a saved model, with no JVM.

    movierec-recommend --model DIR --custom-ratings FILE --output DIR [--top-n N]

The flags and outputs of ``jobs/recommend.py`` (which shares this module's
parser, checks and writer), served by :class:`movierec_spark.serving.local.LocalRecommender`:
no pyspark import, no Java needed. Writes to ``--output DIR``::

    top_n/                Parquet: user, user_id, rank, movie_id, title, year,
                          genres, prediction, num_ratings, match,
                          because_you_liked, because_movie_id, similarity, basis
    top_n.csv             the same, genres as Action|Drama
    custom_ratings.csv    each input line and the movie it was matched to
    report.json           model, file, settings, users, wall time per stage

and prints the tables. ``pip install -e .`` installs the command.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

# One BLAS thread, set before numpy loads: a person's products are small
# (1 x rank by rank x movies), and OpenBLAS's threads cost more than they
# save, most of all on a busy machine (bench/NOTES.md, "Serving without
# Spark"). OPENBLAS_NUM_THREADS set beforehand wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from movierec_spark import MovieRecError, cli
from movierec_spark.config import Config
from movierec_spark.serving.local import check_model_dir

log = logging.getLogger(__name__)

PROG = "movierec-recommend"
DESCRIPTION = "Top-N movies for people's own ratings, from a saved model, without retraining."


def recommend_parser(prog: str = PROG, description: str = DESCRIPTION):
    """The flags of ``jobs/recommend.py`` and ``movierec-recommend``."""
    parser = cli.make_parser(prog, description)
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
    cli.add_flag(parser, "--genres", "recommend.genres", type=cli.comma_list, metavar="A,B",
                 help="for someone whose ratings the model cannot use: the most liked movies of these genres "
                      "(default: the genres of the movies they liked)")
    cli.add_data_flags(parser)
    return parser


def validate(cfg: Config) -> None:
    """What the settings cannot know: the model and the ratings file exist, the output can be written."""
    from movierec_spark import io

    section = cfg.get("recommend", {})
    ratings = section.get("custom_ratings_file")
    if not ratings:
        raise MovieRecError("no custom ratings: pass --custom-ratings FILE (columns user,movie,rating)")
    io.check_input_file(ratings, "custom ratings file")
    check_model_dir(section.get("model"))
    if not section.get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    io.check_job_paths(cfg.get("data"), section["output"])


def count_people(path: str | Path) -> int:
    """How many people (distinct ``user`` labels) a custom ratings file names; a badly shaped file raises."""
    from movierec_spark import io
    from movierec_spark.serving import custom

    header, rows = io.read_small_csv(path, what="custom ratings file")
    lines, _ = custom.parse_lines(header, rows, f"custom ratings file {path}")
    return len({line.user for line in lines})


def publish_top_n(output: Path, frame, ratings, first_user_id: int, report: dict[str, Any]) -> None:
    """Write the top-N table (Parquet and CSV), the matched ratings and ``report`` to ``output``, atomically."""
    from movierec_spark import io
    from movierec_spark.serving import custom
    from movierec_spark.serving.tables import TOP_N_ARROW, for_csv, to_arrow

    with io.staged_table(output, "top_n", to_arrow(frame, TOP_N_ARROW), for_csv(frame)) as staging:
        io.write_csv(staging / "custom_ratings.csv", custom.resolved_table(ratings, first_user_id))
        io.write_json(staging / "report.json", report)


def report_settings(settings) -> dict[str, Any]:
    return settings.model_dump(exclude={"model", "output", "custom_ratings_file", "all_users"})


def run(cfg: Config) -> int:
    """Serve the ratings file of ``cfg`` from its model folder with no JVM, and write the outputs."""
    from movierec_spark.progress import StageTimer
    from movierec_spark.serving.local import LocalRecommender
    from movierec_spark.settings import RecommendSettings

    started, timer = time.perf_counter(), StageTimer()
    settings = RecommendSettings.from_config(cfg["recommend"])
    with timer.stage("load model"):
        recommender = LocalRecommender.load(check_model_dir(cfg["recommend"].get("model")), settings)
    return serve_file(cfg, recommender, timer, started, "local")


def serve_file(cfg: Config, recommender, timer, started: float, served: str,
               fold_in: Callable[[Sequence, int], Any] | None = None) -> int:
    """The ratings file's top-N from a loaded ``recommender`` (a LocalRecommender): read, fold in, rank, write, print.

    ``jobs/recommend.py`` calls it too, with a LocalRecommender over the
    model and movie table it loaded in Spark; ``fold_in(ratings,
    first_user_id)`` replaces the driver's fold-in (there: on the
    executors, for many people). ``served`` goes to ``report.json``.
    """
    from movierec_spark import io
    from movierec_spark.serving import custom
    from movierec_spark.serving.tables import format_top_n

    section = cfg["recommend"]
    output = io.check_output_dir(section["output"])
    with timer.stage("read custom ratings"):
        ratings = recommender.read_ratings(section["custom_ratings_file"])
        for line in custom.describe(ratings):
            log.info("%s", line)
    with timer.stage("fold in"):
        first_id = recommender.next_user_id()
        ids = custom.user_ids(ratings, first_id)
        rated = recommender.ratings_frame(ratings, first_id)
        users = recommender.fold_in(rated) if fold_in is None else fold_in(ratings, first_id)
        log.info("folded in %d users", len(ids))
    with timer.stage("top-n"):
        frame = recommender.top_n(rated, users)
    with timer.stage("write"):
        publish_top_n(output, frame, ratings, first_id, {
            "model": str(check_model_dir(section.get("model"))),
            "custom_ratings_file": str(section["custom_ratings_file"]),
            "method": "foldin",
            "served": served,
            "users": ids,
            "ratings": len(ratings),
            "rows": len(frame),
            "settings": report_settings(recommender.settings),
            "stages": dict(timer.seconds),
            "wall_seconds": time.perf_counter() - started,
        })
    cli.print_result(format_top_n(frame), output)
    return cli.EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """The console command: ``jobs/recommend.py``'s run, always without Spark."""
    return cli.run_job(PROG, recommend_parser(), None, argv, validate, run_local=run)


if __name__ == "__main__":
    sys.exit(main())
