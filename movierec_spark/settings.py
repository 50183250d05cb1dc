"""Typed settings: every config key, its type, its range and its default, once.

``conf/movierec.toml`` holds the same values with a comment each
(tests/test_settings.py proves the file and these models agree). A job
loads the toml, overlays ``--config FILE`` and its flags
(:mod:`movierec_spark.config`, :mod:`movierec_spark.cli`), then
:func:`parse_settings` checks the merged mapping before any JVM starts:
an unknown section or key, a wrong type or a value out of range is a
:class:`~movierec_spark.MovieRecError` of one line that names
``[section] key``, the bad value and what is allowed.

One model per section, frozen, ``extra="forbid"``, strict types: a bool
is not a number and ``"3"`` is not a whole number, but a whole number is
accepted where a number is expected (``reg_param = 1``). A key whose
default is ``None`` is optional: TOML has no null, so the shipped file
leaves it out (flags such as ``--source``, or ``[implicit]`` keys that fall
back on ``[als]``).

The library's parameter classes (``AlsParams``, ``EaseParams``, ...) take
their defaults from these models and check themselves with
:func:`parse_section`, so a fit called from a notebook gets the values and
the checks a job gets. Relative ``*_file`` / ``*_dir`` defaults are relative
to ``conf/``: config.py resolves them when it reads the toml.

Importing this module starts no Spark.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, ClassVar, Literal, Mapping, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from movierec_spark import MovieRecError
from movierec_spark.data.releases import RELEASES

# Spark's seeds and ids are Java ints; a negative seed fails inside the fit.
INT32_MAX = 2**31 - 1

Count = Annotated[int, Field(ge=1)]  # a whole number of 1 or more
NonNegativeInt = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=INT32_MAX)]
Amount = Annotated[float, Field(ge=0)]  # finite (no inf or nan: see _Section)
Fraction = Annotated[float, Field(gt=0, lt=1)]
Counts = Annotated[list[Count], Field(min_length=1)]  # values to try
Amounts = Annotated[list[Amount], Field(min_length=1)]

SplitMethod = Literal["random", "hash", "stratified", "chronological", "predefined"]
Solver = Literal["auto", "mllib", "driver"]
Similarity = Literal["pearson_baseline", "pearson", "cosine"]
Confidence = Literal["binary", "rating"]
Diagonal = Literal["zero", "free"]
Normalise = Literal["none", "max", "zscore", "rrf"]
RecommendMethod = Literal["foldin", "retrain"]
TuneMode = Literal["explicit", "implicit"]
TuneMethod = Literal["tvs", "cv"]
# The registered models (movierec_spark.models.registry), those the rating
# blend can combine, those the top-N blend can combine.
ModelName = Literal[
    "global_mean", "bias", "als", "item_knn", "user_knn", "blend", "implicit", "ease", "rp3beta", "topn_blend",
    "popularity",
]
BlendMember = Literal["bias", "als", "item_knn", "user_knn", "implicit", "ease"]
TopNMember = Literal["implicit", "ease", "rp3beta", "popularity"]


class _Section(BaseModel):
    """One ``[section]`` of the config; ``SECTION`` is its name in the toml."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, validate_default=True
    )
    SECTION: ClassVar[str] = ""

    @classmethod
    def from_config(cls, values: Mapping[str, Any]):
        """The section from a config mapping, checked (MovieRecError on one line if not)."""
        return _validated(cls, values, (cls.SECTION,))


# --- the sections, in conf/movierec.toml's order ---


class DataSettings(_Section):
    SECTION = "data"
    dataset: str = "ml-latest-small"
    cache_dir: str = ""
    allow_unverified_download: bool = False
    # Flags only (--source, --ingested).
    source: str | None = None
    ingested_dir: str | None = None

    @field_validator("dataset")
    @classmethod
    def _known_release(cls, name: str) -> str:
        if name not in RELEASES:
            raise ValueError(f"must be one of {', '.join(RELEASES)}, got {name!r}")
        return name


class SplitSettings(_Section):
    SECTION = "split"
    method: SplitMethod = "random"
    test_fraction: Fraction = 0.2
    seed: Seed = 42
    partitions: Count = 16
    train_ratings_file: str = ""
    test_ratings_file: str = ""

    @property
    def predefined(self) -> bool:
        """Either ratings file given implies the predefined split."""
        return self.method == "predefined" or bool(self.train_ratings_file or self.test_ratings_file)

    @model_validator(mode="after")
    def _both_files(self):
        missing = [key for key in ("train_ratings_file", "test_ratings_file") if not getattr(self, key)]
        if self.predefined and missing:
            raise ValueError(
                f"a predefined split needs both train_ratings_file and test_ratings_file; {missing[0]} is empty"
            )
        return self


