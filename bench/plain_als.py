"""The plain reference: MovieLens ALS written the way Spark's own example is.

This follows ``examples/src/main/python/ml/als_example.py`` from Apache Spark:
text lines parsed through an RDD of ``Row``, ``randomSplit``, ``ALS`` with
its defaults except the parameters the benchmark fixes (rank, iterations,
regularisation), ``RegressionEvaluator``, ``recommendForUserSubset`` and
``recommendForAllUsers``. It runs with Spark's default configuration (the
benchmark gives it no spark-defaults.conf), so the benchmark's ratios show
what movierec-spark adds.

Deviations from the example, each in the reference's favour:
- the parsed ratings are cached once (the example re-parses the text for
  every action), so "fit" times ALS and not the parsing;
- every stage ends with an action, so each stage's wall time is its own.

The custom user (``bench/custom_ratings.csv``: movie ids, all this script
reads) is added to the training set under a new id before fitting, as
tutorials do, and gets top-N afterwards.

    spark-submit bench/plain_als.py --ratings ratings.csv --custom bench/custom_ratings.csv \\
        --output /tmp/plain --metrics /tmp/plain.json
"""

import argparse
import json
import time

from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.recommendation import ALS
from pyspark.sql import Row, SparkSession


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratings", required=True, help="MovieLens ratings: ratings.csv, u.data or a folder of them")
    parser.add_argument("--custom", required=True, help="user,movie,rating CSV of the custom user")
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--reg-param", type=float, default=0.1)
    parser.add_argument("--top-n", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", required=True, help="folder for the top-N tables")
    parser.add_argument("--metrics", required=True, help="JSON file for stage timings and RMSE")
    args = parser.parse_args()

    seconds = {}
    start = time.perf_counter()
    spark = SparkSession.builder.appName("PlainALS").getOrCreate()
    seconds["session"] = time.perf_counter() - start

    def stage(name, action):
        began = time.perf_counter()
        result = action()
        seconds[name] = time.perf_counter() - began
        return result

    # As in the example: text -> RDD of Rows -> DataFrame. u.data is
    # tab-separated, ratings.csv comma-separated with a header line.
    lines = spark.read.text(args.ratings).rdd
    lines = lines.filter(lambda row: row.value and not row.value.startswith("userId"))
    parts = lines.map(lambda row: row.value.replace("\t", ",").split(","))
    ratingsRDD = parts.map(
        lambda p: Row(userId=int(p[0]), movieId=int(p[1]), rating=float(p[2]), timestamp=int(p[3]))
    )
    ratings = spark.createDataFrame(ratingsRDD).cache()
    n_ratings = stage("load", ratings.count)

    custom_lines = spark.read.text(args.custom).rdd.filter(lambda row: not row.value.startswith("user,"))
    custom_id = stage("custom ids", lambda: ratings.agg({"userId": "max"}).first()[0] + 1)
    custom = spark.createDataFrame(
        custom_lines.map(lambda row: row.value.split(",")).map(
            lambda p: Row(userId=custom_id, movieId=int(p[1]), rating=float(p[2]), timestamp=0)
        )
    )

    (training, test) = ratings.randomSplit([0.8, 0.2], seed=args.seed)
    training = training.union(custom)
    stage("split", lambda: (training.count(), test.count()))

    als = ALS(
        rank=args.rank,
        maxIter=args.max_iter,
        regParam=args.reg_param,
        seed=args.seed,
        userCol="userId",
        itemCol="movieId",
        ratingCol="rating",
        coldStartStrategy="drop",
    )
    model = stage("fit", lambda: als.fit(training))

    predictions = model.transform(test)
    evaluator = RegressionEvaluator(metricName="rmse", labelCol="rating", predictionCol="prediction")
    rmse = stage("evaluate", lambda: evaluator.evaluate(predictions))
    print("Root-mean-square error = " + str(rmse))

    users = spark.createDataFrame([Row(userId=custom_id)])
    stage(
        "recommend custom",
        lambda: model.recommendForUserSubset(users, args.top_n).write.mode("overwrite").parquet(
            args.output + "/custom_top_n"
        ),
    )
    stage(
        "top-n all users",
        lambda: model.recommendForAllUsers(args.top_n).write.mode("overwrite").parquet(args.output + "/all_top_n"),
    )
    spark.stop()
    seconds["total"] = time.perf_counter() - start
    with open(args.metrics, "w") as fh:
        json.dump(
            {
                "ratings": n_ratings,
                "rmse": rmse,
                "params": {"rank": args.rank, "max_iter": args.max_iter, "reg_param": args.reg_param},
                "seconds": {k: round(v, 3) for k, v in seconds.items()},
            },
            fh,
            indent=2,
        )


if __name__ == "__main__":
    main()
