"""Validation with accounting: every input line is either loaded or rejected.

Parsing (:mod:`movierec_spark.data.load`) turns each line of a release file into
a *checked* frame: the table's typed columns plus three bookkeeping columns,

    _reason  string   null when the row is loaded, else a reason code below
    _raw     string   the input line (kept for rejected rows only)
    _file    string   the file the line came from

so one frame accounts for every line read. :func:`loaded_rows` and
:func:`rejected_rows` split it into the table (with its schema from
:mod:`movierec_spark.data.schemas`) and rows of ``schemas.REJECTS``; since the two
filters are complements, rows read = rows loaded + rows rejected by
construction. The first failing check names the reason; checks run in the
order of the reason codes below.

Reason codes:

- ``blank_line``: a line holding nothing but whitespace (no data, but
  counted, so rows read equals the file's line count after any header).
- ``bad_encoding``: the line is not valid in the release's encoding (the
  decoder replaced bytes with U+FFFD).
- ``wrong_field_count``: the line does not split into the layout's fields.
- ``unparseable``: a required field is empty or not of its type (an id that
  is not an integer, a rating that is not a number, unbalanced CSV quotes).
- ``bad_id``: an id that is an integer but not a positive 32-bit one
  (0, -5, 3000000000); MLlib ALS needs ids that fit in an int.
- ``bad_value``: a field of the right type outside what the format allows
  (a negative timestamp, a gender other than M/F, a genre flag other than
  0/1, an unknown occupation or age code).
- ``rating_out_of_scale``: a rating that is not one of the release's
  allowed values (``RatingScale.values()``; 3.7 or 7 on a 1..5 scale).
- ``duplicate_id``: a second movie (user, link) row with the same id. The
  row with the smallest raw line is kept, so the choice does not depend on
  how Spark partitioned the file.
- ``duplicate_pair``: a second rating of the same (user, movie). The latest
  rating (largest timestamp) is kept -- a user's most recent opinion -- and
  among equal timestamps the one with the smallest raw line.
- ``unknown_movie``: a rating, tag or link of a movie that is not in the
  loaded movies table.
"""

from __future__ import annotations

import logging
from typing import Iterable, Mapping, Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from movierec_spark import columns as C
from movierec_spark.data.releases import RatingScale

log = logging.getLogger(__name__)

REASON = "_reason"
RAW = "_raw"
FILE = "_file"

BLANK_LINE = "blank_line"
BAD_ENCODING = "bad_encoding"
WRONG_FIELD_COUNT = "wrong_field_count"
UNPARSEABLE = "unparseable"
BAD_ID = "bad_id"
BAD_VALUE = "bad_value"
RATING_OUT_OF_SCALE = "rating_out_of_scale"
DUPLICATE_ID = "duplicate_id"
DUPLICATE_PAIR = "duplicate_pair"
UNKNOWN_MOVIE = "unknown_movie"

REASONS = (
    BLANK_LINE,
    BAD_ENCODING,
    WRONG_FIELD_COUNT,
    UNPARSEABLE,
    BAD_ID,
    BAD_VALUE,
    RATING_OUT_OF_SCALE,
    DUPLICATE_ID,
    DUPLICATE_PAIR,
    UNKNOWN_MOVIE,
)

MAX_INT32 = 2**31 - 1
_INTEGER = r"^[+-]?[0-9]+$"
# Plain decimals only: Java's parser would also take "3.5d", "0x1p1" or "5e0".
_DECIMAL = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
_REPLACEMENT_CHAR = "\ufffd"


# --- field checks: each takes a field as text (trimmed, null when empty) and
# returns (typed value, reason or null) ---