class BiasSettings(_Section):
    SECTION = "bias"
    user_damping: Amount = 10.0
    item_damping: Amount = 10.0
    bias_iterations: Count = 2
    day_bias: bool = True
    day_damping: Amount = 10.0


class AlsSettings(_Section):
    SECTION = "als"
    rank: Count = 20
    max_iter: Count = 15
    reg_param: Amount = 0.16
    nonnegative: bool = False
    solver: Solver = "auto"
    num_user_blocks: Count = 10
    num_item_blocks: Count = 10
    ratings_per_block: NonNegativeInt = 0
    seed: Seed = 42
    checkpoint_interval: Count = 5
    checkpoint_dir: str = ""

    @model_validator(mode="after")
    def _driver_has_no_nnls(self):
        if self.solver == "driver" and self.nonnegative:
            raise ValueError("solver 'driver' cannot fit nonnegative factors; set solver to 'mllib' or 'auto'")
        return self


class _KnnSettings(_Section):
    similarity: Similarity = "pearson_baseline"
    k: Count = 40
    shrinkage: Amount = 100.0
    min_support: Count = 1
    join_cap: NonNegativeInt = 0

    @field_validator("join_cap")
    @classmethod
    def _cap_of_two_or_more(cls, cap: int) -> int:
        if cap == 1:
            raise ValueError("must be 0 (no cap) or 2 or more, got 1")
        return cap


class ItemKnnSettings(_KnnSettings):
    SECTION = "item_knn"


class UserKnnSettings(_KnnSettings):
    SECTION = "user_knn"


class BlendSettings(_Section):
    SECTION = "blend"
    members: list[BlendMember] = ["bias", "als", "item_knn", "user_knn"]
    validation_fraction: Fraction = 0.1
    folds: Annotated[int, Field(ge=2)] = 5
    ridge: Amount = 0.0001
    refit: bool = True
    support: bool = True

    @field_validator("members")
    @classmethod
    def _two_or_more(cls, members: list[str]) -> list[str]:
        if len(set(members)) < 2:
            raise ValueError(f"must name 2 or more different models, got {members!r}")
        return members


class ImplicitSettings(_Section):
    SECTION = "implicit"
    rank: Count = 100
    max_iter: Count = 15
    reg_param: Amount = 0.5
    alpha: Amount = 10.0
    confidence: Confidence = "binary"
    # Unset: [als]'s value.
    num_user_blocks: Count | None = None
    num_item_blocks: Count | None = None
    checkpoint_interval: Count | None = None
    seed: Seed | None = None


class EaseSettings(_Section):
    SECTION = "ease"
    reg_param: Annotated[float, Field(gt=0)] = 300.0
    # A dense max_items^2 Gram matrix and its inverse on the driver: 20000
    # movies is 3.2 GB in float64.
    max_items: Annotated[int, Field(ge=1, le=20000)] = 5000
    neighbours: Count = 200
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.75
    diagonal: Diagonal = "zero"


class Rp3BetaSettings(_Section):
    SECTION = "rp3beta"
    alpha: Annotated[float, Field(gt=0)] = 1.0
    beta: Amount = 0.5
    neighbours: Count = 200


class TopNBlendSettings(_Section):
    SECTION = "topn_blend"
    members: Annotated[list[TopNMember], Field(min_length=1)] = ["implicit", "ease"]
    weights: list[Amount] = [0.5, 0.5]
    normalise: Normalise = "max"

    @model_validator(mode="after")
    def _one_weight_per_member(self):
        if len(set(self.members)) != len(self.members):
            raise ValueError(f"members names a model twice: {self.members!r}")
        if len(self.weights) != len(self.members):
            raise ValueError(
                f"weights must hold one weight per member ({len(self.members)}), got {len(self.weights)}"
            )
        return self


class EvaluateSettings(_Section):
    SECTION = "evaluate"
    k: Count = 10
    predictions_sample: NonNegativeInt = 1000
    ranking_metrics: bool = True
    warm_metrics: bool = True


class TrainAlsSettings(_Section):
    SECTION = "train_als"
    models: Annotated[list[ModelName], Field(min_length=1)] = ["als"]
    output: str = "output/train_als"


class RecommendSettings(_Section):
    SECTION = "recommend"
    top_n: Count = 10
    all_users: bool = False
    custom_ratings_file: str = "custom_ratings.csv"
    model: str = "output/train_als/model"
    output: str = "output/recommend"
    min_ratings: NonNegativeInt = 20
    liked_rating: float = 4.0
    content_weight: Amount = 1.0
    similar_n: Count = 10
    method: RecommendMethod = "foldin"
    genres: list[str] = []


