"""Loading a MovieLens release: every layout into the same typed tables.

Input: the files of one release (``movierec_spark.data.releases``) in a folder,
or the Parquet tables ``jobs/ingest.py`` wrote. Three layouts exist:

- ``ml-100k``: tab-separated ``u.data``; pipe-separated ``u.item`` (latin-1)
  with 19 genre flag columns; pipe-separated ``u.user``;
- ``dat`` (ml-1m, ml-10m): ``::``-separated ``.dat`` files without a header;
- ``csv`` (ml-20m and later): RFC 4180 CSV with a header row, CRLF or LF.

Output: a :class:`LoadedRelease` whose tables have the schemas of
:mod:`movierec_spark.data.schemas`:

    ratings   user_id int, movie_id int, rating float, timestamp long
    movies    movie_id int, title string, year int, genres array<string>
    tags      user_id int, movie_id int, tag string, timestamp long
    links     movie_id int, imdb_id string, tmdb_id int
    users     user_id int, gender string, age int, occupation string, zip_code string
    rejects   table string, reason string, raw string, source_file string

Titles lose their trailing `` (YYYY)``, which becomes ``year`` (null when a
title has none); ``genres`` is an array, empty for ``(no genres listed)``
and for ml-100k's ``unknown`` flag. ml-1m's occupation codes become the
names its README lists; its ``age`` stays the age-group code (1, 18, 25, 35,
45, 50, 56: the lower bound of the group). Every line of every file is
either loaded or a row of ``rejects`` with a reason (see
:mod:`movierec_spark.data.validate` for the reasons and which duplicate is kept).

Everything here is lazy: nothing is read until a job runs an action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark import io
from movierec_spark.data import schemas
from movierec_spark.data import validate as V
from movierec_spark.data.download import resolve_source
from movierec_spark.data.releases import (
    DEFAULT_RELEASE,
    LAYOUT_100K,
    LAYOUT_CSV,
    LAYOUT_DAT,
    RELEASES,
    RatingScale,
    Release,
    get_release,
)

log = logging.getLogger(__name__)

REPORT_FORMAT_VERSION = 1
# Output tables in the order they are loaded: movies first, since ratings,
# tags and links are checked against the loaded movie ids.
TABLE_ORDER = ("movies", "ratings", "tags", "links", "users")

# ml-100k's u.genre, in flag-column order.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# ml-100k's u.occupation.
ML100K_OCCUPATIONS = (
    "administrator", "artist", "doctor", "educator", "engineer", "entertainment",
    "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
    "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
    "writer",
)  # fmt: skip
# ml-1m's README: occupation codes and age groups of users.dat.
ML1M_OCCUPATIONS = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin",
    4: "college/grad student", 5: "customer service", 6: "doctor/health care",
    7: "executive/managerial", 8: "farmer", 9: "homemaker", 10: "K-12 student",
    11: "lawyer", 12: "programmer", 13: "retired", 14: "sales/marketing", 15: "scientist",
    16: "self-employed", 17: "technician/engineer", 18: "tradesman/craftsman",
    19: "unemployed", 20: "writer",
}  # fmt: skip
ML1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)
GENDERS = ("M", "F")
NO_GENRES = "(no genres listed)"

# "Title (1995)", "Show (2006-2007)", "Show (2016-)", and ml-100k's one
# "Title (1995) (V)" (straight to video), whose "(V)" stays in the title.
_TITLE_YEAR = r"^(.*?)\s*\(([0-9]{4})(?:[-\u2013](?:[0-9]{4})?)?\)\s*(\(V\))?$"
# An RFC 4180 quoted field, with "" standing for a quote inside it.
_QUOTED_FIELD = r'"(?:[^"]|"")*"'


@dataclass(frozen=True)
class TextFormat:
    """How the lines of one release file split into fields."""

    separator: str
    fields: tuple[str, ...]  # as the release documents them; CSV: the header
    csv: bool = False  # RFC 4180 quoting and a header row


def _csv(*fields: str) -> TextFormat:
    return TextFormat(",", fields, csv=True)


FORMATS: dict[str, dict[str, TextFormat]] = {
    LAYOUT_CSV: {
        "ratings": _csv("userId", "movieId", "rating", "timestamp"),
        "movies": _csv("movieId", "title", "genres"),
        "tags": _csv("userId", "movieId", "tag", "timestamp"),
        "links": _csv("movieId", "imdbId", "tmdbId"),
    },
    LAYOUT_DAT: {
        "ratings": TextFormat("::", ("UserID", "MovieID", "Rating", "Timestamp")),
        "movies": TextFormat("::", ("MovieID", "Title", "Genres")),
        "tags": TextFormat("::", ("UserID", "MovieID", "Tag", "Timestamp")),
        "users": TextFormat("::", ("UserID", "Gender", "Age", "Occupation", "Zip-code")),
    },
    LAYOUT_100K: {
        "ratings": TextFormat("\t", ("user id", "item id", "rating", "timestamp")),
        "movies": TextFormat(
            "|",
            ("movie id", "movie title", "release date", "video release date", "IMDb URL")
            + ML100K_GENRES,
        ),
        "users": TextFormat("|", ("user id", "age", "gender", "occupation", "zip code")),
    },
}


@dataclass
class LoadedRelease:
    """The tables of one release, as every job after loading sees them.

    ``tags``, ``links`` and ``users`` are None where the release has no such
    file. ``checked`` holds, per table read from text, every input row with
    its reject reason (see :mod:`movierec_spark.data.validate`): a job that both
    writes tables and counts them should persist these so the files are
    parsed once. ``report`` is the stored ``ingest_report.json`` when the
    tables were read from an ingest output.
    """

    name: str
    scale: RatingScale
    ratings: DataFrame
    movies: DataFrame
    tags: DataFrame | None
    links: DataFrame | None
    users: DataFrame | None
    rejects: DataFrame
    source: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    checked: dict[str, DataFrame] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    report: dict[str, Any] | None = None

    def tables(self) -> dict[str, DataFrame]:
        """The data tables present (not rejects), by name."""
        every = {
            "ratings": self.ratings,
            "movies": self.movies,
            "tags": self.tags,
            "links": self.links,
            "users": self.users,
        }
        return {name: df for name, df in every.items() if df is not None and name not in self.missing}


# --- lines into fields ---


def split_fields(lines: DataFrame, fmt: TextFormat, source_file: str) -> DataFrame:
    """Lines (``value``) into ``_raw``, ``_file``, ``_syntax`` and fields ``f0``, ``f1``, ...

    Fields are trimmed strings, null when empty. ``_syntax`` is the reason a
    line cannot be split into the format's fields (blank, badly decoded,
    wrong field count, unbalanced quotes), or null. CSV lines that hold a
    quote are split with ``from_csv`` (RFC 4180: quoted commas, doubled
    quotes), the rest with a plain split, which is several times faster.
    """
    raw = F.col("value")
    n = len(fmt.fields)
    plain = F.split(raw, "\\Q" + fmt.separator + "\\E", -1)
    if fmt.csv:
        quoted = F.instr(raw, '"') > 0
        # One column more than expected: from_csv fills it only on a line
        # with too many fields (by its own reading of the quotes), and it
        # pads short lines silently, so the count comes from the line with
        # its quoted fields removed.
        ddl = ", ".join(f"f{i} STRING" for i in range(n + 1))
        options = {"sep": ",", "quote": '"', "escape": '"', "mode": "PERMISSIVE"}
        # A column of its own, so that each field does not parse the line again.
        lines = lines.select(raw, F.when(quoted, F.from_csv(raw, ddl, options)).alias("_csv"))
        parsed = F.col("_csv")
        fields = F.when(quoted, F.array(*[parsed[f"f{i}"] for i in range(n + 1)])).otherwise(plain)
        unquoted_count = F.size(F.split(F.regexp_replace(raw, _QUOTED_FIELD, ""), ",", -1))
        count = F.when(~quoted, F.size(F.col("_fields"))).when(
            F.try_element_at(F.col("_fields"), F.lit(n + 1)).isNotNull(), F.lit(n + 1)
        ).otherwise(unquoted_count)
        quotes = F.length(raw) - F.length(F.regexp_replace(raw, '"', ""))
        malformed = F.when(quoted, F.when(quotes % 2 == 1, F.lit(V.UNPARSEABLE)))
    else:
        fields = plain
        count = F.size(F.col("_fields"))
        malformed = F.lit(None).cast("string")
    split = lines.select(raw, fields.alias("_fields"))
    syntax = V.first_reason(
        # The cheap test of the first character spares most lines the regex.
        F.when(F.ascii(raw) <= 32, F.when(raw.rlike(io.BLANK_LINE_PATTERN), F.lit(V.BLANK_LINE))),
        V.encoding_reason(raw),
        F.when(count != n, F.lit(V.WRONG_FIELD_COUNT)),
        malformed,
    )
    texts = [F.trim(F.try_element_at(F.col("_fields"), F.lit(i + 1))) for i in range(n)]
    return split.select(
        raw.alias(V.RAW),
        F.lit(source_file).alias(V.FILE),
        syntax.alias("_syntax"),
        *[F.nullif(text, F.lit("")).alias(f"f{i}") for i, text in enumerate(texts)],
    )


def _field(i: int) -> Column:
    return F.col(f"f{i}")


def _checked(parts: DataFrame, values: Mapping[str, Column], reasons: list[Column], schema) -> DataFrame:
    """The checked frame: typed columns of ``schema``, ``_reason``, ``_raw``, ``_file``."""
    return parts.select(
        *[values[f.name].alias(f.name) for f in schema.fields],
        V.first_reason(F.col("_syntax"), *reasons).alias(V.REASON),
        F.col(V.RAW),
        F.col(V.FILE),
    )


# --- field values of each table ---


def title_and_year(title: Column) -> tuple[Column, Column]:
    """``title`` without its trailing " (YYYY)", and YYYY as an int (else null)."""
    base = F.regexp_extract(title, _TITLE_YEAR, 1)
    video = F.nullif(F.regexp_extract(title, _TITLE_YEAR, 3), F.lit(""))
    year_text = F.regexp_extract(title, _TITLE_YEAR, 2)  # "" when there is no match
    keep_whole = (year_text == "") | (base == "")
    clean = F.when(keep_whole, title).otherwise(F.concat_ws(" ", base, video))
    year = F.when(~keep_whole, year_text.try_cast("int"))
    return clean, year


def genre_list(genres: Column) -> Column:
    """'A|B' into ['A', 'B']; '(no genres listed)' and an empty field into []."""
    names = F.transform(F.split(F.coalesce(genres, F.lit("")), "\\|"), lambda g: F.trim(g))
    return F.filter(names, lambda g: (g != "") & (g != NO_GENRES))


def ratings_checked(parts: DataFrame, scale: RatingScale) -> DataFrame:
    user, user_reason = V.positive_int_id(_field(0))
    movie, movie_reason = V.positive_int_id(_field(1))
    rating, rating_reason = V.rating_on_scale(_field(2), scale)
    timestamp, timestamp_reason = V.epoch_seconds(_field(3))
    values = {C.USER_ID: user, C.MOVIE_ID: movie, C.RATING: rating, C.TIMESTAMP: timestamp}
    reasons = [user_reason, movie_reason, rating_reason, timestamp_reason]
    return _checked(parts, values, reasons, schemas.RATINGS)


def movies_checked(parts: DataFrame) -> DataFrame:
    """Movies of the csv and dat layouts: id, title, 'A|B' genres."""
    movie, movie_reason = V.positive_int_id(_field(0))
    title_text, title_reason = V.required_text(_field(1))
    title, year = title_and_year(title_text)
    values = {C.MOVIE_ID: movie, C.TITLE: title, C.YEAR: year, C.GENRES: genre_list(_field(2))}
    return _checked(parts, values, [movie_reason, title_reason], schemas.MOVIES)


def movies_100k_checked(parts: DataFrame) -> DataFrame:
    """ml-100k's u.item: id, title, three ignored fields, then 19 genre flags."""
    movie, movie_reason = V.positive_int_id(_field(0))
    title_text, title_reason = V.required_text(_field(1))
    title, year = title_and_year(title_text)
    flags = [V.one_of(_field(5 + i), ("0", "1")) for i in range(len(ML100K_GENRES))]
    named = [
        F.when(flag == "1", F.lit(name))
        for (flag, _), name in zip(flags, ML100K_GENRES)
        if name != "unknown"
    ]
    genres = F.filter(F.array(*named), lambda g: g.isNotNull())
    values = {C.MOVIE_ID: movie, C.TITLE: title, C.YEAR: year, C.GENRES: genres}
    return _checked(parts, values, [movie_reason, title_reason, *[r for _, r in flags]], schemas.MOVIES)


