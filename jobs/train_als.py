"""Train biased ALS on a MovieLens release, evaluate it and recommend for your own users.

    ./spark-submit.sh jobs/train_als.py [--dataset NAME] [--split METHOD] [--rank N] ... [--output DIR]

Loads the release (downloading it on first use), splits its ratings
(seeded ``randomSplit`` by default), fits damped biases plus Spark MLlib
ALS on their residuals, reports RMSE, MAE and R2 (``RegressionEvaluator``)
and the ranking metrics at K on the test split, folds in the people of
``conf/custom_ratings.csv`` and writes their top-N tables and the model
(layout: :mod:`movierec_spark.pipeline`). ``--models`` fits other models
too; ``jobs/compare_models.py`` compares them all.

Same data, same flags, same seed: same split and same metrics.
"""

from __future__ import annotations

import argparse
import sys

from movierec_spark import cli, pipeline
from movierec_spark.config import Config

PROG = "train_als"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_data_flags(parser)
    cli.add_split_flags(parser)
    cli.add_model_flags(parser, PROG)
    evaluate = cli.add_evaluation_flags(parser, PROG)
    cli.add_flag(evaluate, "--top-n", "recommend.top_n", type=cli.whole_number,
                 help="recommendations per custom user")
    cli.add_flag(evaluate, "--custom-ratings", "recommend.custom_ratings_file", metavar="FILE",
                 help="CSV user,movie,rating (movie: id or title) of people to recommend for; empty: none")
    cli.add_flag(evaluate, "--custom-method", "recommend.method", choices=("foldin", "retrain"), metavar="HOW",
                 help="foldin: solve the custom users against the fitted model; retrain: refit with their ratings")
    cli.add_flag(evaluate, "--min-ratings", "recommend.min_ratings", type=cli.whole_number,
                 help="fewest ratings a recommended movie must have")
    cli.add_flag(evaluate, "--top-n-all", "recommend.all_users", action=argparse.BooleanOptionalAction,
                 metavar=None, help="also write top-N for every training user to top_n_all/")
    return parser


def validate(cfg: Config) -> None:
    pipeline.check(cfg, pipeline.TRAIN)


def run(spark, cfg: Config) -> int:
    print(pipeline.run(spark, cfg, pipeline.TRAIN).report())
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
