"""Search ALS hyper-parameters with Spark ML tuning on the training split only.

    ./spark-submit.sh jobs/tune_als.py [--mode explicit|implicit] [--grid NAME=V1,V2 ...] [--method tvs|cv] ...

Loads the release and splits it exactly as jobs/train_als.py does (same
data and split flags), then tunes on the TRAINING part only -- the test
part is never read, so train_als.py's test metrics stay honest. Each grid
point is scored by TrainValidationSplit (default) or CrossValidator on
random slices of the training ratings:

    explicit  movierec_spark.models.fit.BiasedALS (biases + ALS on residuals),
              RMSE (lower is better)
    implicit  movierec_spark.models.tune.ImplicitALS (ALS with implicitPrefs),
              nDCG@K of each validation user's top-K unseen movies
              (higher is better)

The grid comes from [tune] <mode>_<name> lists in conf/movierec.toml and
--grid flags (names: explicit rank, max_iter, reg_param, user_damping,
item_damping; implicit rank, max_iter, reg_param, alpha, confidence);
parameters not in the grid keep their [als] / [bias] / [implicit] values.
Writes to --output DIR:

    leaderboard.csv   one row per grid point, best first: place, parameters,
                      metric (mean over folds with cv, and metric_std),
                      mean fit seconds
    leaderboard/      the same as Parquet
    best.toml         the best parameters under the keys train_als.py reads:
                      train_als.py --config DIR/best.toml
    tune.json         everything: dataset, split, grid, method, leaderboard,
                      best, command, wall time per stage
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys

from movierec_spark import MovieRecError, cli
from movierec_spark.config import Config

log = logging.getLogger("jobs.tune_als")

PROG = "tune_als"


class _SetSeeds(argparse.Action):
    """``--seed N`` sets every seed: the split's, the models' and the tuner's."""

    config_keys = ("als.seed", "tune.seed", "split.seed")  # named in errors (cli.config_flags)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, "als.seed", values)
        setattr(namespace, "tune.seed", values)
        if getattr(namespace, "split.seed", None) is None:
            setattr(namespace, "split.seed", values)


def _grid_entry(text: str) -> str:
    from movierec_spark.models.tune import parse_grid_flag

    try:
        parse_grid_flag(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    from movierec_spark.models.tune import METHODS, MODES

    parser = cli.make_parser(PROG, __doc__.split("\n\n")[0])
    cli.add_data_flags(parser)
    cli.add_split_flags(parser)

    tune = parser.add_argument_group("tuning (on the training split only; the test split is never read)")
    cli.add_flag(tune, "--mode", "tune.mode", choices=MODES,
                 help="explicit: biased ALS scored by RMSE; implicit: top-N ALS scored by nDCG@K")
    cli.add_flag(tune, "--grid", "tune.grid", type=_grid_entry, action="append", metavar="NAME=V1,V2",
                 help="values to try for one parameter (repeatable); replaces [tune] <mode>_NAME")
    cli.add_flag(tune, "--method", "tune.method", choices=METHODS,
                 help="tvs: TrainValidationSplit; cv: CrossValidator")
    cli.add_flag(tune, "--train-ratio", "tune.train_ratio", type=cli.number,
                 help="tvs: share of the training ratings each grid point is fitted on")
    cli.add_flag(tune, "--folds", "tune.num_folds", type=cli.whole_number, help="cv: number of folds (2 or more)")
    cli.add_flag(tune, "--parallelism", "tune.parallelism", type=cli.whole_number,
                 help="grid points fitted at the same time")
    cli.add_flag(tune, "--k", "evaluate.k", type=cli.whole_number, help="implicit: K of nDCG@K")
    tune.add_argument("--seed", type=cli.whole_number, action=_SetSeeds, metavar="N",
                      help="set every seed (split, models, tuner); --split-seed overrides the split's")
    cli.add_flag(tune, "--num-blocks", "als.num_user_blocks", type=cli.whole_number, metavar="N",
                 help="ALS user and item blocks")
    cli.add_flag(tune, "--checkpoint-dir", "als.checkpoint_dir", metavar="DIR",
                 help="Spark checkpoint folder (a shared filesystem on a cluster); empty: a temporary folder")
    cli.add_flag(tune, "--output", "tune.output", metavar="DIR", help="output folder")
    return parser


# --- validation before Spark starts ---


def validate(cfg: Config) -> None:
    """What the settings cannot know, before any JVM starts: the --grid entries, the paths."""
    from movierec_spark.models.tune import grid_from_config, grid_size

    from movierec_spark.pipeline import check_data_and_split

    check_data_and_split(cfg)
    tune = dict(cfg.get("tune", {}))
    mode = tune.get("mode", "explicit")
    grid = grid_from_config(cfg, mode)
    if not tune.get("output"):
        raise MovieRecError("no output folder: pass --output DIR")
    from movierec_spark import io
    io.check_output_dir(tune["output"])
    log.info("%s grid: %d point(s) %s", mode, grid_size(grid), grid)


# --- the job ---


def run(spark, cfg: Config, command: str = "") -> int:
    from movierec_spark.evaluation.tuning import format_leaderboard, run_tuning

    result = run_tuning(spark, cfg, command)
    summary, output = result.summary, result.output
    print(f"\n{summary['mode']} ALS, {summary['metric']} on validation slices of {summary['train_rows']} "
          f"training ratings ({summary['method']}), written to {output}:")
    print(format_leaderboard(result.rows))
    print(f"\nBest parameters: {output / 'best.toml'}  (train_als.py --config {output / 'best.toml'})")
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["./spark-submit.sh", "jobs/tune_als.py", *args])
    return cli.run_job(PROG, build_parser(), lambda spark, cfg: run(spark, cfg, command), argv, validate)


if __name__ == "__main__":
    sys.exit(main())