def tags_checked(parts: DataFrame) -> DataFrame:
    user, user_reason = V.positive_int_id(_field(0))
    movie, movie_reason = V.positive_int_id(_field(1))
    tag, tag_reason = V.required_text(_field(2))
    timestamp, timestamp_reason = V.epoch_seconds(_field(3))
    values = {C.USER_ID: user, C.MOVIE_ID: movie, C.TAG: tag, C.TIMESTAMP: timestamp}
    return _checked(parts, values, [user_reason, movie_reason, tag_reason, timestamp_reason], schemas.TAGS)


def links_checked(parts: DataFrame) -> DataFrame:
    """links.csv: an empty tmdbId (or imdbId) is a null, not a reject."""
    movie, movie_reason = V.positive_int_id(_field(0))
    imdb, imdb_reason = V.optional_digits(_field(1))
    tmdb, tmdb_reason = V.positive_int_id(_field(2), required=False)
    values = {C.MOVIE_ID: movie, C.IMDB_ID: imdb, C.TMDB_ID: tmdb}
    return _checked(parts, values, [movie_reason, imdb_reason, tmdb_reason], schemas.LINKS)


def users_100k_checked(parts: DataFrame) -> DataFrame:
    """u.user: id | age | gender | occupation name | zip code."""
    user, user_reason = V.positive_int_id(_field(0))
    age, age_reason = V.int_in(_field(1), low=1)
    gender, gender_reason = V.one_of(_field(2), GENDERS)
    occupation, occupation_reason = V.one_of(_field(3), ML100K_OCCUPATIONS)
    values = {
        C.USER_ID: user, C.AGE: age, C.GENDER: gender, C.OCCUPATION: occupation,
        C.ZIP_CODE: _field(4),
    }  # fmt: skip
    reasons = [user_reason, age_reason, gender_reason, occupation_reason]
    return _checked(parts, values, reasons, schemas.USERS)