def positive_int_id(text: Column, *, required: bool = True) -> tuple[Column, Column]:
    """An id that must be a positive 32-bit integer.

    Not an integer is ``unparseable``; an integer outside 1..2**31-1 (or too
    long even for a 64-bit one) is ``bad_id``. An empty optional id is null.
    """
    as_long = text.try_cast("long")
    in_range = as_long.between(1, MAX_INT32)
    value = F.when(text.rlike(_INTEGER) & in_range, as_long.try_cast("int"))
    reason = (
        F.when(text.isNull(), F.lit(UNPARSEABLE) if required else F.lit(None))
        .when(~text.rlike(_INTEGER), F.lit(UNPARSEABLE))
        .when(as_long.isNull() | ~in_range, F.lit(BAD_ID))
    )
    return value, reason


def rating_on_scale(text: Column, scale: RatingScale) -> tuple[Column, Column]:
    """A rating that must be one of ``scale.values()`` exactly (compared as doubles)."""
    as_double = F.when(text.rlike(_DECIMAL), text.try_cast("double"))
    on_scale = as_double.isin(scale.values())
    value = F.when(on_scale, as_double.try_cast("float"))
    reason = F.when(as_double.isNull(), F.lit(UNPARSEABLE)).when(~on_scale, F.lit(RATING_OUT_OF_SCALE))
    return value, reason


def epoch_seconds(text: Column) -> tuple[Column, Column]:
    """A timestamp in whole seconds since the epoch, 0 or later."""
    as_long = F.when(text.rlike(_INTEGER), text.try_cast("long"))
    value = F.when(as_long >= 0, as_long)
    reason = F.when(as_long.isNull(), F.lit(UNPARSEABLE)).when(as_long < 0, F.lit(BAD_VALUE))
    return value, reason


def required_text(text: Column) -> tuple[Column, Column]:
    """A string that must not be empty."""
    return text, F.when(text.isNull(), F.lit(UNPARSEABLE))


def optional_digits(text: Column) -> tuple[Column, Column]:
    """An optional string of digits (IMDb ids keep their leading zeros)."""
    return text, F.when(text.isNotNull() & ~text.rlike(r"^[0-9]+$"), F.lit(UNPARSEABLE))


def one_of(text: Column, allowed: Sequence[str]) -> tuple[Column, Column]:
    """A required string that must be one of ``allowed`` (else ``bad_value``)."""
    ok = text.isin(list(allowed))
    return F.when(ok, text), F.when(text.isNull(), F.lit(UNPARSEABLE)).when(~ok, F.lit(BAD_VALUE))


def code_name(text: Column, names: Mapping[int, str]) -> tuple[Column, Column]:
    """A required integer code looked up in ``names`` (unknown code: ``bad_value``)."""
    code = F.when(text.rlike(_INTEGER), text.try_cast("int"))
    lookup = F.create_map(*[x for k, v in sorted(names.items()) for x in (F.lit(k), F.lit(v))])
    name = F.try_element_at(lookup, code)
    reason = F.when(code.isNull(), F.lit(UNPARSEABLE)).when(name.isNull(), F.lit(BAD_VALUE))
    return name, reason


def int_in(text: Column, allowed: Iterable[int] | None = None, *, low: int | None = None) -> tuple[Column, Column]:
    """A required integer, either one of ``allowed`` or at least ``low``."""
    value = F.when(text.rlike(_INTEGER), text.try_cast("int"))
    ok = value.isin(list(allowed)) if allowed is not None else value >= F.lit(low)
    return F.when(ok, value), F.when(value.isNull(), F.lit(UNPARSEABLE)).when(~ok, F.lit(BAD_VALUE))


def first_reason(*reasons: Column) -> Column:
    """The first non-null reason of a row, or null when every check passed."""
    return F.coalesce(*reasons)


def encoding_reason(raw_line: Column) -> Column:
    """``bad_encoding`` when the decoder had to replace bytes of the line."""
    return F.when(F.instr(raw_line, _REPLACEMENT_CHAR) > 0, F.lit(BAD_ENCODING))


# --- row checks over a whole checked frame ---


