"""Bad arguments and inputs end in one clear line and a non-zero exit code (issue 7).

Through ./spark-submit.sh, Spark's PythonRunner merges the Python driver's
stderr into spark-submit's stdout, so these tests look at both streams
together: what a person sees in the terminal.
"""

from __future__ import annotations

import pytest

from movierec_spark import cli
from tests.cluster import ROOT, run_submit


def test_a_bad_flag_is_one_line_naming_the_flag_and_help(capsys):
    parser = cli.make_parser("job.py", "test")
    cli.add_flag(parser, "--rank", "als.rank", type=cli.positive_int)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--rank", "0"])
    assert exit_info.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.splitlines() == ["job.py: error: argument --rank: must be 1 or more, got 0 (see job.py --help)"]


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