def users_dat_checked(parts: DataFrame) -> DataFrame:
    """ml-1m users.dat: id :: gender :: age-group code :: occupation code :: zip code."""
    user, user_reason = V.positive_int_id(_field(0))
    gender, gender_reason = V.one_of(_field(1), GENDERS)
    age, age_reason = V.int_in(_field(2), ML1M_AGE_GROUPS)
    occupation, occupation_reason = V.code_name(_field(3), ML1M_OCCUPATIONS)
    values = {
        C.USER_ID: user, C.GENDER: gender, C.AGE: age, C.OCCUPATION: occupation,
        C.ZIP_CODE: _field(4),
    }  # fmt: skip
    reasons = [user_reason, gender_reason, age_reason, occupation_reason]
    return _checked(parts, values, reasons, schemas.USERS)


# --- whole tables ---


def check_table(
    table: str,
    layout: str,
    parts: DataFrame,
    scale: RatingScale,
    movie_ids: DataFrame | None,
) -> DataFrame:
    """Split lines of ``table`` into a checked frame, with the cross-row checks.

    ``movie_ids`` (the loaded movies' ids) rejects ratings, tags and links
    of unknown movies; None skips that check.
    """
    if table == "ratings":
        checked = ratings_checked(parts, scale)
    elif table == "movies":
        checked = movies_100k_checked(parts) if layout == LAYOUT_100K else movies_checked(parts)
    elif table == "tags":
        checked = tags_checked(parts)
    elif table == "links":
        checked = links_checked(parts)
    elif table == "users":
        checked = users_100k_checked(parts) if layout == LAYOUT_100K else users_dat_checked(parts)
    else:
        raise ValueError(f"no parser for table {table!r}")
    if movie_ids is not None and table in ("ratings", "tags", "links"):
        checked = V.reject_unknown_movies(checked, movie_ids)
    if table == "ratings":
        checked = V.reject_duplicates(
            checked, [C.USER_ID, C.MOVIE_ID], [F.col(C.TIMESTAMP).desc_nulls_last()], V.DUPLICATE_PAIR
        )
    elif table in ("movies", "links"):
        checked = V.reject_duplicates(checked, [C.MOVIE_ID], [], V.DUPLICATE_ID)
    elif table == "users":
        checked = V.reject_duplicates(checked, [C.USER_ID], [], V.DUPLICATE_ID)
    return V.drop_raw_of_loaded(checked)


