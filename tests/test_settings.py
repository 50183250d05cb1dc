"""movierec_spark.settings: the toml and the code agree, and every bad value is one line (no Spark)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from movierec_spark import MovieRecError, cli
from movierec_spark.config import load_config, merge, tomllib
from movierec_spark.settings import SECTIONS, Settings, parse_section, parse_settings

SHIPPED = Path(__file__).resolve().parent.parent / "conf" / "movierec.toml"

# Keys the shipped file leaves out on purpose (TOML has no null): set by a
# flag, or falling back on another section's value when unset.
OPTIONAL = {
    "data": {"source", "ingested_dir"},
    "implicit": {"num_user_blocks", "num_item_blocks", "checkpoint_interval", "seed"},
    "synthetic": {"output_dir"},
    "tune": {
        "explicit_max_iter", "explicit_user_damping", "explicit_item_damping", "explicit_day_damping",
        "implicit_max_iter", "implicit_confidence", "grid",
    },
}


def _shipped() -> dict[str, dict[str, Any]]:
    with SHIPPED.open("rb") as fh:
        return tomllib.load(fh)


def _typed(value: Any) -> Any:
    """``value`` with its type, all the way down: 10 and 10.0 differ, as do [1] and [1.0]."""
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, value)


def _refusal(cfg_overlay: dict[str, dict[str, Any]], flags: dict[str, str] | None = None) -> str:
    with pytest.raises(MovieRecError) as refused:
        parse_settings(merge(load_config(), cfg_overlay), flags)
    message = str(refused.value)
    assert len(message.splitlines()) == 1, message
    return message


# --- the shipped file and the code cannot disagree ---


def test_the_shipped_file_has_every_section_and_no_other():
    assert list(_shipped()) == list(Settings.model_fields)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_key_of_the_shipped_file_is_a_field_and_every_field_a_key(section):
    fields = SECTIONS[section].model_fields
    in_file = set(_shipped()[section])
    assert in_file - set(fields) == set(), "keys of the toml the settings do not know"
    assert set(fields) - in_file == OPTIONAL.get(section, set()), "fields missing from the toml"
    assert {k for k, f in fields.items() if f.default is None} == OPTIONAL.get(section, set())


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_value_of_the_shipped_file_is_the_default(section):
    defaults = Settings().model_dump()[section]
    for key, value in _shipped()[section].items():
        assert _typed(value) == _typed(defaults[key]), f"[{section}] {key}: toml {value!r}, code {defaults[key]!r}"


def test_the_shipped_file_parses_to_the_defaults():
    # load_config resolves relative *_file / *_dir paths against conf/; nothing else may differ.
    parsed = parse_settings(load_config()).model_dump()
    defaults = Settings().model_dump()
    parsed["recommend"]["custom_ratings_file"] = defaults["recommend"]["custom_ratings_file"]
    assert parsed == defaults


def test_the_benchmark_config_is_valid():
    settings = parse_settings(load_config(SHIPPED.parent / "bench.toml"))
    assert settings.als.ratings_per_block == 2_000_000


# --- the library's defaults are the settings' ---


def test_model_parameters_default_to_their_sections():
    from movierec_spark.models.ease import EaseParams
    from movierec_spark.models.fit import AlsParams, BiasParams
    from movierec_spark.models.knn import KNNParams
    from movierec_spark.models.rp3beta import Rp3BetaParams

    defaults = Settings()
    assert AlsParams() == AlsParams(
        **{k: v for k, v in defaults.als.model_dump().items() if k not in ("ratings_per_block", "checkpoint_dir")},
        alpha=defaults.implicit.alpha,
    )
    assert BiasParams() == BiasParams(**defaults.bias.model_dump())
    assert EaseParams() == EaseParams(**defaults.ease.model_dump())
    assert Rp3BetaParams() == Rp3BetaParams(**defaults.rp3beta.model_dump())
    assert KNNParams() == KNNParams(kind="item", **defaults.item_knn.model_dump())


def test_estimators_for_tuning_default_to_the_sections():
    from movierec_spark.data.releases import HALF_STARS
    from movierec_spark.models.fit import BiasedALS
    from movierec_spark.models.tune import ImplicitALS

    defaults = Settings()
    explicit = BiasedALS(scale=HALF_STARS)
    assert explicit.als_params().rank == defaults.als.rank and explicit.als_params().reg_param == defaults.als.reg_param
    assert explicit.bias_params().day_bias == defaults.bias.day_bias
    implicit = ImplicitALS(scale=HALF_STARS)
    assert (implicit.als_params().rank, implicit.als_params().alpha) == (defaults.implicit.rank, defaults.implicit.alpha)
    assert implicit.getOrDefault("k") == defaults.evaluate.k


def test_settings_holders_are_the_sections():
    from movierec_spark.data.synthetic import SyntheticSpec
    from movierec_spark.serving.personal import RecommendSettings

    assert RecommendSettings() == Settings().recommend
    synthetic = Settings().synthetic
    spec = SyntheticSpec()
    assert (spec.ratings, spec.users, spec.movies, spec.seed) == (
        synthetic.ratings, synthetic.users, synthetic.movies, synthetic.seed,
    )


def test_choices_are_the_librarys():
    from typing import get_args

    from movierec_spark import settings as S
    from movierec_spark.evaluation import split
    from movierec_spark.models import ease, fit, knn, topn_blend, tune
    from movierec_spark.serving import personal

    assert get_args(S.SplitMethod) == split.METHODS
    assert get_args(S.Solver) == (fit.SOLVER_AUTO, fit.SOLVER_MLLIB, fit.SOLVER_DRIVER)
    assert get_args(S.Confidence) == fit.CONFIDENCES
    assert get_args(S.Similarity) == (knn.PEARSON_BASELINE, knn.PEARSON, knn.COSINE)
    assert get_args(S.Diagonal) == ease.DIAGONALS
    assert get_args(S.Normalise) == topn_blend.NORMALISATIONS
    assert get_args(S.RecommendMethod) == (personal.METHOD_FOLDIN, personal.METHOD_RETRAIN)
    assert (get_args(S.TuneMode), get_args(S.TuneMethod)) == (tune.MODES, tune.METHODS)


def test_model_names_are_the_registrys():
    from typing import get_args

    from movierec_spark import settings as S
    from movierec_spark.models import registry as R

    assert set(get_args(S.ModelName)) == set(R.MODEL_NAMES)
    assert set(get_args(S.BlendMember)) == set(R.BLEND_MEMBERS)
    assert set(get_args(S.TopNMember)) == set(R.TOPN_MEMBERS)
    assert sorted(S.CompareModelsSettings().models) == sorted(R.MODEL_NAMES)


# --- unknown names ---


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"als": {"rnak": 50}}, "unknown key [als] rnak (did you mean rank?)"),
        ({"split": {"test_fration": 0.1}}, "unknown key [split] test_fration (did you mean test_fraction?)"),
        ({"tune": {"explicit_rnak": [10]}}, "unknown key [tune] explicit_rnak (did you mean explicit_rank?)"),
        ({"recommend": {"topn": 5}}, "unknown key [recommend] topn (did you mean top_n?)"),
        ({"spilt": {"seed": 1}}, "unknown section [spilt] (did you mean [split]?)"),
        ({"als_implicit": {}}, "unknown section [als_implicit] (did you mean [implicit]?)"),
        ({"evaluation": {"k": 5}}, "unknown section [evaluation] (did you mean [evaluate]?)"),
    ],
)
def test_unknown_names_are_refused_with_the_closest_valid_one(overlay, message):
    assert _refusal(overlay) == message


def test_an_unknown_name_with_nothing_close_lists_the_valid_ones():
    assert _refusal({"als": {"xyzzy": 1}}).startswith("unknown key [als] xyzzy (choose from rank, max_iter, reg_param,")
    assert _refusal({"qqq": {}}).startswith("unknown section [qqq] (choose from [data], [split], [bias],")


# --- types ---


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"als": {"rank": "20"}}, "[als] rank must be a whole number, got '20'"),
        ({"als": {"rank": 20.0}}, "[als] rank must be a whole number, got 20.0"),
        ({"als": {"reg_param": "0.1"}}, "[als] reg_param must be a number, got '0.1'"),
        ({"bias": {"day_bias": 1}}, "[bias] day_bias must be true or false, got 1"),
        ({"blend": {"support": "yes"}}, "[blend] support must be true or false, got 'yes'"),
        ({"data": {"dataset": 100}}, "[data] dataset must be text in quotes, got 100"),
        ({"train_als": {"models": "als"}}, "[train_als] models must be a list, got 'als'"),
        ({"eda": {"top_shares": [0.1, "half"]}}, "[eda] top_shares must each be a number, got 'half'"),
        ({"als": {"reg_param": float("nan")}}, "[als] reg_param must be a finite number, got nan"),
        ({"recommend": {"liked_rating": float("inf")}}, "[recommend] liked_rating must be a finite number, got inf"),
    ],
)
def test_wrong_types_are_refused(overlay, message):
    assert _refusal(overlay) == message


def _number_fields():
    for section, model in SECTIONS.items():
        for key, field in model.model_fields.items():
            if field.annotation in (int, float, int | None, float | None):
                yield section, key


@pytest.mark.parametrize("section, key", list(_number_fields()))
def test_a_bool_is_not_a_number_anywhere(section, key):
    message = _refusal({section: {key: True}})
    assert message.startswith(f"[{section}] {key} must be a ") and message.endswith("got true"), message


def test_a_whole_number_is_a_number():
    settings = parse_settings(merge(load_config(), {"als": {"reg_param": 1}, "eda": {"top_shares": [1]}}))
    assert settings.als.reg_param == 1.0 and isinstance(settings.als.reg_param, float)
    assert settings.eda.top_shares == [1.0]


# --- ranges and choices ---


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"als": {"rank": 0}}, "[als] rank must be 1 or more, got 0"),
        ({"als": {"seed": -5}}, "[als] seed must be from 0 to 2147483647, got -5"),
        ({"split": {"seed": 2**31}}, "[split] seed must be from 0 to 2147483647, got 2147483648"),
        ({"split": {"test_fraction": 1.0}}, "[split] test_fraction must be between 0 and 1 (exclusive), got 1.0"),
        ({"blend": {"folds": 1}}, "[blend] folds must be 2 or more, got 1"),
        ({"ease": {"reg_param": 0}}, "[ease] reg_param must be above 0, got 0"),
        ({"ease": {"dropout": 1.0}}, "[ease] dropout must be 0 or more and below 1, got 1.0"),
        ({"ease": {"max_items": 20001}}, "[ease] max_items must be from 1 to 20000, got 20001"),
        ({"rp3beta": {"beta": -0.1}}, "[rp3beta] beta must be 0 or more, got -0.1"),
        ({"eda": {"top_shares": [0.1, 1.5]}}, "[eda] top_shares must each be above 0 and 1 or less, got 1.5"),
        ({"tune": {"explicit_rank": [10, 0]}}, "[tune] explicit_rank must each be 1 or more, got 0"),
        ({"tune": {"implicit_alpha": []}}, "[tune] implicit_alpha must be a non-empty list, got []"),
        ({"synthetic": {"movies": 1}}, "[synthetic] movies must be from 2 to 2147483647, got 1"),
        ({"item_knn": {"join_cap": 1}}, "[item_knn] join_cap must be 0 (no cap) or 2 or more, got 1"),
        ({"als": {"solver": "numpy"}}, "[als] solver must be 'auto', 'mllib' or 'driver', got 'numpy'"),
        ({"split": {"method": "sideways"}}, "[split] method must be 'random', 'hash', 'stratified', "
                                            "'chronological' or 'predefined', got 'sideways'"),
        ({"blend": {"members": ["als", "popularity"]}},
         "[blend] members must each be 'bias', 'als', 'item_knn', 'user_knn', 'implicit' or 'ease', got 'popularity'"),
        ({"data": {"dataset": "ml-99m"}}, "[data] dataset must be one of ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, "
                                          "ml-32m, ml-latest, ml-latest-small, got 'ml-99m'"),
    ],
)
def test_values_out_of_range_are_refused_with_what_is_allowed(overlay, message):
    assert _refusal(overlay) == message


@pytest.mark.parametrize(
    "overlay, message",
    [
        ({"split": {"method": "predefined", "train_ratings_file": "u1.base"}},
         "[split] a predefined split needs both train_ratings_file and test_ratings_file; test_ratings_file is empty"),
        ({"split": {"test_ratings_file": "u1.test"}},  # a file alone implies the predefined split
         "[split] a predefined split needs both train_ratings_file and test_ratings_file; train_ratings_file is empty"),
        ({"als": {"solver": "driver", "nonnegative": True}},
         "[als] solver 'driver' cannot fit nonnegative factors; set solver to 'mllib' or 'auto'"),
        ({"topn_blend": {"weights": [1.0]}}, "[topn_blend] weights must hold one weight per member (2), got 1"),
        ({"topn_blend": {"members": ["ease", "ease"], "weights": [1.0, 1.0]}},
         "[topn_blend] members names a model twice: ['ease', 'ease']"),
        ({"blend": {"members": ["als", "als"]}}, "[blend] members must name 2 or more different models, got ['als', 'als']"),
    ],
)
def test_settings_that_disagree_with_each_other_are_refused(overlay, message):
    assert _refusal(overlay) == message


def test_good_values_pass():
    settings = parse_settings(merge(load_config(), {
        "split": {"method": "predefined", "train_ratings_file": "a", "test_ratings_file": "b", "seed": 0},
        "als": {"seed": 2**31 - 1, "solver": "mllib", "nonnegative": True},
        "topn_blend": {"members": ["ease"], "weights": [1]},
        "item_knn": {"join_cap": 2},
    }))  # fmt: skip
    assert settings.split.predefined and settings.als.seed == 2**31 - 1 and settings.topn_blend.weights == [1.0]


# --- library parameters share the checks ---


def test_library_parameters_are_checked_by_their_sections():
    from movierec_spark.models.ease import EaseParams
    from movierec_spark.models.fit import AlsParams

    with pytest.raises(MovieRecError, match=r"^\[als\] rank must be 1 or more, got 0$"):
        AlsParams(rank=0).validate()
    with pytest.raises(MovieRecError, match=r"^\[implicit\] alpha must be 0 or more, got -1.0$"):
        AlsParams(alpha=-1.0).validate()
    with pytest.raises(MovieRecError, match=r"^\[ease\] dropout must be 0 or more and below 1, got 1.0$"):
        EaseParams.from_config({"dropout": 1.0})
    with pytest.raises(MovieRecError, match=r"^unknown section \[spilt\] \(did you mean \[split\]\?\)$"):
        parse_section("spilt", {})


# --- files and flags are checked the same way, before Spark ---


def _parser():
    parser = cli.make_parser("job", "test")
    cli.add_flag(parser, "--rank", "als.rank", type=cli.whole_number)
    cli.add_flag(parser, "--split-seed", "split.seed", type=cli.whole_number)
    return parser


@pytest.mark.parametrize(
    "text, message",
    [
        ("[als]\nrnak = 50\n", "unknown key [als] rnak (did you mean rank?)"),
        ("[spilt]\nseed = 1\n", "unknown section [spilt] (did you mean [split]?)"),
        ("[als]\nrank = 0\n", "[als] rank must be 1 or more, got 0"),
        ("[bias]\nday_bias = 1\n", "[bias] day_bias must be true or false, got 1"),
    ],
)
def test_a_config_file_with_a_bad_key_or_value_is_refused(tmp_path, text, message):
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(MovieRecError) as refused:
        cli.build_config(_parser().parse_args(["--config", str(bad)]))
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rank", "0"], "[als] rank (--rank) must be 1 or more, got 0"),
        (["--rank=-2"], "[als] rank (--rank) must be 1 or more, got -2"),
        (["--split-seed", "-5"], "[split] seed (--split-seed) must be from 0 to 2147483647, got -5"),
    ],
)
def test_flags_are_checked_as_their_keys_and_named(argv, message):
    with pytest.raises(MovieRecError) as refused:
        cli.build_config(_parser().parse_args(argv))
    assert str(refused.value) == message


def test_a_file_value_is_not_blamed_on_a_flag(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[als]\nrank = 0\n")
    with pytest.raises(MovieRecError, match=r"^\[als\] rank must be 1 or more, got 0$"):
        cli.build_config(_parser().parse_args(["--config", str(bad), "--split-seed", "3"]))


@pytest.fixture
def no_spark(monkeypatch):
    def build_session(app_name):
        raise AssertionError(f"{app_name} started Spark before refusing")

    monkeypatch.setattr("movierec_spark.session.build_session", build_session)


@pytest.mark.parametrize(
    "job, argv, line",
    [
        ("train_als", ["--seed", "-5"], "train_als: error: [split] seed (--seed) must be from 0 to 2147483647, got -5"),
        ("train_als", ["--seed", "7", "--split-seed", "-1"],
         "train_als: error: [split] seed (--split-seed) must be from 0 to 2147483647, got -1"),
        ("tune_als", ["--seed", "-5"], "tune_als: error: [split] seed (--seed) must be from 0 to 2147483647, got -5"),
        ("eda", ["--top-n", "0"], "eda.py: error: [eda] top_n (--top-n) must be 1 or more, got 0"),
        ("generate_synthetic", ["--users", "-3", "--output", "x"],
         "generate_synthetic.py: error: [synthetic] users (--users) must be from 1 to 2147483647, got -3"),
    ],
)
def test_jobs_refuse_bad_flags_in_one_line_before_spark(job, argv, line, no_spark, capsys):
    import importlib

    module = importlib.import_module(f"jobs.{job}")
    assert module.main(argv) == cli.EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize("job", ["train_als", "tune_als", "eda", "ingest", "recommend", "similar", "generate_synthetic"])
def test_every_job_refuses_a_misspelt_config_file_before_spark(job, tmp_path, no_spark, capsys):
    import importlib

    bad = tmp_path / "bad.toml"
    bad.write_text("[als]\nrnak = 50\n")
    module = importlib.import_module(f"jobs.{job}")
    assert module.main(["--config", str(bad)]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.splitlines() == [f"{module.PROG}: error: unknown key [als] rnak (did you mean rank?)"]
