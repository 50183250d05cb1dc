"""Issue 20: bad settings, paths and outputs are refused in one line before any JVM starts.

Spark-free: ``build_session`` is replaced by one that fails the test, so
every case here proves the refusal came before Spark. Each case asserts
the whole line a person sees.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from jobs import compare_models, recommend, train_als, tune_als
from movierec_spark import MovieRecError, cli, io
from movierec_spark.data.releases import HALF_STARS
from movierec_spark.data.titles import Movie, TitleIndex
from movierec_spark.serving import command
from movierec_spark.serving.custom import read_custom_ratings
from tests.job_logging import keep_logging  # noqa: F401 (a fixture)


@pytest.fixture(autouse=True)
def no_spark(monkeypatch, keep_logging):
    def build_session(app_name):
        raise AssertionError(f"{app_name} started Spark before refusing")

    monkeypatch.setattr("movierec_spark.session.build_session", build_session)


def _refusal(job, argv, capsys) -> str:
    """The one line ``job.main(argv)`` prints, after checking its exit code."""
    try:
        code = job.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_USAGE, err
    assert len(err) == 1, err
    return err[0]


# --- item 2 and item 1's --seed: settings.py refuses them (verified here) ---


@pytest.mark.parametrize(
    "toml, line",
    [
        ("[als]\nrnak = 50\n", "train_als: error: unknown key [als] rnak (did you mean rank?)"),
        ("[spilt]\nseed = 1\n", "train_als: error: unknown section [spilt] (did you mean [split]?)"),
        ("[recommend]\ntop_m = 5\n", "train_als: error: unknown key [recommend] top_m (did you mean top_n?)"),
    ],
)
def test_misspelt_keys_and_sections_are_refused_with_the_closest_name(tmp_path, capsys, toml, line):
    settings = tmp_path / "mine.toml"
    settings.write_text(toml)
    assert _refusal(train_als, ["--config", settings, "--output", tmp_path / "out"], capsys) == line


@pytest.mark.parametrize(
    "argv, line",
    [
        (["--seed", "-5"], "train_als: error: [split] seed (--seed) must be from 0 to 2147483647, got -5"),
        (["--split-seed", "2147483648"],
         "train_als: error: [split] seed (--split-seed) must be from 0 to 2147483647, got 2147483648"),
    ],
)
def test_a_seed_out_of_range_is_refused_naming_its_flag(tmp_path, capsys, argv, line):
    assert _refusal(train_als, [*argv, "--output", tmp_path / "out"], capsys) == line


# --- item 4: a folder where a file is expected, a file where a folder is ---


@pytest.mark.parametrize(
    "job, argv, what",
    [
        (train_als, ["--custom-ratings", "{folder}"], "custom ratings file {folder}"),
        (recommend, ["--custom-ratings", "{folder}"], "custom ratings file {folder}"),
        (command, ["--custom-ratings", "{folder}"], "custom ratings file {folder}"),
        (train_als, ["--train-ratings", "{folder}", "--test-ratings", "{file}"], "--train-ratings file {folder}"),
        (compare_models, ["--train-ratings", "{file}", "--test-ratings", "{folder}"], "--test-ratings file {folder}"),
        (tune_als, ["--train-ratings", "{folder}", "--test-ratings", "{file}"], "--train-ratings file {folder}"),
    ],
)
def test_a_folder_given_as_a_file_is_called_a_folder(tmp_path, capsys, job, argv, what):
    folder, file = tmp_path / "a-folder", tmp_path / "u1.test"
    folder.mkdir()
    file.write_text("1\t1\t5\t0\n")
    argv = [a.format(folder=folder, file=file) for a in argv]
    line = _refusal(job, [*argv, "--output", tmp_path / "out"], capsys)
    assert line == f"{job.PROG}: error: {what.format(folder=folder)} is a folder, not a file; give the file's path"
    assert not (tmp_path / "out").exists()


def test_a_folder_given_as_the_settings_file_is_called_a_folder(tmp_path, capsys):
    line = _refusal(train_als, ["--config", tmp_path, "--output", tmp_path / "out"], capsys)
    assert line == f"train_als: error: config file {tmp_path} is a folder, not a file; give the TOML file's path"


def test_a_file_given_as_the_ingested_folder_is_called_a_file(tmp_path, capsys):
    report = tmp_path / "ingest_report.json"
    report.write_text("{}\n")
    line = _refusal(train_als, ["--ingested", report, "--output", tmp_path / "out"], capsys)
    assert line == (f"train_als: error: --ingested path {report} is a file, not a folder; "
                    "give jobs/ingest.py's output folder")


def test_a_custom_ratings_folder_read_directly_is_called_a_folder(tmp_path):
    with pytest.raises(MovieRecError) as caught:
        read_custom_ratings(tmp_path, TitleIndex([]), HALF_STARS)
    assert str(caught.value) == f"custom ratings file {tmp_path} is a folder, not a file; give the file's path"


# --- item 4: a custom-ratings line over the CSV field limit names its line ---


@pytest.mark.parametrize(
    "lines, bad_line",
    [
        (["user,movie,rating", "me,Heat,4", "me," + "x" * 200_000 + ",4"], 3),
        (["user,movie,rating", "# a comment", "", "me,Heat,4", 'me,"' + "y" * 200_000 + '",4'], 5),
        # A quote never closed swallows the rest of the file: the line it opened on.
        (["user,movie,rating", 'me,"Heat,4', *(["z" * 1000] * 200)], 2),
    ],
)
def test_a_field_over_the_csv_limit_names_its_line(tmp_path, lines, bad_line):
    path = tmp_path / "mine.csv"
    path.write_text("\n".join(lines) + "\n")
    index = TitleIndex([Movie(6, "Heat", 1995)])
    with pytest.raises(MovieRecError) as caught:
        read_custom_ratings(path, index, HALF_STARS)
    assert str(caught.value) == (
        f"custom ratings file {path} is not valid CSV: line {bad_line}: field larger than field limit (131072)"
    )


# --- item 4: an output folder that cannot be written is refused before the work ---


def test_an_output_under_a_file_is_refused_before_spark(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    out = blocker / "deeper" / "out"
    line = _refusal(train_als, ["--custom-ratings", "", "--output", out], capsys)
    assert line == f"train_als: error: output folder {out} cannot be made: {blocker} is a file, not a folder"


def _unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot add to: a 0555 folder, else (as root) /sys; skip if neither is."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    for candidate in (folder, Path("/sys")):
        try:
            os.rmdir(tempfile.mkdtemp(dir=candidate))
        except OSError:
            return candidate
    pytest.skip("no folder here refuses this user's writes")


@pytest.mark.parametrize("job", [train_als, compare_models, tune_als])
def test_an_output_whose_folder_is_not_writable_is_refused_before_spark(tmp_path, capsys, job):
    parent = _unwritable_folder(tmp_path)
    out = parent / "movierec-out" / "run"
    line = _refusal(job, ["--custom-ratings", "", "--output", out] if job is train_als else ["--output", out],
                    capsys)
    assert line.startswith(f"{job.PROG}: error: output folder {out} cannot be written: {parent} is not writable ("), line
    assert not out.exists()


def test_a_writable_output_passes_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "new" / "out"
    assert io.check_output_dir(out) == out
    assert list(tmp_path.iterdir()) == []
