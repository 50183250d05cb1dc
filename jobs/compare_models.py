"""Fit and evaluate every model side by side on one split of a MovieLens release.

    ./spark-submit.sh jobs/compare_models.py [--dataset NAME] [--split METHOD] [--models A,B] ... [--output DIR]

The same data, split and model flags as ``jobs/train_als.py``. Fits the
models of ``[compare_models] models`` (by default all of them: global
mean, damped biases, biased ALS, item and user kNN, the rating blend,
implicit ALS, EASE, RP3beta, the top-N blend, popularity), scores the
test split, prints the side-by-side table and writes to ``--output DIR``:
``metrics.json``, ``metrics.csv`` (the table), ``predictions_sample.csv``
and ``rankings/<model>/`` (Parquet: user_id, rank, movie_id, score), the
top-K lists each ranked model's metrics were computed from.
"""

from __future__ import annotations

import argparse
import sys

from movierec_spark import cli, pipeline
from movierec_spark.config import Config

PROG = "compare_models"


def build_parser() -> argparse.ArgumentParser:
    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_data_flags(parser)
    cli.add_split_flags(parser)
    cli.add_model_flags(parser, PROG)
    cli.add_evaluation_flags(parser, PROG)
    return parser


def validate(cfg: Config) -> None:
    pipeline.check(cfg, pipeline.COMPARE)


def run(spark, cfg: Config) -> int:
    print(pipeline.run(spark, cfg, pipeline.COMPARE).report())
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return cli.run_job(PROG, build_parser(), run, argv, validate)


if __name__ == "__main__":
    sys.exit(main())