def flag_where(checked: DataFrame, condition: Column, reason: str) -> DataFrame:
    """Give rows that are still loaded and meet ``condition`` the reason ``reason``."""
    flagged = F.when(F.col(REASON).isNull() & condition, F.lit(reason)).otherwise(F.col(REASON))
    return checked.withColumn(REASON, flagged)


def reject_duplicates(
    checked: DataFrame, keys: Sequence[str], keep_first: Sequence[Column], reason: str
) -> DataFrame:
    """Keep one loaded row per ``keys``: the first by ``keep_first``, then by raw line.

    Rows already rejected neither count as duplicates nor are kept over a
    loaded one, so a valid rating is never lost to a damaged copy of it.
    """
    order = [F.col(REASON).isNull().desc(), *keep_first, F.col(RAW).asc()]
    rank = F.row_number().over(Window.partitionBy(*keys).orderBy(*order))
    return flag_where(checked, rank > 1, reason)


def reject_unknown_movies(checked: DataFrame, movie_ids: DataFrame) -> DataFrame:
    """Reject rows whose ``movie_id`` is not among ``movie_ids`` (distinct ids)."""
    known = movie_ids.select(C.MOVIE_ID).withColumn("_known_movie", F.lit(True))
    joined = checked.join(F.broadcast(known), on=C.MOVIE_ID, how="left")
    flagged = flag_where(joined, F.col("_known_movie").isNull(), UNKNOWN_MOVIE)
    return flagged.drop("_known_movie").select(*checked.columns)


def drop_raw_of_loaded(checked: DataFrame) -> DataFrame:
    """Forget the raw line of loaded rows: only rejects need it, and it is the bulk."""
    return checked.withColumn(RAW, F.when(F.col(REASON).isNotNull(), F.col(RAW)))


# --- splitting a checked frame ---


def loaded_rows(checked: DataFrame, schema: StructType) -> DataFrame:
    """The rows that passed every check, with the table's columns and types."""
    return checked.filter(F.col(REASON).isNull()).select(*[f.name for f in schema.fields])


def rejected_rows(checked: DataFrame, table: str) -> DataFrame:
    """The rows that failed a check, as ``schemas.REJECTS`` rows of ``table``."""
    return checked.filter(F.col(REASON).isNotNull()).select(
        F.lit(table).alias(C.TABLE),
        F.col(REASON).alias(C.REASON),
        F.col(RAW).alias(C.RAW),
        F.col(FILE).alias(C.SOURCE_FILE),
    )


# --- accounting ---


def count_checked(checked: DataFrame, *, distinct: Sequence[str] = ()) -> tuple[dict, dict[str, int]]:
    """Rows read, loaded, rejected (and by reason) of one checked frame, in one pass.

    Also returns the number of distinct values of each ``distinct`` column
    among the loaded rows (e.g. users and movies of the loaded ratings).
    """
    aggregates = [F.count(F.lit(1)).alias("_rows")] + [
        F.countDistinct(F.col(c)).alias(c) for c in distinct
    ]
    groups = checked.groupBy(REASON).agg(*aggregates).collect()
    by_reason = {row[REASON]: int(row["_rows"]) for row in groups if row[REASON] is not None}
    loaded_group = next((row for row in groups if row[REASON] is None), None)
    loaded = int(loaded_group["_rows"]) if loaded_group is not None else 0
    rejected = sum(by_reason.values())
    counts = {
        "read": loaded + rejected,
        "loaded": loaded,
        "rejected": rejected,
        "rejected_by_reason": {r: by_reason[r] for r in _reason_order(by_reason)},
    }
    distinct_counts = {c: int(loaded_group[c]) if loaded_group is not None else 0 for c in distinct}
    return counts, distinct_counts


def _reason_order(reasons: Iterable[str]) -> list[str]:
    known = [r for r in REASONS if r in reasons]
    return known + sorted(set(reasons) - set(REASONS))