class SimilarSettings(_Section):
    SECTION = "similar"
    movie: str = ""
    output: str = ""


class SyntheticSettings(_Section):
    SECTION = "synthetic"
    ratings: Count = 25000095
    # Ids are 32-bit (ALS); a catalogue needs 2 movies for a user to choose.
    users: Annotated[int, Field(ge=1, le=INT32_MAX)] = 162541
    movies: Annotated[int, Field(ge=2, le=INT32_MAX)] = 59047
    seed: Seed = 42
    partitions: NonNegativeInt = 0
    # Flag only (--output).
    output_dir: str | None = None


class IngestSettings(_Section):
    SECTION = "ingest"
    output: str = "output/ingest"
    partial: bool = False


class EdaSettings(_Section):
    SECTION = "eda"
    output: str = "output/eda"
    min_user_ratings: NonNegativeInt = 20
    min_movie_ratings: NonNegativeInt = 10
    damping: Amount = 10.0
    top_n: Count = 20
    top_shares: Annotated[list[Annotated[float, Field(gt=0, le=1)]], Field(min_length=1)] = [0.01, 0.1, 0.2]
    max_listed_rows: Count = 100000


class TuneSettings(_Section):
    SECTION = "tune"
    mode: TuneMode = "explicit"
    method: TuneMethod = "tvs"
    train_ratio: Fraction = 0.8
    num_folds: Annotated[int, Field(ge=2)] = 3
    parallelism: Count = 2
    seed: Seed = 42
    output: str = "output/tune_als"
    # The grid: <mode>_<name> = values to try (movierec_spark.models.tune.GRID_PARAMS);
    # a name left unset keeps its own section's value.
    explicit_rank: Counts = [10, 20]
    explicit_max_iter: Counts | None = None
    explicit_reg_param: Amounts = [0.05, 0.1]
    explicit_user_damping: Amounts | None = None
    explicit_item_damping: Amounts | None = None
    explicit_day_damping: Amounts | None = None
    implicit_rank: Counts = [10, 20]
    implicit_max_iter: Counts | None = None
    implicit_reg_param: Amounts = [0.1, 1.0]
    implicit_alpha: Amounts = [1.0, 10.0]
    implicit_confidence: Annotated[list[Confidence], Field(min_length=1)] | None = None
    # Flag only: --grid NAME=V1,V2 entries (checked by movierec_spark.models.tune).
    grid: list[str] | None = None


class CompareModelsSettings(_Section):
    SECTION = "compare_models"
    models: Annotated[list[ModelName], Field(min_length=1)] = [
        "global_mean", "bias", "als", "item_knn", "user_knn", "implicit", "ease", "rp3beta", "popularity", "blend",
        "topn_blend",
    ]
    output: str = "output/compare_models"


class Settings(BaseModel):
    """Every section; built by :func:`parse_settings`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data: DataSettings = DataSettings()
    split: SplitSettings = SplitSettings()
    bias: BiasSettings = BiasSettings()
    als: AlsSettings = AlsSettings()
    item_knn: ItemKnnSettings = ItemKnnSettings()
    user_knn: UserKnnSettings = UserKnnSettings()
    blend: BlendSettings = BlendSettings()
    implicit: ImplicitSettings = ImplicitSettings()
    ease: EaseSettings = EaseSettings()
    rp3beta: Rp3BetaSettings = Rp3BetaSettings()
    topn_blend: TopNBlendSettings = TopNBlendSettings()
    evaluate: EvaluateSettings = EvaluateSettings()
    train_als: TrainAlsSettings = TrainAlsSettings()
    compare_models: CompareModelsSettings = CompareModelsSettings()
    recommend: RecommendSettings = RecommendSettings()
    similar: SimilarSettings = SimilarSettings()
    synthetic: SyntheticSettings = SyntheticSettings()
    ingest: IngestSettings = IngestSettings()
    eda: EdaSettings = EdaSettings()
    tune: TuneSettings = TuneSettings()


SECTIONS: dict[str, type[_Section]] = {
    name: field.annotation for name, field in Settings.model_fields.items()  # type: ignore[misc]
}


def parse_settings(cfg: Mapping[str, Mapping[str, Any]], flags: Mapping[str, str] | None = None) -> Settings:
    """Every section of ``cfg`` checked and typed; a MovieRecError of one line if one is bad.

    ``flags``: ``"section.key" -> flag`` for the keys set on the command
    line, so that the line names the flag a person typed too.
    """
    return _validated(Settings, cfg, (), flags)


def parse_section(name: str, values: Mapping[str, Any]) -> _Section:
    """Section ``name`` from ``values`` (keys not given: their defaults), checked."""
    if name not in SECTIONS:
        raise MovieRecError(f"unknown section [{name}]{_suggest(name, SECTIONS, '[{}]')}")
    return SECTIONS[name].from_config(values)


# --- one line per error ---


def _validated(model: type[BaseModel], values: Any, where: tuple[str, ...], flags: Mapping[str, str] | None = None):
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise MovieRecError(describe_error(exc.errors()[0], where, flags or {})) from None


def _suggest(name: str, choices, style: str = "{}") -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    if close:
        return f" (did you mean {style.format(close[0])}?)"
    return f" (choose from {', '.join(style.format(c) for c in choices)})"


def _shown(value: Any) -> str:
    """A value as a person wrote it: TOML's true/false, quoted text, numbers as they are."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def _range(ge=None, gt=None, le=None, lt=None) -> str:
    if ge is not None and le is not None:
        return f"from {ge} to {le}"
    if gt is not None and lt is not None:
        return f"between {gt} and {lt} (exclusive)"
    lower = f"{ge} or more" if ge is not None else f"above {gt}" if gt is not None else ""
    upper = f"{le} or less" if le is not None else f"below {lt}" if lt is not None else ""
    return " and ".join(part for part in (lower, upper) if part)


