"""The exploration report of one release: every aggregate in Spark, collected small, rendered and published.

:func:`explore_release` computes every table of :mod:`movierec_spark.eda.explore`
in Spark, collects only those small results (through Arrow), renders the
plots and the report (:mod:`movierec_spark.eda.report`) and writes,
atomically, to the ``[eda] output`` folder::

    report.html           one self-contained page: plots embedded, tables, captions
    report.md             the same report in Markdown, linking plots/*.png
    plots/<name>.png      the plots (matplotlib)
    tables/<name>.parquet every aggregate, with Spark's column types
    tables/<name>.csv     the same table for a spreadsheet
    summary.json          headline figures, settings, rows per table, timings
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping

from movierec_spark import MovieRecError
from movierec_spark.settings import EdaSettings

log = logging.getLogger(__name__)

# Tables with one row per problem (pair, movie): not bounded by design, so
# at most ``max_listed_rows`` of them are collected, and the report says so.
LISTINGS = ("duplicates", "never_rated", "rated_but_missing")


def _as_is(df: Any) -> Any:
    return df


def aggregates(loaded: Any, eda: EdaSettings, keep: Callable[[Any], Any] = _as_is) -> dict[str, Any]:
    """Every report table as a lazy Spark DataFrame, by name (report.TABLES order).

    ``keep`` is applied to the intermediates several tables share (the
    per-count histograms, the per-movie figures); the job persists them.
    """
    from movierec_spark import columns as C
    from movierec_spark.eda import explore as X
    from movierec_spark.eda.report import DEMOGRAPHIC_TABLES

    ratings, movies, users = loaded.ratings, loaded.movies, loaded.users
    hist = keep(
        X.count_histogram(X.user_counts(ratings), "users").unionByName(
            X.count_histogram(X.movie_counts(ratings), "movies")
        )
    )
    stats = keep(X.movie_stats(ratings, movies, eda.damping))
    nulls = X.nulls_per_column(ratings, "ratings")
    for name in ("movies", "users", "tags", "links"):
        table = getattr(loaded, name, None)
        if table is not None:
            nulls = nulls.unionByName(X.nulls_per_column(table, name))
    tables = {
        "summary": X.rating_summary(ratings, movies),
        "nulls": nulls,
        "rejects": X.rejects_by_reason(loaded.rejects),
        "duplicates": X.duplicate_pairs(ratings),
        "never_rated": X.never_rated_movies(ratings, movies),
        "rated_but_missing": X.rated_but_missing_movies(ratings, movies),
        "support": X.support_filter(ratings, eda.min_user_ratings, eda.min_movie_ratings),
        "rating_distribution": X.rating_distribution(ratings, loaded.scale),
        "count_quantiles": X.count_quantiles(hist),
        "count_histogram": hist,
        "top_shares": X.top_shares(hist, eda.top_shares),
        "lorenz": X.lorenz_points(hist),
        "gini": X.gini(hist),
        "most_rated": X.most_rated(stats, eda.top_n),
        "best_rated": X.best_rated(stats, eda.top_n),
        "genres": X.genre_stats(ratings, movies),
        "release_years": X.ratings_by_release_year(ratings, movies),
        "ratings_by_month": X.ratings_by_period(ratings, "month"),
        "ratings_by_year": X.ratings_by_period(ratings, "year"),
    }
    if users is not None:
        for column in (C.GENDER, C.AGE, C.OCCUPATION):
            tables[DEMOGRAPHIC_TABLES[column]] = X.demographic_breakdown(users, ratings, column)
    return tables


def collect(tables: Mapping[str, Any], max_listed_rows: int) -> tuple[dict[str, Any], dict[str, int]]:
    """Each table to Arrow (one Spark job each); listings capped at ``max_listed_rows``.

    Returns the Arrow tables and, per listing, its full row count.
    """
    arrow: dict[str, Any] = {}
    listed: dict[str, int] = {}
    for name, df in tables.items():
        start = time.perf_counter()
        if name in LISTINGS:
            head = df.limit(max_listed_rows + 1).toArrow()
            rows = head.num_rows if head.num_rows <= max_listed_rows else df.count()
            if rows > max_listed_rows:
                log.warning("%s has %d rows; tables/%s keeps the first %d", name, rows, name, max_listed_rows)
            arrow[name] = head.slice(0, max_listed_rows)
            listed[name] = rows
        else:
            arrow[name] = df.toArrow()
        log.debug("collected %s: %d rows in %.1f s", name, arrow[name].num_rows, time.perf_counter() - start)
    return arrow, listed


def explore_release(spark: Any, loaded: Any, eda: EdaSettings, timer: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Aggregate, render and write the report of ``loaded`` to ``eda.output``.

    ``loaded`` is a :class:`movierec_spark.data.load.LoadedRelease` (or anything
    with its name, scale, ratings, movies, users, rejects and source).
    Returns (pandas frames by table name, summary.json payload).
    """
    from movierec_spark import io
    from movierec_spark.eda import report as R
    from movierec_spark.progress import StageTimer

    timer = timer or StageTimer()
    out = io.check_output_dir(eda.output)
    cached: list[Any] = []

    def keep(df: Any) -> Any:
        cached.append(df.persist())
        return df

    # Everything below reads the ratings many times: read and parse them once.
    for df in (loaded.ratings, loaded.movies, loaded.users):
        if df is not None:
            keep(df)
    try:
        with timer.stage("load"):
            n_ratings = loaded.ratings.count()
            log.info("%s: %d ratings loaded", loaded.name, n_ratings)
            if n_ratings == 0:
                rejected = loaded.rejects.count() if loaded.rejects is not None else 0
                raise MovieRecError(
                    f"{loaded.name} at {loaded.source or 'the cache'} has no valid ratings ({rejected} lines rejected); "
                    "nothing to explore: check the ratings file (jobs/ingest.py lists rejected lines)"
                )
        with timer.stage("aggregate"):
            arrow, listed = collect(aggregates(loaded, eda, keep), eda.max_listed_rows)
    finally:
        for df in cached:
            df.unpersist()
    frames = {name: table.to_pandas() for name, table in arrow.items()}
    facts = R.ReportFacts(
        dataset=loaded.name,
        source=str(loaded.source or loaded.name),
        scale_values=loaded.scale.values(),
        min_user_ratings=eda.min_user_ratings,
        min_movie_ratings=eda.min_movie_ratings,
        damping=eda.damping,
        listing_rows=listed,
        has_users=loaded.users is not None,
    )
    with timer.stage("report"):
        report = R.build_report(frames, facts)
        html, markdown = R.render_html(report), R.render_markdown(report)
    summary = {
        "dataset": loaded.name,
        "source": facts.source,
        "scale": {"low": loaded.scale.low, "high": loaded.scale.high, "step": loaded.scale.step},
        "settings": eda.model_dump(exclude={"output"}),
        "key_figures": dict(R.key_figures(frames)),
        "summary": {k: _plain(v) for k, v in (frames["summary"].iloc[0].to_dict().items() if len(frames["summary"]) else [])},
        "rows": {name: listed.get(name, table.num_rows) for name, table in arrow.items()},
        "plots": [p.name for p in report.plots],
        "seconds": timer.seconds,
    }
    with timer.stage("write"), io.staged_output(out) as stage:
        for name, table in arrow.items():
            io.write_small_table(table, stage / "tables", name)
        for plot in report.plots:
            io.write_bytes(stage / "plots" / f"{plot.name}.png", plot.png)
        io.write_text(stage / "report.html", html)
        io.write_text(stage / "report.md", markdown)
        io.write_json(stage / "summary.json", summary)
    print(R.console_summary(frames, facts))
    print(f"report: {out.absolute() / 'report.html'}")
    return frames, summary


def _plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy numbers, timestamps, NaN)."""
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
