"""A tiny job for cluster and Spark Connect tests: where do the driver and the executors import movierec_spark from?

Run as ``./spark-submit.sh [--master URL | --remote URL] tests/cluster_probe.py``;
prints one JSON object on stdout: the driver's ``movierec_spark.__file__``,
the master, the session's shuffle partitions and time zone and, per task, the executor's ``__file__``, working directory and
Python. DataFrame operations only, so it runs over Spark Connect as well.
"""

import json
import os
import sys


def where(frames):
    import pandas as pd

    import movierec_spark
    from movierec_spark import columns as C

    for _ in frames:
        yield pd.DataFrame({"file": [movierec_spark.__file__], "cwd": [os.getcwd()], "python": [sys.executable],
                            "column": [C.USER_ID]})


def main() -> int:
    from movierec_spark.session import build_session, master

    spark = build_session("movierec-cluster-probe")
    try:
        found = spark.range(0, 4, numPartitions=4).mapInPandas(
            where, "file string, cwd string, python string, column string").collect()
        import movierec_spark

        print(json.dumps({"driver": movierec_spark.__file__, "master": master(spark),
                          "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                          "time_zone": spark.conf.get("spark.sql.session.timeZone"),
                          "tasks": [list(row) for row in found]}))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
