"""Config layering, flag types, and atomic output publishing (no Spark)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from movierec_spark import MovieRecError
from movierec_spark import cli
from movierec_spark.config import dumps_config, load_config, merge, read_config_file
from movierec_spark.io import publish_dir, recover_output, staged_output


def test_shipped_defaults_load_and_resolve_paths_against_conf():
    cfg = load_config()
    assert cfg["data"]["dataset"] == "ml-latest-small"
    custom = Path(cfg["recommend"]["custom_ratings_file"])
    assert custom.is_absolute() and custom.exists()


def test_overlay_file_wins_and_none_keeps_default(tmp_path):
    overlay = tmp_path / "best.toml"
    overlay.write_text("[als]\nrank = 42\n")
    cfg = load_config(overlay)
    assert cfg["als"]["rank"] == 42
    assert cfg["als"]["reg_param"] == load_config()["als"]["reg_param"]
    assert merge(cfg, {"als": {"rank": None}})["als"]["rank"] == 42


def test_dumped_config_reads_back(tmp_path):
    payload = {"als": {"rank": 12, "reg_param": 0.05, "nonnegative": False, "name": 'a "q"'}}
    path = tmp_path / "c.toml"
    path.write_text(dumps_config(payload, header="found by tune_als"))
    assert read_config_file(path) == payload


def test_bad_config_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[als\nrank=")
    with pytest.raises(MovieRecError, match="not valid TOML"):
        read_config_file(bad)
    with pytest.raises(MovieRecError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize(
    "kind, text",
    [(cli.whole_number, "x"), (cli.whole_number, "2.5"), (cli.number, "ten"), (cli.number, "")],
)
def test_flag_types_refuse_what_is_not_a_number(kind, text):
    with pytest.raises(argparse.ArgumentTypeError):
        kind(text)


def test_flags_override_config_keys_and_are_checked_as_those_keys():
    parser = cli.make_parser("job", "test")
    cli.add_flag(parser, "--rank", "als.rank", type=cli.whole_number)
    cli.add_data_flags(parser)
    args = parser.parse_args(["--rank", "7", "--dataset", "ml-100k"])
    cfg = cli.build_config(args)
    assert cfg["als"]["rank"] == 7 and cfg["data"]["dataset"] == "ml-100k"
    # The range is the setting's: the flag only turns text into a number.
    with pytest.raises(MovieRecError, match=r"^\[als\] rank \(--rank\) must be 1 or more, got 0$"):
        cli.build_config(parser.parse_args(["--rank", "0"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["--rank", "x"])
    with pytest.raises(SystemExit):  # no abbreviations: a typo is an error
        parser.parse_args(["--ran", "3"])


def test_staged_output_replaces_only_on_success(tmp_path):
    final = tmp_path / "out"
    with staged_output(final) as stage:
        (stage / "table").write_text("good")
    assert (final / "table").read_text() == "good"
    with pytest.raises(RuntimeError):
        with staged_output(final) as stage:
            (stage / "table").write_text("half")
            raise RuntimeError("killed")
    assert (final / "table").read_text() == "good"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_output_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(MovieRecError, match="existing file"):
        with staged_output(target):
            pass


def test_publish_cut_between_renames_is_recovered(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "t").write_text("old")
    aside = tmp_path / ".out.previous-abc"
    final.rename(aside)  # what a kill between the two renames leaves behind
    recover_output(final)
    assert (final / "t").read_text() == "old" and not aside.exists()
    staging = tmp_path / "new"
    staging.mkdir()
    (staging / "t").write_text("new")
    publish_dir(staging, final)
    assert (final / "t").read_text() == "new"
