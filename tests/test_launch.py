"""movierec_spark.launch: the JVM options spark-submit.sh adds, from the job's arguments alone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from movierec_spark.launch import QUICK_JVM_OPTIONS, QUICK_JVM_RATINGS, jvm_options, ratings_named

ROOT = Path(__file__).resolve().parents[1]
QUICK = list(QUICK_JVM_OPTIONS)


@pytest.mark.parametrize("job, args, options", [
    ("jobs/train_als.py", [], QUICK),  # the main command: [data] dataset = ml-latest-small
    ("jobs/train_als.py", ["--dataset", "ml-100k", "--source", "x"], QUICK),
    ("jobs/compare_models.py", ["--dataset=ml-1m"], QUICK),
    ("jobs/train_als.py", ["--dataset", "ml-25m"], []),
    ("jobs/eda.py", ["--dataset", "ml-32m"], []),
    ("jobs/generate_synthetic.py", ["--ratings", str(QUICK_JVM_RATINGS)], QUICK),
    ("jobs/generate_synthetic.py", ["--ratings", str(QUICK_JVM_RATINGS + 1)], []),
    ("jobs/train_als.py", ["--dataset", "no-such-release"], []),  # unknown: the default JIT
    ("jobs/recommend.py", ["--model", "m"], QUICK),
    ("jobs/similar.py", [], QUICK),
])
def test_short_runs_get_the_c1_only_jit_and_long_or_unknown_ones_the_default(job, args, options):
    assert jvm_options(job, args) == options


def test_ingested_tables_are_sized_by_their_report_and_a_config_file_is_read(tmp_path):
    ingested = tmp_path / "ingested"
    ingested.mkdir()
    (ingested / "ingest_report.json").write_text(json.dumps({"summary": {"ratings": 25_000_095}}))
    assert ratings_named(["--ingested", str(ingested)]) == 25_000_095
    assert ratings_named(["--ingested", str(tmp_path / "missing")]) is None
    config = tmp_path / "big.toml"
    config.write_text('[data]\ndataset = "ml-20m"\n')
    assert ratings_named(["--config", str(config)]) == 20_000_263
    assert ratings_named(["--config", str(config), "--dataset", "ml-100k"]) == 100_000


def test_spark_submit_sh_passes_the_options_to_the_driver_unless_given_its_own(tmp_path):
    """spark-submit.sh's command line, with a stand-in for Spark's spark-submit that prints its arguments."""
    fake = tmp_path / "spark"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "spark-submit").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (fake / "bin" / "spark-submit").chmod(0o755)

    def submitted(*args):
        run = subprocess.run(["./spark-submit.sh", *args], cwd=ROOT, env={"SPARK_HOME": str(fake), "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, check=True)
        return run.stdout.splitlines()

    assert "-XX:TieredStopAtLevel=1" in submitted("jobs/train_als.py")
    assert "-XX:TieredStopAtLevel=1" not in submitted("jobs/train_als.py", "--dataset", "ml-25m")
    assert "-XX:TieredStopAtLevel=1" not in submitted("--master", "spark://host:7077", "jobs/train_als.py")
    own = submitted("--driver-java-options", "-Xss4m", "jobs/train_als.py")
    assert own.count("--driver-java-options") == 1 and "-XX:TieredStopAtLevel=1" not in own
