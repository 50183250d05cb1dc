"""Bad arguments and inputs end in one clear line and a non-zero exit code (issue 7).

Through ./spark-submit.sh, Spark's PythonRunner merges the Python driver's
stderr into spark-submit's stdout, so these tests look at both streams
together: what a person sees in the terminal.
"""

from __future__ import annotations

import importlib
import logging
import re

import pytest

from movierec_spark import cli
from tests.cluster import ROOT, run_submit
from tests.release_files import write_files


def test_a_bad_flag_is_one_line_naming_the_flag_and_help(capsys):
    parser = cli.make_parser("job.py", "test")
    cli.add_flag(parser, "--rank", "als.rank", type=cli.whole_number)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--rank", "ten"])
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines() == ["job.py: error: argument --rank: 'ten' is not a whole number (see job.py --help)"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["jobs/no_such_job.py"], "job file jobs/no_such_job.py does not exist"),
        (["--master"], "--master needs a value"),
        (["not-a-job"], "expected a job"),
    ],
)
def test_the_wrapper_refuses_bad_command_lines_in_one_line(tmp_path, args, message):
    result = run_submit(args, tmp_path, cwd=ROOT, timeout=60)
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) == 1 and message in lines[0], lines


# --- every job, in-process through main(argv) (issue 7's bad-input audit) ---
#
# main() runs exactly as under spark-submit, except that build_session hands
# out the test session (whose stop() is disabled) and records that it did:
# cases marked "before Spark" must be refused by validation alone.

RATINGS = ["userId,movieId,rating,timestamp", "1,1,4.0,964982703", "1,2,3.5,964981247", "2,1,5.0,964982224"]
MOVIES = ["movieId,title,genres", "1,Toy Story (1995),Animation", '2,"Heat, Again (1995)",Action']
TAGS = ["userId,movieId,tag,timestamp"]
LINKS = ["movieId,imdbId,tmdbId", "1,0114709,862", "2,0113277,"]
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d ")  # progress.configure_logging's format


@pytest.fixture
def job_session(spark, monkeypatch):
    """build_session -> the shared test session; ``started`` says whether a job asked for it."""
    started = []

    def build_session(app_name):
        started.append(app_name)
        return spark

    monkeypatch.setattr("movierec_spark.session.build_session", build_session)
    monkeypatch.setattr(spark, "stop", lambda: None)
    for name in ("movierec_spark", "jobs", "__main__"):  # undo main()'s logging set-up afterwards
        logger = logging.getLogger(name)
        for attribute in ("handlers", "level", "propagate"):
            value = getattr(logger, attribute)
            monkeypatch.setattr(logger, attribute, list(value) if attribute == "handlers" else value)
    return started


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> dict[str, str]:
    """Paths of every kind of bad input, built once."""
    tmp = tmp_path_factory.mktemp("bad-inputs")
    good = write_files(tmp / "good" / "ml-latest-small", {
        "ratings.csv": RATINGS, "movies.csv": MOVIES, "tags.csv": TAGS, "links.csv": LINKS,
    }, newline="\r\n")  # fmt: skip
    empty = write_files(tmp / "empty" / "ml-latest-small", {
        "ratings.csv": RATINGS[:1], "movies.csv": MOVIES, "tags.csv": TAGS, "links.csv": LINKS,
    }, newline="\r\n")  # fmt: skip
    junk = tmp / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("not a model, not ingested tables\n")
    a_file = tmp / "a-file"
    a_file.write_text("a file where a folder is expected\n")
    custom = tmp / "me.csv"
    custom.write_text("user,movie,rating\nme,1,5\n")
    # Passes the check made before Spark starts (so later checks are reached), loads as nothing.
    looks_like_a_model = tmp / "looks-like-a-model"
    looks_like_a_model.mkdir()
    (looks_like_a_model / "metadata.json").write_text("{}\n")
    return {
        "good": str(good.parent), "empty": str(empty.parent), "junk": str(junk), "file": str(a_file),
        "missing": str(tmp / "nowhere"), "custom": str(custom), "model": str(looks_like_a_model),
    }


