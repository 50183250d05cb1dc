"""jobs/train_als.py: bad flags and config values are refused in one line before Spark starts."""

from __future__ import annotations

import pytest

from jobs import train_als as job
from movierec_spark import cli


def _exit_code(argv):
    """The job's exit code; flag errors exit from argparse, the rest return."""
    try:
        return job.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rank", "0"], "--rank"),
        (["--reg-param", "-1"], "--reg-param"),
        (["--test-fraction", "1.5"], "--test-fraction"),
        (["--models", "als,magic"], "magic"),
        (["--train-ratings", "/nonexistent/u1.base", "--test-ratings", "/nonexistent/u1.test"], "does not exist"),
        (["--train-ratings", __file__], "--test-ratings"),
    ],
)
def test_bad_values_are_refused_in_one_line_before_spark(argv, message, capsys):
    assert _exit_code(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_values_in_a_config_file_are_refused(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[als]\nrank = 0\n")
    assert _exit_code(["--config", str(bad)]) == cli.EXIT_USAGE
    assert "rank" in capsys.readouterr().err