def read_lines(spark: SparkSession, path: Path, fmt: TextFormat, encoding: str, release: str) -> DataFrame:
    """Every line of a release file after its header (blank ones included), as ``value``.

    A CSV file whose first line is not the expected header is a
    MovieRecError naming the file: the wrong release or a damaged file.
    """
    header = None
    if fmt.csv:
        first = io.read_first_line(path, encoding)
        expected = ",".join(fmt.fields)
        got = None if first is None else [x.strip().strip('"') for x in first.split(",")]
        if got != list(fmt.fields):
            shown = "no header (the file is empty)" if first is None else f"header {first[:120]!r}"
            raise MovieRecError(
                f"{path} has {shown}, but {release} {path.name} starts with {expected!r}; "
                "check --dataset and --source"
            )
        header = first
    lines = io.read_text_lines(spark, path, encoding=encoding, header_line=header)
    return lines.unionByName(io.read_blank_lines(spark, path))


def load_table_file(
    spark: SparkSession,
    release: Release,
    table: str,
    path: str | Path,
    movie_ids: DataFrame | None = None,
) -> DataFrame:
    """The checked frame of one file of ``release`` holding ``table``.

    Also reads files the release table does not name but that share a
    table's format, such as ml-100k's predefined splits ``u1.base`` or
    ``ua.test`` (ratings in the layout of ``u.data``).
    """
    path = Path(path)
    if not path.is_file():
        raise MovieRecError(f"{path} does not exist")
    fmt = FORMATS[release.layout][table]
    lines = read_lines(spark, path, fmt, release.encoding, release.name)
    parts = split_fields(lines, fmt, path.name)
    return check_table(table, release.layout, parts, release.scale, movie_ids)