def _bounds(metadata) -> dict[str, Any]:
    return {
        bound: getattr(item, bound)
        for item in metadata
        for bound in ("ge", "gt", "le", "lt")
        if getattr(item, bound, None) is not None
    }


def _item_bounds(annotation: Any) -> dict[str, Any]:
    """The bounds of a list's items: ``list[Annotated[float, Field(gt=0)]]`` (or Optional) -> ``{"gt": 0}``."""
    for arg in get_args(annotation):
        if get_origin(arg) is Annotated:
            return _bounds(m for info in get_args(arg)[1:] for m in getattr(info, "metadata", ()))
        found = _item_bounds(arg)
        if found:
            return found
    return {}


def _whole_range(model: type[BaseModel] | None, key: str, item: bool) -> str:
    """The whole allowed range of ``model``'s field ``key`` or of its items ("" if none)."""
    field = model.model_fields.get(key) if model is not None else None
    if field is None:
        return ""
    return _range(**(_item_bounds(field.annotation) if item else _bounds(field.metadata)))


_ALLOWED = {
    "int_type": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "string_type": "text in quotes",
    "list_type": "a list",
    "model_type": "a [section] table of keys",
    "dict_type": "a [section] table of keys",
}
_BOUNDS = {"greater_than_equal": "ge", "greater_than": "gt", "less_than_equal": "le", "less_than": "lt"}


def describe_error(
    error: Mapping[str, Any], where: tuple[str, ...] = (), flags: Mapping[str, str] | None = None
) -> str:
    """One pydantic error as one line: ``[section] key must be <allowed>, got <value>``."""
    loc = (*where, *error["loc"])
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    section = loc[0] if loc else ""
    model = SECTIONS.get(section)
    if kind == "extra_forbidden" and len(loc) == 1:
        return f"unknown section [{section}]{_suggest(section, SECTIONS, '[{}]')}"
    if kind == "extra_forbidden" and len(loc) == 2 and model is not None:
        return f"unknown key [{section}] {loc[1]}{_suggest(str(loc[1]), model.model_fields)}"
    key = str(loc[1]) if len(loc) > 1 else ""
    item = len(loc) > 2  # an item of a list
    label = f"[{section}] {key}".strip()
    flag = (flags or {}).get(f"{section}.{key}")
    if flag:
        label += f" ({flag})"
    if kind == "value_error":  # our own validators: their message says what is allowed
        return f"{label} {ctx.get('error', error['msg'])}"
    if kind in _BOUNDS:
        allowed = _whole_range(model, key, item) or _range(**{_BOUNDS[kind]: ctx[_BOUNDS[kind]]})
    elif kind == "literal_error":
        allowed = ctx["expected"]
    elif kind == "too_short":
        allowed = "a non-empty list" if ctx["min_length"] == 1 else f"a list of {ctx['min_length']} or more"
    else:
        allowed = _ALLOWED.get(kind, error["msg"][:1].lower() + error["msg"][1:])
    return f"{label} must {'each ' if item else ''}be {allowed}, got {_shown(value)}"
