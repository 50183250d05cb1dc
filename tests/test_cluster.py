"""The same ./spark-submit.sh command on a real standalone cluster (issue 7).

A master and two workers run on 127.0.0.1 for the module (``spark_cluster``
fixture, tests/cluster.py) and are stopped afterwards, also on failure.
"""

from __future__ import annotations

import json

import pytest

from tests.cluster import ROOT, run_submit

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_executors_import_the_library_from_the_shipped_zip(spark_cluster, tmp_path):
    result = run_submit(
        [*spark_cluster.submit_args(), str(ROOT / "tests" / "cluster_probe.py")], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING: Using incubator modules" not in result.stderr  # the wrapper drops it
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["master"] == spark_cluster.master_url
    # The driver and every task import the --py-files zip, never the source tree.
    assert "movierec_spark.zip" in report["driver"]
    assert not report["driver"].startswith(str(ROOT / "movierec_spark"))
    work_dirs = {str(spark_cluster.base / f"work{i}") for i in range(spark_cluster.workers)}
    used = set()
    for module_file, cwd, python, column in report["tasks"]:
        assert module_file.endswith("movierec_spark.zip/movierec_spark/__init__.py"), module_file
        assert not module_file.startswith(str(ROOT)), module_file
        assert column == "user_id"
        used.update(d for d in work_dirs if cwd.startswith(d))
    # Tasks really ran in executors the workers launched, on both workers.
    assert used == work_dirs, (used, work_dirs)
