"""Counting the Spark jobs a piece of code runs, for tests of "no job" promises."""

from __future__ import annotations


def jobs_while(spark, group, action):
    """``action()``'s result and the ids of the Spark jobs it ran (tagged with job group ``group``)."""
    sc = spark.sparkContext
    sc.setJobGroup(group, group)
    try:
        result = action()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
    return result, sc.statusTracker().getJobIdsForGroup(group)
