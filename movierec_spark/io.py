"""Reading and writing files: the one library module that touches disk.

Outputs are published atomically: a job writes everything into a staging
folder beside the destination and only then moves it into place, so a run
that fails part-way (or is killed) never leaves a half-written table where a
good one was. The previous output is never deleted first: on Linux the
staging folder and the old output swap names in one system call
(``renameat2(RENAME_EXCHANGE)``), so the destination always holds a complete
output, old or new; elsewhere the old output is moved aside, the new one
moved in, and a run cut off between those two renames is repaired by the
next run (:func:`recover_output`). The old output is removed last.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from movierec_spark import MovieRecError, faults

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

# pyspark is imported inside the functions that use Spark, so that the
# serving path without a JVM (movierec_spark.serving.local) can read and
# write its files through this module with no pyspark import.

log = logging.getLogger(__name__)

_STAGING = ".staging-"
_PREVIOUS = ".previous-"


def _sidecar(final: Path, kind: str) -> Path:
    # Staging folders carry their owner (host, pid) so that a later run
    # removes only the leftovers of runs that are dead, never a live one's.
    owner = f"{socket.gethostname()}-{os.getpid()}-" if kind == _STAGING else ""
    return final.parent / f".{final.name}{kind}{owner}{uuid.uuid4().hex[:12]}"


def _owner_is_dead(staging: Path) -> bool:
    """Whether the run that created ``staging`` is gone (unknown owners count as dead)."""
    parts = staging.name.split(_STAGING, 1)[-1].rsplit("-", 2)  # host, pid, random
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname() or pid == os.getpid():
        return False  # another machine's run, or our own: leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def recover_output(final: str | Path) -> None:
    """Undo a publish that was cut off between its two renames; drop dead runs' leftovers.

    If ``final`` is missing but a moved-aside previous version exists, put
    the newest one back. Staging folders of runs that died are removed;
    those of a run still writing (same output, another process) are kept.
    """
    final = Path(final)
    parent = final.parent
    if not parent.is_dir():
        return
    previous = sorted(
        parent.glob(f".{final.name}{_PREVIOUS}*"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    if previous and not final.exists():
        log.warning("restoring %s from %s (an earlier run was cut off while publishing)", final, previous[0])
        os.replace(previous[0], final)
        previous = previous[1:]
    stale = [p for p in parent.glob(f".{final.name}{_STAGING}*") if _owner_is_dead(p)]
    for path in previous + stale:
        log.info("removing %s, left behind by an interrupted run", path)
        shutil.rmtree(path, ignore_errors=True)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the names ``a`` and ``b``; False where the OS or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no glibc 2.28+
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False  # e.g. NFS or an old kernel: fall back to two renames
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def publish_dir(staging: Path, final: Path) -> None:
    """Move ``staging`` to ``final``, replacing an older ``final`` without ever losing it."""
    if not final.exists():
        os.replace(staging, final)
        return
    if _exchange(staging, final):
        # ``final`` is the new output now and ``staging`` holds the old one.
        shutil.rmtree(staging, ignore_errors=True)
        return
    previous = _sidecar(final, _PREVIOUS)
    os.replace(final, previous)
    try:
        os.replace(staging, final)
    except BaseException:
        os.replace(previous, final)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def _nearest_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    while not path.exists():
        path = path.parent
    return path


def check_output_dir(final: str | Path) -> Path:
    """Refuse an output path that exists as a file, or whose folder cannot be written; return it as a Path.

    The staging folder is made beside ``final``, so the nearest existing
    folder above it must take a new entry: checked by making (and removing)
    one, which also catches read-only mounts and a root-owned parent.
    Remote URIs are left for Spark to check.
    """
    final = Path(final).expanduser()
    if "://" in str(final):
        return final
    if final.exists() and not final.is_dir():
        raise MovieRecError(f"output path {final} is an existing file; give a folder path")
    ancestor = _nearest_existing(final.absolute().parent)
    if not ancestor.is_dir():
        raise MovieRecError(f"output folder {final} cannot be made: {ancestor} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".movierec-write-check-", dir=ancestor))
    except OSError as exc:
        raise MovieRecError(
            f"output folder {final} cannot be written: {ancestor} is not writable ({exc.strerror})"
        ) from None
    return final


def check_spark_writes_reach(spark: "SparkSession", final: str | Path) -> None:
    """Refuse, before any work, an output folder a Spark Connect server's writes would not reach.

    A classic session's executors write where this process can see (the
    same machine, or a filesystem a cluster's nodes mount, as always). A
    Connect server writes to *its* filesystem, while this process writes the
    small files and publishes the folder: both must be one filesystem. A
    probe written by the server must appear here, else the run stops.
    """
    from movierec_spark.session import is_connect

    if not is_connect(spark):
        return
    if "://" in str(final):
        raise MovieRecError(
            f"output folder {final}: under Spark Connect the output must be a folder this machine and the "
            "server share (a local path on the server's machine or a shared mount), not a URI")
    final = Path(final).expanduser()
    ancestor = _nearest_existing(final.absolute().parent)
    probe = ancestor / f".movierec-probe-{uuid.uuid4().hex[:12]}"
    try:
        spark.createDataFrame([("probe",)], "value string").coalesce(1).write.text(str(probe))
    except Exception as exc:  # noqa: BLE001 - what the server said is the message
        raise MovieRecError(
            f"output folder {final}: the Spark Connect server cannot write to {ancestor} "
            f"({str(exc).strip().splitlines()[0]}); give a folder the server can write to") from None
    reached = (probe / "_SUCCESS").exists()
    shutil.rmtree(probe, ignore_errors=True)
    if not reached:
        raise MovieRecError(
            f"output folder {final}: the Spark Connect server writes to its own filesystem, and its test "
            f"write to {probe} did not appear here; give a folder this machine and the server share")


def check_input_file(path: str | Path, what: str, hint: str = "") -> Path:
    """Refuse an input file that is missing or is a folder; return it as a Path.

    ``hint`` is appended to the "does not exist" line (e.g. how to pass none).
    """
    found = Path(path).expanduser()
    if found.is_dir():
        raise MovieRecError(f"{what} {path} is a folder, not a file; give the file's path")
    if not found.is_file():
        raise MovieRecError(f"{what} {path} does not exist{hint}")
    return found


def check_job_paths(data: dict | None = None, output: str | Path | None = None) -> None:
    """Refuse, before any JVM starts, a ``[data]`` source or ingested folder
    that does not exist and an output path that is an existing file.

    Remote URIs (``hdfs://``, ``s3a://`` ...) are left for Spark to check.
    """
    for key, flag in (("source", "--source"), ("ingested_dir", "--ingested")):
        value = (data or {}).get(key)
        if not value or "://" in str(value):
            continue
        found = Path(str(value)).expanduser()
        if not found.exists():
            raise MovieRecError(f"{flag} path {value} does not exist")
        if key == "ingested_dir" and not found.is_dir():
            raise MovieRecError(f"{flag} path {value} is a file, not a folder; give jobs/ingest.py's output folder")
    if output and "://" not in str(output):
        check_output_dir(output)


@contextmanager
def staged_output(final: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that becomes ``final`` on success.

    On an exception the staging folder is removed and ``final`` is untouched.
    Works for local paths (on a cluster: a filesystem every node mounts).
    """
    final = check_output_dir(final).absolute()
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_output(final)
    staging = _sidecar(final, _STAGING)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    faults.pause(faults.PAUSE_BEFORE_PUBLISH)
    publish_dir(staging, final)
    log.info("wrote %s", final)


@contextmanager
def staged_table(final: str | Path, name: str, table: Any, csv_frame: Any) -> Iterator[Path]:
    """:func:`staged_output` for a job whose result is one table.

    The staging folder already holds ``name/`` (``table`` as Parquet: a
    Spark DataFrame written by the executors, or a small Arrow table,
    ``tables.to_arrow``, written here as one part file that Spark reads
    like its own) and ``name.csv`` (``csv_frame``: the same rows made
    CSV-ready by the caller, e.g. ``tables.for_csv``); the body may add
    more files, and all of them are published together.
    """
    with staged_output(final) as staging:
        write_table(table, staging / name)
        write_csv(staging / f"{name}.csv", csv_frame)
        yield staging


def read_model_metadata(path: str | Path, model: str, format_version: int, label: str | None = None) -> dict[str, Any]:
    """A saved model's ``metadata.json``, checked to be ``model`` in ``format_version``.

    Anything else (no file, bad JSON, another model or format) is a one-line
    MovieRecError; ``label`` names the model in it (default ``model``).
    """
    label = label or model
    meta_path = Path(path) / "metadata.json"
    try:
        meta = json.loads(meta_path.read_text())
        found, version = meta["model"], meta["format_version"]
    except FileNotFoundError:
        raise MovieRecError(
            f"{path} is not a saved {label} model (no metadata.json); "
            "train one with ./spark-submit.sh jobs/train_als.py --output DIR"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise MovieRecError(f"{meta_path} is damaged ({exc}); retrain the model") from None
    if found != model or version != format_version:
        raise MovieRecError(
            f"{path} holds model {found!r} format {version}; this version reads {model} format {format_version}"
        )
    return meta


def write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON, atomically (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MovieRecError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise MovieRecError(f"{path} is not valid JSON: {exc}") from None


# --- raw release files ---

# Never occurs in MovieLens text: the CSV reader then yields each line whole.
_NO_SEPARATOR = "\u0001"
_CORRUPT = "_corrupt_line"
# What Spark's CSV reader skips as an empty line (Java String.trim semantics).
BLANK_LINE_PATTERN = r"^[\x00-\x20]*$"


def read_first_line(path: str | Path, encoding: str) -> str | None:
    """The first line of a local text file, decoded, without its line ending.

    ``None`` for an empty file. A missing file is a MovieRecError.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except FileNotFoundError:
        raise MovieRecError(f"{path} does not exist") from None
    if not first:
        return None
    return first.decode(encoding, errors="replace").lstrip("\ufeff").rstrip("\r\n")


def read_text_lines(
    spark: SparkSession, path: str | Path, *, encoding: str, header_line: str | None = None
) -> DataFrame:
    """The non-blank lines of a text file in ``encoding``, one string per row (``value``).

    ``spark.read.text`` only decodes UTF-8, so this uses the CSV reader with
    the file's encoding, a separator that never occurs and quoting off; a
    line that does contain the separator is kept whole through the corrupt
    record column. ``header_line`` (already checked by the caller, e.g. with
    :func:`read_first_line`) is skipped; naming the one column after it keeps
    Spark from warning that the header does not match the schema. Blank lines
    are skipped by Spark's CSV reader: :func:`read_blank_lines` returns them.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    column = header_line if header_line else "value"
    schema = StructType([StructField(column, StringType()), StructField(_CORRUPT, StringType())])
    lines = (
        spark.read.schema(schema)
        .option("header", header_line is not None)
        .option("encoding", encoding)
        .option("sep", _NO_SEPARATOR)
        .option("quote", "")
        .option("escape", "")
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .csv(str(path))
    )
    return lines.select(F.coalesce(F.col(_CORRUPT), F.col(f"`{column}`")).alias("value"))


def read_blank_lines(spark: SparkSession, path: str | Path) -> DataFrame:
    """The lines of a text file that hold nothing but whitespace (``value``).

    They are no data, but counting them keeps rows read equal to the file's
    line count. Whitespace is ASCII, so decoding as UTF-8 is exact here.
    """
    from pyspark.sql import functions as F

    lines = spark.read.text(str(path))
    return lines.filter(F.col("value").rlike(BLANK_LINE_PATTERN))


# --- ingested Parquet tables ---

REPORT_NAME = "ingest_report.json"
# Folders jobs/ingest.py writes under its output (those a release has).
INGESTED_TABLES = ("ratings", "movies", "tags", "links", "users", "rejects")
REQUIRED_TABLES = ("ratings", "movies")


def is_spark_frame(value: Any) -> bool:
    """Whether ``value`` is a Spark DataFrame (never, in a process that has not imported pyspark)."""
    spark_sql = sys.modules.get("pyspark.sql")
    return spark_sql is not None and isinstance(value, spark_sql.DataFrame)


def write_table(df: Any, path: str | Path) -> None:
    """Write ``df`` as Parquet at ``path``, which must not exist yet.

    A Spark DataFrame is written by the executors; a small Arrow table
    (``tables.to_arrow``, already on the driver) is written here as one
    part file that Spark reads like its own, with no Spark job.
    """
    if is_spark_frame(df):
        df.write.mode("error").parquet(str(path))
        return
    import pyarrow.parquet as pq

    Path(path).mkdir(parents=True, exist_ok=False)
    pq.write_table(df, Path(path) / "part-00000.parquet")


class SavedTables:
    """The Parquet tables one output has written so far, so that none is written twice.

    Models share tables: a biased ALS model holds its bias baseline's user,
    movie and day bias tables, a kNN model holds its baseline, a blend its
    members. :meth:`write` writes a DataFrame the first time and copies the
    files it wrote (a local file copy, no Spark job, no recomputation) when
    the same DataFrame object is saved again under another folder. Identity,
    not equality: two different frames are always both written.

    >>> tables = SavedTables()                            # doctest: +SKIP
    >>> bias_model.save(out / "bias", tables)             # writes user_bias/ ...
    >>> als_model.save(out / "als", tables)               # copies them
    """

    def __init__(self) -> None:
        # (frame, folder): the frames are kept alive, so identity stays meaningful.
        self._written: list[tuple[DataFrame, Path]] = []

    def write(self, df: DataFrame, path: str | Path) -> None:
        """Write ``df`` as Parquet at ``path`` (must not exist), or copy it from where it was written."""
        path = Path(path)
        for frame, folder in self._written:
            if frame is df:
                shutil.copytree(folder, path)
                return
        write_table(df, path)
        self._written.append((df, path))


def _conform(df: DataFrame, schema: StructType, where: Path) -> DataFrame:
    """``df`` with exactly ``schema``'s columns; numeric types are widened or narrowed."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    have = {f.name: f.dataType for f in df.schema.fields}
    missing = [f.name for f in schema.fields if f.name not in have]
    if missing:
        raise MovieRecError(f"{where} lacks column(s) {', '.join(missing)}; re-run jobs/ingest.py")
    columns = []
    for f in schema.fields:
        got = have[f.name]
        same = got.simpleString() == f.dataType.simpleString()  # nullability aside
        if not same and not (isinstance(got, NumericType) and isinstance(f.dataType, NumericType)):
            raise MovieRecError(
                f"{where}: column {f.name} is {got.simpleString()}, expected "
                f"{f.dataType.simpleString()}; re-run jobs/ingest.py"
            )
        columns.append(F.col(f.name) if same else F.col(f.name).cast(f.dataType).alias(f.name))
    return df.select(*columns)


# Where Spark records a DataFrame's schema in the footer of every Parquet file it writes.
SPARK_SCHEMA_KEY = b"org.apache.spark.sql.parquet.row.metadata"


def written_schema(folder: str | Path) -> StructType | None:
    """The schema Spark recorded in the footer of a Parquet folder's first part file, or None.

    Read on the driver with pyarrow (a millisecond). ``spark.read.parquet``
    without a schema runs a Spark job to read the same footer, one per
    table (five in ml-latest-small's load stage, bench/NOTES.md).
    None when there is no part file or it was not written by Spark (then
    Spark infers the schema as before).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = sorted(Path(folder).glob("part-*.parquet"))
    if not files:
        return None
    try:
        recorded = (pq.read_schema(files[0]).metadata or {}).get(SPARK_SCHEMA_KEY)
        from pyspark.sql.types import StructType

        return None if recorded is None else StructType.fromJson(json.loads(recorded))
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException):
        return None


def read_ingested(spark: SparkSession, path: str | Path) -> tuple[dict[str, Any], dict[str, DataFrame]]:
    """The report and tables that jobs/ingest.py (or a generator) wrote under ``path``.

    Returns ``(report, tables)``: the parsed ``ingest_report.json`` and a
    DataFrame per table folder present, with the columns of
    :data:`movierec_spark.data.schemas.TABLE_SCHEMAS`. ``ratings/``, ``movies/`` and
    the report are required; ``rejects/`` may be absent (no rejects).
    """
    from movierec_spark.data import schemas

    path = Path(path).expanduser()
    if not path.is_dir():
        raise MovieRecError(
            f"{path} is not a folder of ingested tables; create one with "
            f"./spark-submit.sh jobs/ingest.py --dataset NAME --output {path}"
        )
    report_path = path / REPORT_NAME
    if not report_path.is_file():
        raise MovieRecError(f"{path} has no {REPORT_NAME}, so it is not a finished ingest output; re-run jobs/ingest.py")
    report = read_json(report_path)
    if not isinstance(report, dict):
        raise MovieRecError(f"{report_path} is not a JSON object; re-run jobs/ingest.py")
    missing = [t for t in REQUIRED_TABLES if not (path / t).is_dir()]
    if missing:
        skipped = report.get("missing_tables") or []
        why = " (it was ingested with --partial from an incomplete release)" if set(missing) & set(skipped) else ""
        raise MovieRecError(
            f"{path} has no {' or '.join(missing)} table{why}; ingest a complete release into it"
        )
    tables = {}
    for table in INGESTED_TABLES:
        folder = path / table
        if folder.is_dir():
            schema = written_schema(folder)
            reader = spark.read if schema is None else spark.read.schema(schema)
            tables[table] = _conform(reader.parquet(str(folder)), schemas.TABLE_SCHEMAS[table], folder)
    # Test-only (MOVIEREC_FAULTS=fail-task-once): every job that reads ingested
    # ratings then meets a failing task; a no-op otherwise.
    tables["ratings"] = faults.fail_task_once(tables["ratings"])
    return report, tables


def write_csv(path: str | Path, frame: Any) -> None:
    """Write a pandas DataFrame as CSV with a header, atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def read_small_csv(path: str | Path, what: str = "file") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and data rows of a small hand-written CSV file, with line numbers.

    Reads UTF-8 (a byte-order mark is fine) with RFC 4180 quoting. Blank
    lines and lines starting with ``#`` are skipped; every other line is a
    row, numbered by the file line it starts on. An empty file gives
    ``([], [])``; a missing or undecodable file is a MovieRecError.
    """
    path = Path(path).expanduser()
    start: list[int | None] = [None]

    def lines(fh) -> Iterator[str]:
        for number, line in enumerate(fh, 1):
            if start[0] is None:
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                start[0] = number
            yield line

    rows: list[tuple[int, list[str]]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(lines(fh))
            for fields in reader:
                rows.append((start[0] or 0, fields))
                start[0] = None
    except FileNotFoundError:
        raise MovieRecError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise MovieRecError(f"{what} {path} is a folder, not a file; give the file's path") from None
    except UnicodeDecodeError as exc:
        raise MovieRecError(f"{what} {path} is not UTF-8 text ({exc.reason}); save it as UTF-8 CSV") from None
    except csv.Error as exc:
        # The row's first line: a quoted field may have run on over many lines.
        where = f"line {start[0]}: " if start[0] else ""
        raise MovieRecError(f"{what} {path} is not valid CSV: {where}{exc}") from None
    if not rows:
        return [], []
    (_, header), data = rows[0], rows[1:]
    return header, data


CATALOG = "catalog"


def write_catalog(catalog: DataFrame, model_dir: str | Path) -> Path:
    """Save the movies table with rating counts as Parquet under ``model_dir/catalog``."""
    target = Path(model_dir) / CATALOG
    write_table(catalog, target)
    return target


def read_catalog(spark: SparkSession, model_dir: str | Path) -> DataFrame | None:
    """The catalog saved beside a model, or ``None`` when the model has none."""
    target = Path(model_dir) / CATALOG
    if not target.is_dir():
        return None
    from movierec_spark.data.schemas import CATALOG as CATALOG_SCHEMA

    # The schema is known: without it Spark runs a job to read a file footer.
    return spark.read.schema(CATALOG_SCHEMA).parquet(str(target))

MOVIE_TABLE = "movie_table"


def write_movie_table(table: Any, model_dir: str | Path) -> Path:
    """Save a model's per-movie table under ``model_dir/movie_table``, as one Parquet file.

    One file (a DataFrame is written ``coalesce(1)``; an Arrow table is
    one file anyway), so that :func:`read_movie_table` reads it on the
    driver in one go: it is small (ml-25m: 62k movies, a few MB).
    """
    target = Path(model_dir) / MOVIE_TABLE
    write_table(table.coalesce(1) if is_spark_frame(table) else table, target)
    return target


def read_movie_table(model_dir: str | Path, required: Sequence[str]) -> Any:
    """The table of :func:`write_movie_table` as pandas, read with pyarrow, or ``None`` when there is none.

    No Spark job: the file is read on the driver (a saved model's folder is
    local, as ``check_model_dir`` requires). A table lacking one of the
    ``required`` columns is a MovieRecError.
    """
    import pyarrow.parquet as pq

    target = Path(model_dir) / MOVIE_TABLE
    if not target.is_dir():
        return None
    dataset = pq.ParquetDataset(str(target))
    missing = [c for c in required if c not in dataset.schema.names]
    if missing:
        raise MovieRecError(
            f"{target} lacks column(s) {', '.join(missing)}; retrain the model with "
            "./spark-submit.sh jobs/train_als.py --output DIR, or delete that folder"
        )
    return dataset.read().to_pandas()


ALS_FACTOR_TABLES = ("userFactors", "itemFactors")


def read_als_factors(spark: SparkSession, als_dir: str | Path) -> dict[str, DataFrame]:
    """The two factor tables of an ALSModel saved in ``als_dir``, by name (``userFactors``, ``itemFactors``).

    Read as Parquet with their known schema (``schemas.ALS_FACTORS``:
    ``id int, features array<float>``), so no Spark job runs, where
    ``ALSModel.load`` runs three (its metadata file and a footer read per
    table). A missing table is a MovieRecError.
    """
    from movierec_spark.data.schemas import ALS_FACTORS as ALS_FACTORS_SCHEMA

    tables = {}
    for name in ALS_FACTOR_TABLES:
        folder = Path(als_dir) / name
        if not folder.is_dir():
            raise MovieRecError(
                f"{folder} is missing: the model's ALS factors are incomplete; "
                "retrain it with ./spark-submit.sh jobs/train_als.py --output DIR"
            )
        tables[name] = spark.read.schema(ALS_FACTORS_SCHEMA).parquet(str(folder))
    return tables


# --- small result tables and report files ---


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path``, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path``, creating its folder."""
    write_bytes(path, text.encode("utf-8"))


def write_small_table(table: Any, folder: str | Path, name: str) -> list[Path]:
    """Write a small Arrow table as ``<name>.parquet`` and ``<name>.csv`` in ``folder``.

    For aggregates already collected to the driver (``DataFrame.toArrow()``):
    one file each that a person can open, instead of Spark's folder of part
    files. The Parquet file keeps Spark's types; in the CSV, list columns
    (genres) become ``|``-joined strings, since CSV has no lists.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parquet_path, csv_path = folder / f"{name}.parquet", folder / f"{name}.csv"
    pq.write_table(table, parquet_path)
    flat = table
    for i, column in enumerate(table.schema):
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            joined = pc.binary_join(table.column(i).cast(pa.list_(pa.string())), "|")
            flat = flat.set_column(i, column.name, joined)
    pcsv.write_csv(flat, csv_path)
    return [parquet_path, csv_path]