def load_ratings_file(
    spark: SparkSession, release: Release, path: str | Path, movie_ids: DataFrame | None = None
) -> tuple[DataFrame, DataFrame]:
    """``(ratings, rejects)`` of one ratings file in ``release``'s format (e.g. ml-100k u1.test)."""
    checked = load_table_file(spark, release, "ratings", path, movie_ids)
    return V.loaded_rows(checked, schemas.RATINGS), V.rejected_rows(checked, "ratings")


def _missing_message(release: Release, folder: Path, missing: list[str]) -> str:
    names = ", ".join(release.files[t] for t in missing)
    return (
        f"{folder} has no {names}, so it is not a complete {release.name}; point --source at "
        f"the release's folder or its GroupLens zip ({release.archive}), or leave --source out "
        "to download it (jobs/ingest.py --partial ingests only the tables present)"
    )


def load_release(
    spark: SparkSession, release: Release, folder: str | Path, *, partial: bool = False
) -> LoadedRelease:
    """Every table of ``release`` from the unpacked files in ``folder``.

    A missing file is a MovieRecError; with ``partial`` only the movies file
    is required and absent tables are listed in ``missing`` (an absent
    ratings table is then empty).
    """
    folder = Path(folder)
    paths = {t: folder / name for t, name in release.files.items()}
    missing = [t for t in TABLE_ORDER if t in paths and not paths[t].is_file()]
    if missing and (not partial or "movies" in missing):
        raise MovieRecError(_missing_message(release, folder, missing))
    if missing:
        log.warning("%s: no %s; loading the other tables", folder, ", ".join(release.files[t] for t in missing))
    checked: dict[str, DataFrame] = {}
    movie_ids = None
    for table in TABLE_ORDER:
        if table not in paths or table in missing:
            continue
        checked[table] = load_table_file(spark, release, table, paths[table], movie_ids)
        if table == "movies":
            movie_ids = V.loaded_rows(checked[table], schemas.MOVIES).select(C.MOVIE_ID)
    tables = {t: V.loaded_rows(df, schemas.TABLE_SCHEMAS[t]) for t, df in checked.items()}
    rejects = reduce(
        DataFrame.unionByName, [V.rejected_rows(df, t) for t, df in checked.items()]
    )
    ratings = tables.get("ratings")
    if ratings is None:
        ratings = spark.createDataFrame([], schemas.RATINGS)
    return LoadedRelease(
        name=release.name,
        scale=release.scale,
        ratings=ratings,
        movies=tables["movies"],
        tags=tables.get("tags"),
        links=tables.get("links"),
        users=tables.get("users"),
        rejects=rejects,
        source=str(folder.resolve()),
        files={t: release.files[t] for t in checked},
        checked=checked,
        missing=tuple(missing),
    )