# (job, argv with {placeholders} from ``bad``, text the line must contain, refused before Spark starts)
AUDIT = [
    # missing or unreadable files
    ("ingest", ["--source", "{missing}", "--output", "{out}"], "nowhere", True),
    ("eda", ["--source", "{missing}", "--output", "{out}"], "nowhere", True),
    ("train_als", ["--ingested", "{missing}", "--output", "{out}"], "nowhere", True),
    ("tune_als", ["--source", "{missing}", "--output", "{out}"], "nowhere", True),
    ("recommend", ["--model", "{missing}", "--custom-ratings", "{custom}", "--output", "{out}"], "nowhere", True),
    ("recommend", ["--model", "{model}", "--custom-ratings", "{missing}", "--output", "{out}"], "nowhere", True),
    ("train_als", ["--custom-ratings", "{missing}", "--output", "{out}"], "nowhere", True),
    ("similar", ["--model", "{missing}", "--movie", "1"], "nowhere", True),
    # a release folder of the wrong layout (ml-latest-small's CSVs where ml-100k's u.data is expected)
    ("ingest", ["--dataset", "ml-100k", "--source", "{good}/ml-latest-small", "--output", "{out}"], "ml-100k", False),
    ("eda", ["--dataset", "ml-1m", "--source", "{good}/ml-latest-small", "--output", "{out}"], "ml-1m", False),
    # empty tables
    ("ingest", ["--source", "{empty}", "--output", "{out}"], "ratings", False),
    ("eda", ["--source", "{empty}", "--output", "{out}"], "ratings", False),
    ("train_als", ["--source", "{empty}", "--models", "bias,als", "--custom-ratings", "", "--output", "{out}"],
     "ratings", False),
    ("tune_als", ["--source", "{empty}", "--output", "{out}"], "ratings", False),
    # not ingested tables, not a model
    ("eda", ["--ingested", "{junk}", "--output", "{out}"], "junk", False),
    ("train_als", ["--ingested", "{junk}", "--output", "{out}"], "junk", False),
    ("recommend", ["--model", "{junk}", "--custom-ratings", "{custom}", "--output", "{out}"], "model", True),
    ("similar", ["--model", "{junk}", "--movie", "1"], "model", True),
    ("recommend", ["--model", "{model}", "--custom-ratings", "{custom}", "--output", "{out}"], "model", False),
    ("similar", ["--model", "{model}", "--movie", "1"], "model", False),
    # an output path that is an existing file
    ("ingest", ["--source", "{good}", "--output", "{file}"], "existing file", True),
    ("eda", ["--source", "{good}", "--output", "{file}"], "existing file", True),
    ("train_als", ["--source", "{good}", "--output", "{file}"], "existing file", True),
    ("tune_als", ["--source", "{good}", "--output", "{file}"], "existing file", True),
    ("recommend", ["--model", "{model}", "--custom-ratings", "{custom}", "--output", "{file}"], "existing file",
     True),
    ("similar", ["--model", "{model}", "--movie", "1", "--output", "{file}"], "existing file", True),
    ("generate_synthetic", ["--ratings", "100", "--users", "10", "--movies", "20", "--output", "{file}"],
     "existing file", True),
    # invalid values
    ("train_als", ["--rank", "0", "--output", "{out}"], "--rank", True),
    ("train_als", ["--reg-param", "-0.1", "--output", "{out}"], "--reg-param", True),
    ("train_als", ["--max-iter", "0", "--output", "{out}"], "--max-iter", True),
    ("train_als", ["--dataset", "ml-99m", "--output", "{out}"], "ml-99m", True),
    ("tune_als", ["--grid", "rank=0", "--output", "{out}"], "rank", True),
    ("tune_als", ["--grid", "reg_param=-1", "--output", "{out}"], "reg_param", True),
    ("ingest", ["--dataset", "ml-99m", "--output", "{out}"], "ml-99m", True),
    ("eda", ["--top-n", "0", "--output", "{out}"], "--top-n", True),
    ("recommend", ["--top-n", "0", "--custom-ratings", "{custom}", "--output", "{out}"], "--top-n", True),
    ("similar", ["--top-n", "0", "--movie", "1"], "--top-n", True),
    ("generate_synthetic", ["--ratings", "0", "--output", "{out}"], "--ratings", True),
    ("generate_synthetic", ["--users", "-3", "--output", "{out}"], "--users", True),
]


def _audit_id(case) -> str:
    job, argv, _, _ = case
    return f"{job}:{' '.join(a for a in argv if not a.startswith('{') or a == '{file}')}"


@pytest.mark.parametrize("case", AUDIT, ids=[_audit_id(c) for c in AUDIT])
def test_every_job_refuses_bad_input_in_one_line(case, bad, job_session, capsys, tmp_path):
    job, argv, mention, before_spark = case
    module = importlib.import_module(f"jobs.{job}")
    out = tmp_path / "out"
    argv = [arg.format(**bad, out=out) for arg in argv]
    try:
        code = module.main(argv)
    except SystemExit as exc:  # argparse refuses flag values itself
        code = exc.code
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE, err
    assert "Traceback" not in err and "\tat " not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not _LOG_LINE.match(line)]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith(f"{module.PROG}: error: "), line
    assert "--verbose for the stack trace" not in line, line  # an error nobody anticipated
    assert mention in line, line
    if before_spark:
        assert job_session == [], f"{job} started Spark before refusing: {line}"
    assert not out.exists(), "a refused run left an output"


@pytest.mark.slow
def test_through_spark_submit_a_broken_model_is_one_line(bad, tmp_path):
    """A refusal as a person sees it: the real wrapper, a real JVM and session,
    Spark's own logging, and the driver's stderr merged into spark-submit's
    output. (The in-process cases above cover every job; each of these costs a
    JVM start, so there is one.)"""
    out = tmp_path / "out"
    result = run_submit(
        ["--master", "local[1]", "--driver-memory", "1g", "--conf", "spark.ui.enabled=false",
         str(ROOT / "jobs" / "recommend.py"), "--model", bad["model"], "--custom-ratings", bad["custom"],
         "--output", str(out)],
        tmp_path, timeout=300,
    )  # fmt: skip
    text = result.stdout + result.stderr
    assert result.returncode == cli.EXIT_USAGE, text[-4000:]
    assert "Traceback" not in text and "\tat " not in text and "Exception" not in text, text[-4000:]
    errors = [line for line in text.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith("recommend: error: "), text[-4000:]
    assert "model" in errors[0]
    assert not out.exists()
