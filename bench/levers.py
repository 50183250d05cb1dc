"""Issue 6's levers, measured in one session: ALS fit time under each setting.

    ./spark-submit.sh bench/levers.py --ingested DIR [--lever blocks=10,4,2] [--lever checkpoint=5,10]

Reads the ingested ratings, takes the pipeline's random 80% training split,
fits the damped-bias baseline once and then, for each value of each lever,
the ALS part of the biased ALS model (rank 10, 10 iterations, regParam 0.1,
every other setting as conf/movierec.toml), timing the fit alone. Each
value is fitted ``--repeats`` times and the median printed, with the load
average beside it (the machine is shared). The first fit also warms the
JVM, so an unreported warm-up fit of the first value comes first.

Levers: ``blocks`` (ALS user and item blocks), ``checkpoint`` (ALS
checkpoint interval), ``storage`` (ALS intermediate/final storage level).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from pyspark.sql import SparkSession

from movierec_spark import io
from movierec_spark.evaluation import split as S
from movierec_spark.models.fit import AlsParams, BiasParams, fit_bias_model, residuals
from movierec_spark.data.releases import HALF_STARS
from movierec_spark.session import set_checkpoint_dir

BASE = AlsParams(rank=10, max_iter=10, reg_param=0.1)


def estimator(lever: str, value: str):
    if lever == "blocks":
        return BASE.with_(num_user_blocks=int(value), num_item_blocks=int(value)).estimator("_residual")
    if lever == "checkpoint":
        return BASE.with_(checkpoint_interval=int(value)).estimator("_residual")
    if lever == "storage":
        als = BASE.estimator("_residual")
        return als.setIntermediateStorageLevel(value).setFinalStorageLevel(value)
    raise SystemExit(f"unknown lever {lever!r}; choose blocks, checkpoint or storage")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ingested", required=True)
    parser.add_argument("--lever", action="append", default=[], help="NAME=V1,V2 (blocks, checkpoint, storage)")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    levers = [(name, values.split(",")) for name, values in (x.split("=", 1) for x in args.lever or ["blocks=10,4,2"])]

    spark = SparkSession.builder.appName("movierec-levers").getOrCreate()
    set_checkpoint_dir(spark, tempfile.mkdtemp(prefix="movierec-levers-"))
    _, tables = io.read_ingested(spark, args.ingested)
    train = S.split_ratings(tables["ratings"], "random", 0.2, 42, S.SPLIT_PARTITIONS).train.cache()
    print(f"training ratings: {train.count():,}", flush=True)
    bias = fit_bias_model(train, HALF_STARS, BiasParams(day_bias=False))
    data = residuals(train, bias).cache()
    data.count()

    def fit_seconds(lever: str, value: str) -> float:
        started = time.perf_counter()
        estimator(lever, value).fit(data).itemFactors.count()
        return time.perf_counter() - started

    fit_seconds(levers[0][0], levers[0][1][0])  # warm-up: JIT, first shuffle files
    for lever, values in levers:
        for value in values:
            loads, times = [], []
            for _ in range(args.repeats):
                loads.append(os.getloadavg()[0])
                times.append(fit_seconds(lever, value))
            print(f"{lever}={value}: fit {statistics.median(times):.1f} s "
                  f"(runs {', '.join(f'{t:.1f}' for t in times)}; load {', '.join(f'{x:.1f}' for x in loads)})",
                  flush=True)  # fmt: skip
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
