"""bench/benchmark.py: the command line that times the project's pipeline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "bench" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_short_runs_use_the_c1_only_jvm_and_long_ones_the_default():
    bench = _benchmark()
    small = bench.project_command(Path("in"), Path("out"), bench.SIZES["ml-latest-small"][1])
    large = bench.project_command(Path("in"), Path("out"), bench.SIZES["25m"][1])
    # spark-submit options go before the job; the rest is the same command.
    job = small.index("jobs/train_als.py")
    assert small[1:job] == ["--driver-java-options", "-XX:TieredStopAtLevel=1"]
    assert large[1] == "jobs/train_als.py" and "-XX:TieredStopAtLevel=1" not in large
    assert small[job:] == large[1:] and small[0] == large[0] == "./spark-submit.sh"
    assert bench.project_command(Path("in"), Path("out"), bench.QUICK_JVM_RATINGS)[1] == "jobs/train_als.py"
