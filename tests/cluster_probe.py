"""A tiny job for cluster tests: where do the driver and the executors import movierec_spark from?

Run as ``./spark-submit.sh [--master URL] tests/cluster_probe.py``; prints one
JSON object on stdout: the driver's ``movierec_spark.__file__`` and, per task,
the executor's ``__file__``, working directory and Python.
"""

import json
import os
import sys

from pyspark.sql import SparkSession


def where(rows):
    import movierec_spark
    from movierec_spark import columns as C

    for _ in rows:
        yield movierec_spark.__file__, os.getcwd(), sys.executable, C.USER_ID


def main() -> int:
    spark = SparkSession.builder.appName("movierec-cluster-probe").getOrCreate()
    try:
        tasks = spark.sparkContext.parallelize(range(4), 4).mapPartitions(where).collect()
        import movierec_spark

        print(json.dumps({"driver": movierec_spark.__file__, "master": spark.sparkContext.master,
                          "tasks": tasks}))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