# --- ingested output ---


def _scale_from_report(report: Mapping[str, Any], path: Path) -> RatingScale:
    scale = report.get("scale")
    if isinstance(scale, Mapping):
        try:
            return RatingScale(float(scale["low"]), float(scale["high"]), float(scale["step"]))
        except (KeyError, TypeError, ValueError):
            pass
    name = report.get("release")
    if name in RELEASES:
        return RELEASES[name].scale
    raise MovieRecError(
        f"{path / io.REPORT_NAME} has no usable rating scale ({{'low', 'high', 'step'}}); re-run jobs/ingest.py"
    )


def load_ingested(spark: SparkSession, path: str | Path) -> LoadedRelease:
    """The tables ``jobs/ingest.py`` (or a synthetic-data generator) wrote under ``path``."""
    path = Path(path).expanduser()
    report, tables = io.read_ingested(spark, path)
    rejects = tables.get("rejects")
    if rejects is None:
        rejects = spark.createDataFrame([], schemas.REJECTS)
    return LoadedRelease(
        name=str(report.get("release") or path.name),
        scale=_scale_from_report(report, path),
        ratings=tables["ratings"],
        movies=tables["movies"],
        tags=tables.get("tags"),
        links=tables.get("links"),
        users=tables.get("users"),
        rejects=rejects,
        source=str(path),
        report=report,
    )


# --- sources ---


def _partial_folder(release: Release, source: Path) -> Path:
    """The folder under ``source`` that has at least the movies file (``--partial``)."""
    movies = release.files["movies"]
    for candidate in (source, source / release.folder, source / release.name):
        if (candidate / movies).is_file():
            return candidate.absolute()
    raise MovieRecError(
        f"{source} holds no {release.name} files (not even {movies}); point --source at the release's folder"
    )


