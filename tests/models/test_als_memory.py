"""Issue 20, item 1: an ALS rank that cannot fit the memory Spark was given is refused before any data loads.

Spark-free: the estimate is arithmetic on published counts, and the jobs
are run with a stand-in session that only answers the two questions the
check asks (its driver memory and its cores).
"""

from __future__ import annotations

import json
import re
import types

import pytest

from jobs import compare_models, train_als, tune_als
from movierec_spark import MovieRecError, cli
from movierec_spark.models import als_memory as M
from tests.job_logging import keep_logging  # noqa: F401 (a fixture)

_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d ")  # progress lines, not the refusal


@pytest.mark.parametrize(
    "text, size",
    [("4g", 4 * 2**30), ("512m", 512 * 2**20), ("2048", 2048 * 2**20), ("1536k", 1536 * 2**10),
     ("1t", 2**40), ("8G", 8 * 2**30), ("2gb", 2 * 2**30)],
)
def test_spark_memory_strings_are_read_as_spark_reads_them(text, size):
    assert M.memory_bytes(text) == size


def test_a_memory_string_spark_would_not_read_is_named():
    with pytest.raises(MovieRecError) as caught:
        M.memory_bytes("lots")
    assert str(caught.value) == "spark.driver.memory 'lots' is not a size such as 4g or 512m"


def test_the_estimate_is_factors_plus_one_system_per_core():
    # ml-100k at rank 10 on 4 cores: 8 * 10 * (943 + 1682) and 8 * 10 * 10 * 4
    assert M.estimate_bytes(10, 943, 1682, 4) == (210_000, 3_200)


def _cfg(rank=20, implicit_rank=100, **data):
    return {"data": {"dataset": "ml-latest-small", **data}, "als": {"rank": rank}, "implicit": {"rank": implicit_rank}}


@pytest.mark.parametrize(
    "cfg, sections, cores, memory, line",
    [
        # ml-latest-small, the example: 8e5 * 10,352 bytes of factors, 8e10 per core of equations
        (_cfg(rank=100_000), ["als"], 2, "4g",
         "[als] rank (--rank) 100000 needs at least 157 GiB (7.7 GiB of factors for 610 users and 9,742 movies "
         "and 149 GiB of 100000 x 100000 normal equations on 2 cores), more than spark.driver.memory 4g; "
         "lower the rank or raise --driver-memory"),
        # ml-25m's factors alone outgrow a small driver before the equations do
        (_cfg(rank=2_000, dataset="ml-25m"), ["als"], 1, "2g",
         "[als] rank (--rank) 2000 needs at least 3.4 GiB (3.4 GiB of factors for 162,541 users and 62,423 movies "
         "and 31 MiB of 2000 x 2000 normal equations on 1 core), more than spark.driver.memory 2g; "
         "lower the rank or raise --driver-memory"),
        # the implicit model's rank is checked too, under its own flag
        (_cfg(implicit_rank=20_000), ["als", "implicit"], 4, "1g",
         "[implicit] rank (--implicit-rank) 20000 needs at least 13 GiB (1.5 GiB of factors for 610 users and "
         "9,742 movies and 12 GiB of 20000 x 20000 normal equations on 4 cores), more than spark.driver.memory 1g; "
         "lower the rank or raise --driver-memory"),
        # a release with no published counts: the equations alone
        (_cfg(rank=30_000, dataset="ml-latest"), ["als"], 2, "8g",
         "[als] rank (--rank) 30000 needs at least 13 GiB (13 GiB of 30000 x 30000 normal equations on 2 cores), "
         "more than spark.driver.memory 8g; lower the rank or raise --driver-memory"),
    ],
)
def test_a_rank_that_cannot_fit_is_refused_with_the_estimate_and_the_limit(cfg, sections, cores, memory, line):
    with pytest.raises(MovieRecError) as caught:
        M.check_ranks(cfg, sections, cores, memory)
    assert str(caught.value) == line


@pytest.mark.parametrize(
    "cfg, sections, memory",
    [
        (_cfg(), ["als", "implicit"], "1g"),  # the shipped ranks on the default release
        (_cfg(rank=1_000, dataset="ml-25m"), ["als"], "4g"),
        (_cfg(implicit_rank=20_000), ["als"], "1g"),  # implicit not fitted: its rank is not checked
    ],
)
def test_ranks_that_fit_pass(cfg, sections, memory):
    M.check_ranks(cfg, sections, 8, memory)


def test_ingested_data_is_sized_from_its_ingest_report(tmp_path):
    (tmp_path / "ingest_report.json").write_text(json.dumps({"summary": {"users": 50_000, "movies": 20_000}}))
    assert M.release_size({"ingested_dir": str(tmp_path), "dataset": "ml-100k"}) == (50_000, 20_000)
    assert M.release_size({"ingested_dir": str(tmp_path / "elsewhere")}) is None
    assert M.release_size({"dataset": "ml-100k"}) == (943, 1_682)


def _fake_session(memory: str, cores: int):
    """Answers what the memory check asks; anything else the job touched would fail the test."""
    conf = types.SimpleNamespace(get=lambda key, default=None: memory if key == "spark.driver.memory" else default)
    context = types.SimpleNamespace(getConf=lambda: conf, defaultParallelism=cores)
    return types.SimpleNamespace(sparkContext=context, stop=lambda: None)


@pytest.mark.parametrize(
    "job, argv, start",
    [
        (train_als, ["--rank", "100000", "--custom-ratings", ""], "train_als: error: [als] rank (--rank) 100000 needs"),
        (train_als, ["--rank", "10", "--models", "bias,implicit", "--implicit-rank", "50000", "--custom-ratings", ""],
         "train_als: error: [implicit] rank (--implicit-rank) 50000 needs"),
        # compare_models fits implicit (and the blends' ALS members) by default
        (compare_models, ["--implicit-rank", "50000"], "compare_models: error: [implicit] rank (--implicit-rank) 50000"),
        (compare_models, ["--rank", "40000"], "compare_models: error: [als] rank (--rank) 40000 needs"),
        # tune_als: the grid's largest rank
        (tune_als, ["--grid", "rank=10,60000"], "tune_als: error: [tune] explicit_rank (--grid rank=...) 60000 needs"),
        (tune_als, ["--mode", "implicit", "--grid", "rank=70000,5"],
         "tune_als: error: [tune] implicit_rank (--grid rank=...) 70000 needs"),
    ],
)
def test_the_jobs_refuse_the_rank_before_loading_anything(tmp_path, monkeypatch, capsys, keep_logging, job, argv,
                                                          start):
    monkeypatch.setattr("movierec_spark.session.build_session", lambda name: _fake_session("2g", 2))

    def no_load(*args, **kwargs):
        raise AssertionError("the data was loaded")

    monkeypatch.setattr("movierec_spark.data.load.load_data", no_load)
    out = tmp_path / "out"
    code = job.main([*argv, "--output", str(out)])
    err = [line for line in capsys.readouterr().err.splitlines() if line and not _LOG_LINE.match(line)]
    assert code == cli.EXIT_USAGE
    assert len(err) == 1 and err[0].startswith(start), err
    assert err[0].endswith("more than spark.driver.memory 2g; lower the rank or raise --driver-memory"), err
    assert not out.exists()