def resolve_release_folder(release: Release, data_cfg: Mapping[str, Any], *, partial: bool = False) -> Path:
    """The local folder with ``release``'s files, from ``[data]`` ``source`` and ``cache_dir``.

    A folder, a GroupLens zip, or nothing (download into the cache); see
    :func:`movierec_spark.data.download.resolve_source`. With ``partial``, a
    folder source only needs the movies file.
    """
    source = data_cfg.get("source") or None
    folder_source = source is not None and Path(source).expanduser().is_dir()
    if partial and folder_source:
        return _partial_folder(release, Path(source).expanduser())
    allow = True if data_cfg.get("allow_unverified_download") else None
    try:
        return resolve_source(release, source, data_cfg.get("cache_dir") or None, allow_unverified=allow)
    except MovieRecError as exc:
        if not folder_source:
            raise
        try:
            _partial_folder(release, Path(source).expanduser())
        except MovieRecError:
            raise exc from None
        raise MovieRecError(f"{exc} (jobs/ingest.py --partial ingests only the tables present)") from None


def load_data(spark: SparkSession, data_cfg: Mapping[str, Any], *, partial: bool = False) -> LoadedRelease:
    """The tables a job works on, as the merged config's ``[data]`` section says.

    Keys: ``ingested_dir`` (read ingest's Parquet output; wins over the
    rest), else ``dataset`` (a release name) and ``source`` (its folder or
    GroupLens zip; absent: downloaded into ``cache_dir``, see
    :mod:`movierec_spark.data.download`). Every job that reads ratings calls this.

    Examples
    --------
    >>> loaded = load_data(spark, {"dataset": "ml-100k", "source": "../shared/data/movielens"})  # doctest: +SKIP
    >>> loaded.ratings.count(), loaded.scale.values()[:2]  # doctest: +SKIP
    (100000, [1.0, 2.0])
    """
    ingested = data_cfg.get("ingested_dir")
    if ingested:
        return load_ingested(spark, ingested)
    release = get_release(data_cfg.get("dataset") or DEFAULT_RELEASE)
    folder = resolve_release_folder(release, data_cfg, partial=partial)
    log.info("loading %s from %s", release.name, folder)
    return load_release(spark, release, folder, partial=partial)


# --- accounting ---


def ingest_report(loaded: LoadedRelease) -> dict[str, Any]:
    """Rows read, loaded and rejected (by reason) per table, plus distinct counts.

    One aggregation per table over ``loaded.checked`` (persist those first).
    ``summary`` holds the figures a person checks against the release's
    README: ratings, distinct users and movies rated, movies, rejected rows.
    """
    if not loaded.checked:
        raise ValueError("ingest_report needs the checked frames of a release loaded from text")
    tables: dict[str, Any] = {}
    distinct: dict[str, int] = {}
    for table, checked in loaded.checked.items():
        wanted = (C.USER_ID, C.MOVIE_ID) if table == "ratings" else ()
        counts, found = V.count_checked(checked, distinct=wanted)
        tables[table] = {"file": loaded.files.get(table), **counts}
        distinct.update(found)
    ordered = {t: tables[t] for t in ("ratings", "movies", "tags", "links", "users") if t in tables}
    return {
        "format_version": REPORT_FORMAT_VERSION,
        "release": loaded.name,
        "scale": {"low": loaded.scale.low, "high": loaded.scale.high, "step": loaded.scale.step},
        "source": loaded.source,
        "summary": {
            "ratings": ordered.get("ratings", {}).get("loaded", 0),
            "users": distinct.get(C.USER_ID, 0),
            "movies": ordered["movies"]["loaded"],
            "rated_movies": distinct.get(C.MOVIE_ID, 0),
            "rows_read": sum(t["read"] for t in ordered.values()),
            "rows_rejected": sum(t["rejected"] for t in ordered.values()),
        },
        "tables": ordered,
        "missing_tables": list(loaded.missing),
    }
