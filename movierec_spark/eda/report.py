"""The exploration report: plots and the report.md / report.html that tie them together.

Input is the small aggregates of :mod:`movierec_spark.eda.explore` as pandas
DataFrames, keyed by table name (the keys of :data:`TABLES`), plus a few
facts about the run (:class:`ReportFacts`). Everything here is pure: plots
are PNG bytes and the report is a string, built in memory; the job writes
them. Matplotlib is used through :class:`matplotlib.figure.Figure` with the
Agg canvas, so no display and no global pyplot state is involved.

``report.html`` is self-contained (images embedded as base64 data URIs, CSS
inline, nothing fetched); ``report.md`` links the PNGs beside it.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from movierec_spark import columns as C
from movierec_spark.eda import explore as X

# Aggregate tables the report reads; the job writes each as Parquet and CSV.
TABLES = (
    "summary",
    "nulls",
    "rejects",
    "duplicates",
    "never_rated",
    "rated_but_missing",
    "support",
    "rating_distribution",
    "count_quantiles",
    "count_histogram",
    "top_shares",
    "lorenz",
    "gini",
    "most_rated",
    "best_rated",
    "genres",
    "release_years",
    "ratings_by_month",
    "ratings_by_year",
    "users_by_gender",
    "users_by_age",
    "users_by_occupation",
)
DEMOGRAPHIC_TABLES = {C.GENDER: "users_by_gender", C.AGE: "users_by_age", C.OCCUPATION: "users_by_occupation"}

_DPI = 110
_BLUE = "#3b6ea8"
_ORANGE = "#d9822b"
_GREY = "#8a8a8a"
_RED = "#c0392b"


@dataclass(frozen=True)
class ReportFacts:
    """What the report says about the run besides the tables."""

    dataset: str
    source: str
    scale_values: Sequence[float]
    min_user_ratings: int
    min_movie_ratings: int
    damping: float
    # Rows in the listing tables (the report shows only their first rows).
    listing_rows: Mapping[str, int] = field(default_factory=dict)
    has_rejects: bool = True
    has_users: bool = False
    head_rows: int = 10


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: plots/<name>.png
    title: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Table:
    title: str
    frame: pd.DataFrame
    caption: str = ""


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    items: list[Plot | Table] = field(default_factory=list)


@dataclass
class Report:
    title: str
    subtitle: str
    key_figures: list[tuple[str, str]]
    sections: list[Section]

    @property
    def plots(self) -> list[Plot]:
        return [item for s in self.sections for item in s.items if isinstance(item, Plot)]


# --- number formatting ---


def fmt_int(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "–"
    return f"{int(value):,}"


def fmt_float(value: Any, digits: int = 3) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def fmt_pct(value: Any, digits: int = 1) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "–"
    share = float(value) * 100
    if 0 < share < 10 ** -digits:
        return f"<{10 ** -digits:g}%"
    return f"{share:.{digits}f}%"


def fmt_quantile(value: Any) -> str:
    """A count quantile: whole numbers as such, else one decimal (``64.5``)."""
    if _missing(value):
        return "–"
    value = float(value)
    return fmt_int(value) if value.is_integer() else f"{value:,.1f}"


def fmt_density(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value) * 100:.3g}%"


_SHARE_COLUMNS = {X.NULL_SHARE, X.SHARE, X.REMOVED_SHARE, X.RATING_SHARE, X.USER_SHARE, X.TOP_SHARE, X.ENTITY_SHARE}


def display_frame(frame: pd.DataFrame, rename: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Strings a person reads: thousands separators, shares as percentages."""
    out = pd.DataFrame(index=frame.index)
    for name in frame.columns:
        series = frame[name]
        if name == C.YEAR:
            out[name] = series.map(lambda v: "–" if _missing(v) else str(int(v)))
        elif name in _SHARE_COLUMNS:
            out[name] = series.map(fmt_pct)
        elif pd.api.types.is_bool_dtype(series):
            out[name] = series.map(lambda v: "yes" if v else "no")
        elif pd.api.types.is_integer_dtype(series):
            out[name] = series.map(fmt_int)
        elif pd.api.types.is_float_dtype(series):
            if name == C.RATING:
                out[name] = series.map(lambda v: fmt_float(v, 1))
            elif name == "median" or re.fullmatch(r"p\d+(_\d+)?", name):
                out[name] = series.map(fmt_quantile)
            else:
                out[name] = series.map(fmt_float)
        elif pd.api.types.is_datetime64_any_dtype(series):
            out[name] = series.dt.strftime("%Y-%m-%d")
        else:
            out[name] = series.map(lambda v: "–" if _missing(v) else _cell_text(v))
    out = out.rename(columns={name: _DISPLAY_NAMES.get(name, name.replace("_", " ")) for name in out.columns})
    if rename:
        out = out.rename(columns=rename)
    return out.reset_index(drop=True)


_DISPLAY_NAMES = {
    X.NULLS: "missing",
    X.NULL_SHARE: "missing share",
    X.PER_ENTITY: "ratings each",
    X.STDDEV_RATING: "rating sd",
    X.TOP_SHARE: "top",
    C.USER_ID: "user",
    C.MOVIE_ID: "movie",
}


def _cell_text(value: Any) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(str(v) for v in value)
    return str(value)


# --- plots ---


def _figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (8.0, 4.5), **kwargs: Any):
    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.grid(True, axis="y", color="#e4e4e4", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    return fig, axes


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    return buf.getvalue()


_thousands = FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def _short_count(v: float, _pos: Any = None) -> str:
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _no_data(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=_GREY, fontsize=12)


def plot_rating_distribution(dist: pd.DataFrame, dataset: str) -> bytes:
    fig, axes = _figure(size=(8.0, 4.2))
    ax = axes[0, 0]
    colors = [_BLUE if on else _RED for on in dist[X.ON_SCALE]]
    step = float(np.min(np.diff(sorted(dist[C.RATING])))) if len(dist) > 1 else 1.0
    ax.bar(dist[C.RATING], dist[X.RATINGS], width=step * 0.8, color=colors)
    ax.set_xticks(dist[C.RATING])
    ax.set_xticklabels([f"{v:g}" for v in dist[C.RATING]])
    ax.yaxis.set_major_formatter(FuncFormatter(_short_count))
    ax.set_xlabel("rating (stars)")
    ax.set_ylabel("number of ratings")
    ax.set_title(f"Ratings by value – {dataset}")
    total = dist[X.RATINGS].sum()
    if total:
        for x, n in zip(dist[C.RATING], dist[X.RATINGS]):
            ax.annotate(fmt_pct(n / total, 0), (x, n), ha="center", va="bottom", fontsize=8, color="#444")
    else:
        _no_data(ax)
    return _png(fig)


def _log_bins(min_value: int, max_value: int) -> np.ndarray:
    """About 30 bin edges evenly spaced on a log axis, on whole numbers."""
    low = math.log10(max(min_value, 1))
    high = max(low + 0.1, math.log10(max(max_value, 1) + 1))
    return np.unique(np.floor(np.logspace(low, high, 30)).astype(int)).astype(float)


def plot_count_histograms(hist: pd.DataFrame, medians: Mapping[str, float] | None = None) -> bytes:
    fig, axes = _figure(1, 2, size=(10.0, 4.0))
    for ax, entity, color in zip(axes[0], ("users", "movies"), (_BLUE, _ORANGE)):
        part = hist[hist[X.ENTITY] == entity]
        noun = "user" if entity == "users" else "movie"
        ax.set_title(f"Ratings per {noun}")
        ax.set_xlabel(f"ratings per {noun} (log scale)")
        ax.set_ylabel(f"number of {entity}")
        if part.empty:
            _no_data(ax)
            continue
        bins = _log_bins(int(part[X.PER_ENTITY].min()), int(part[X.PER_ENTITY].max()))
        bins = np.append(bins, bins[-1] + 1) if len(bins) < 2 else bins
        ax.set_xlim(bins[0] * 0.95, bins[-1] * 1.05)
        ax.hist(part[X.PER_ENTITY], bins=bins, weights=part[X.ENTITIES], color=color, edgecolor="white")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(_short_count))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(FuncFormatter(_short_count))
        median = (medians or {}).get(entity)
        if not _missing(median):
            ax.axvline(median, color="#222", linestyle="--", linewidth=1)
            ax.annotate(f"median {fmt_quantile(median)}", (median, 0.95), xycoords=("data", "axes fraction"),
                        xytext=(4, 0), textcoords="offset points", fontsize=8, va="top")
    return _png(fig)


def plot_lorenz(lorenz: pd.DataFrame, gini: pd.DataFrame) -> bytes:
    fig, axes = _figure(size=(6.0, 5.4))
    ax = axes[0, 0]
    ax.grid(True, axis="both", color="#e4e4e4", linewidth=0.8)
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle=":", label="perfect equality")
    g = dict(zip(gini[X.ENTITY], gini[X.GINI])) if not gini.empty else {}
    for entity, color in (("movies", _ORANGE), ("users", _BLUE)):
        part = lorenz[lorenz[X.ENTITY] == entity].sort_values(X.ENTITY_SHARE)
        if part.empty:
            continue
        label = f"{entity} (Gini {fmt_float(g.get(entity), 2)})"
        ax.plot(part[X.ENTITY_SHARE], part[X.RATING_SHARE], color=color, linewidth=2, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    pct = FuncFormatter(lambda v, _p: f"{v * 100:.0f}%")
    ax.xaxis.set_major_formatter(pct)
    ax.yaxis.set_major_formatter(pct)
    ax.set_xlabel("share of movies / users, least rated first")
    ax.set_ylabel("share of all ratings")
    ax.set_title("Lorenz curves: how concentrated ratings are")
    ax.legend(loc="upper left", frameon=False)
    return _png(fig)


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _short_title(title: Any, year: Any = None, width: int = 42) -> str:
    """``Title (1977)``, cut to ``width`` characters with an ellipsis."""
    text = "(unknown title)" if _missing(title) else str(title)
    suffix = "" if _missing(year) else f" ({int(year)})"
    if len(text) + len(suffix) > width:
        text = text[: max(1, width - len(suffix) - 1)] + "…"
    return text + suffix


def plot_top_movies(top: pd.DataFrame, value: str, title: str, xlabel: str) -> bytes:
    rows = max(len(top), 1)
    fig, axes = _figure(size=(8.5, 1.2 + 0.32 * rows))
    ax = axes[0, 0]
    ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.8)
    ax.grid(False, axis="y")
    if top.empty:
        _no_data(ax)
    else:
        labels = [_short_title(t, y) for t, y in zip(top[C.TITLE], top[C.YEAR])]
        y = np.arange(len(top))[::-1]
        ax.barh(y, top[value], color=_BLUE)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        if value == X.DAMPED_MEAN:
            low = max(0.0, float(top[value].min()) - 0.3)
            ax.set_xlim(low, float(top[value].max()) + 0.1)
        for yi, v in zip(y, top[value]):
            ax.annotate(fmt_float(v, 2) if value == X.DAMPED_MEAN else f"{int(v):,}", (v, yi),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _png(fig)


def plot_genres(genres: pd.DataFrame) -> bytes:
    rows = max(len(genres), 1)
    fig, axes = _figure(1, 2, size=(10.0, 1.4 + 0.28 * rows), sharey=True)
    left, right = axes[0]
    for ax in (left, right):
        ax.grid(True, axis="x", color="#e4e4e4", linewidth=0.8)
        ax.grid(False, axis="y")
    if genres.empty:
        _no_data(left)
    else:
        y = np.arange(len(genres))[::-1]
        left.barh(y, genres[X.RATINGS], color=_BLUE)
        left.set_yticks(y)
        left.set_yticklabels(genres[X.GENRE], fontsize=8)
        left.xaxis.set_major_formatter(FuncFormatter(_short_count))
        means = genres[X.MEAN_RATING].astype(float)
        right.scatter(means, y, color=_ORANGE, zorder=3)
        right.hlines(y, means.min() - 0.05 if means.notna().any() else 0, means, color=_ORANGE, alpha=0.4)
    left.set_xlabel("number of ratings")
    left.set_title("Ratings per genre")
    right.set_xlabel("mean rating (stars)")
    right.set_title("Mean rating per genre")
    return _png(fig)


def plot_release_years(years: pd.DataFrame) -> bytes:
    fig, axes = _figure(2, 1, size=(9.0, 5.5), sharex=True)
    top, bottom = axes[:, 0]
    known = years[years[C.YEAR].notna()]
    if known.empty:
        _no_data(top)
    else:
        years_ = known[C.YEAR].astype(int)
        top.bar(years_, known[X.RATINGS], width=1.0, color=_BLUE)
        # Dot area follows the year's ratings, so a year with two ratings
        # does not look as sure of its mean as one with thousands.
        sizes = 4 + 120 * np.sqrt(known[X.RATINGS] / known[X.RATINGS].max())
        bottom.plot(years_, known[X.MEAN_RATING], color=_ORANGE, linewidth=0.6, alpha=0.5)
        bottom.scatter(years_, known[X.MEAN_RATING], s=sizes, color=_ORANGE, alpha=0.8, edgecolors="none")
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.yaxis.set_major_formatter(FuncFormatter(_short_count))
    top.set_ylabel("number of ratings")
    top.set_title("Ratings by the movie's release year")
    bottom.set_ylabel("mean rating (stars)")
    bottom.set_xlabel("release year (dot size: number of ratings)")
    return _png(fig)


def plot_time(months: pd.DataFrame) -> bytes:
    fig, axes = _figure(2, 1, size=(9.0, 5.5), sharex=True)
    top, bottom = axes[:, 0]
    known = months[months[X.PERIOD].notna()].copy()
    if known.empty:
        _no_data(top)
    else:
        when = pd.to_datetime(known[X.PERIOD])
        top.bar(when, known[X.RATINGS], width=25, color=_BLUE)
        bottom.plot(when, known[X.MEAN_RATING], color=_ORANGE, linewidth=0.8, alpha=0.5, label="monthly mean")
        # Weighted 12-month rolling mean: months with few ratings count little.
        weighted = (known[X.MEAN_RATING] * known[X.RATINGS]).rolling(12, min_periods=1).sum()
        trend = weighted / known[X.RATINGS].rolling(12, min_periods=1).sum()
        bottom.plot(when, trend, color="#222", linewidth=1.6, label="12-month mean")
        bottom.legend(loc="lower left", frameon=False, fontsize=8)
    top.yaxis.set_major_formatter(FuncFormatter(_short_count))
    top.set_ylabel("ratings per month")
    top.set_title("Ratings over time, and how the mean rating drifts")
    bottom.set_ylabel("mean rating (stars)")
    bottom.set_xlabel("month the rating was given (UTC)")
    return _png(fig)


def plot_demographics(frames: Mapping[str, pd.DataFrame]) -> bytes:
    """Users per group (top row) and the group's mean rating (bottom row)."""
    fig, axes = _figure(2, 3, size=(12.0, 6.4), width_ratios=[1, 2, 4], height_ratios=[3, 2], sharex="col")
    titles = {C.GENDER: "Gender", C.AGE: "Age group", C.OCCUPATION: "Occupation"}
    for i, column in enumerate((C.GENDER, C.AGE, C.OCCUPATION)):
        users_ax, mean_ax = axes[0, i], axes[1, i]
        frame = frames.get(DEMOGRAPHIC_TABLES[column])
        users_ax.set_title(titles[column])
        if i == 0:
            users_ax.set_ylabel("number of users")
            mean_ax.set_ylabel("mean rating (stars)")
        mean_ax.set_xlabel(titles[column].lower())
        if frame is None or frame.empty:
            _no_data(users_ax)
            continue
        x = np.arange(len(frame))
        users_ax.bar(x, frame[X.USERS], color=_BLUE)
        means = frame[X.MEAN_RATING].astype(float)
        mean_ax.scatter(x, means, color=_ORANGE, zorder=3, s=18)
        if means.notna().any():
            pad = max(0.05, (means.max() - means.min()) * 0.15)
            mean_ax.set_ylim(means.min() - pad, means.max() + pad)
        mean_ax.set_xticks(x)
        rotate = column != C.GENDER
        mean_ax.set_xticklabels(frame[X.GROUP], rotation=60 if rotate else 0, ha="right" if rotate else "center", fontsize=8)
    return _png(fig)


# --- the report ---


def _first(frame: pd.DataFrame | None) -> dict[str, Any]:
    return {} if frame is None or frame.empty else frame.iloc[0].to_dict()


def key_figures(frames: Mapping[str, pd.DataFrame]) -> list[tuple[str, str]]:
    s = _first(frames.get("summary"))
    first, last = s.get("first_rated"), s.get("last_rated")
    span = "–"
    if first is not None and not pd.isna(first):
        span = f"{pd.Timestamp(first):%Y-%m-%d} to {pd.Timestamp(last):%Y-%m-%d}"
    return [
        ("ratings", fmt_int(s.get(X.RATINGS))),
        ("users", fmt_int(s.get(X.USERS))),
        ("movies rated", fmt_int(s.get(X.MOVIES))),
        ("movies in catalogue", fmt_int(s.get("catalog_movies"))),
        ("matrix density", fmt_density(s.get("density"))),
        ("mean / median rating", f"{fmt_float(s.get('mean'), 2)} / {fmt_float(s.get('median'), 1)}"),
        ("standard deviation", fmt_float(s.get("stddev"), 2)),
        ("rated between", span),
    ]


def _count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``, ``1,234 rows``."""
    return f"{n:,} {noun if n == 1 else (plural or noun + 's')}"


def _listing_text(facts: ReportFacts, name: str, one: str, many: str, none: str) -> tuple[int, str]:
    n = facts.listing_rows.get(name, 0)
    if n == 0:
        return n, none
    shown = min(n, facts.head_rows)
    more = f" (the first {shown} below; all in tables/{name}.csv)" if n > shown else " (below)"
    return n, f"{n:,} {one if n == 1 else many}{more}."


def _section_quality(frames: Mapping[str, pd.DataFrame], facts: ReportFacts) -> Section:
    sec = Section("Missing and bad data")
    nulls = frames["nulls"]
    missing = nulls[nulls[X.NULLS] > 0]
    if missing.empty:
        sec.text.append("No table has a missing value in any column.")
    else:
        parts = [f"{r[C.TABLE]}.{r[X.COLUMN]}: {fmt_int(r[X.NULLS])} ({fmt_pct(r[X.NULL_SHARE], 2)})" for _, r in missing.iterrows()]
        sec.text.append("Missing values (null, or NaN in number columns): " + "; ".join(parts) + ".")
    sec.items.append(Table("Missing values per column", display_frame(nulls)))
    rejects = frames.get("rejects")
    if not facts.has_rejects:
        sec.text.append("Rows rejected at ingest: not recorded for this source.")
    elif rejects is None or rejects.empty:
        sec.text.append("No row was rejected at ingest: every line parsed and passed validation.")
    else:
        n = int(rejects[X.ROWS].sum())
        sec.text.append(
            f"{_count(n, 'row')} {'was' if n == 1 else 'were'} rejected at ingest, by reason below "
            "(the ingest output keeps each rejected line)."
        )
        sec.items.append(Table("Rows rejected at ingest", display_frame(rejects)))
    checks = [
        ("duplicates", "(user, movie) pair is rated more than once", "(user, movie) pairs are rated more than once",
         "No (user, movie) pair is rated twice."),
        ("never_rated", "movie in the catalogue has no rating", "movies in the catalogue have no rating",
         "Every movie in the catalogue has at least one rating."),
        ("rated_but_missing", "rated movie id is missing from the movies table",
         "rated movie ids are missing from the movies table", "Every rated movie is in the movies table."),
    ]
    titles = {"duplicates": "Duplicate pairs", "never_rated": "Movies never rated", "rated_but_missing": "Rated movies missing from the catalogue"}
    for name, one, many, none in checks:
        n, text = _listing_text(facts, name, one, many, none)
        sec.text.append(text)
        frame = frames.get(name)
        if n and frame is not None and not frame.empty:
            sec.items.append(Table(titles[name], display_frame(frame.head(facts.head_rows))))
    support = frames["support"]
    by = {r[X.ENTITY]: r for _, r in support.iterrows()}
    if "ratings" in by:
        sec.items.append(
            Table(
                f"Minimum support: users with fewer than {facts.min_user_ratings} ratings, "
                f"movies with fewer than {facts.min_movie_ratings}",
                display_frame(support),
                caption=(
                    f"Dropping them in one pass would remove {_count(int(by['users'][X.REMOVED]), 'user')} "
                    f"({fmt_pct(by['users'][X.REMOVED_SHARE])}), {_count(int(by['movies'][X.REMOVED]), 'movie')} "
                    f"({fmt_pct(by['movies'][X.REMOVED_SHARE])}) and {_count(int(by['ratings'][X.REMOVED]), 'rating')} "
                    f"({fmt_pct(by['ratings'][X.REMOVED_SHARE])})."
                ),
            )
        )
    return sec


def _section_ratings(frames: Mapping[str, pd.DataFrame], facts: ReportFacts) -> Section:
    sec = Section("Ratings")
    dist = frames["rating_distribution"]
    s = _first(frames.get("summary"))
    scale = ", ".join(f"{v:g}" for v in facts.scale_values)
    off = dist[~dist[X.ON_SCALE] & (dist[X.RATINGS] > 0)]
    mode = dist.loc[dist[X.RATINGS].idxmax()] if dist[X.RATINGS].sum() else None
    caption = f"The release's scale is {scale}."
    if mode is not None:
        caption += f" The most common rating is {mode[C.RATING]:g} ({fmt_pct(mode[X.SHARE])} of all ratings)."
    if not off.empty:
        n_off = int(off[X.RATINGS].sum())
        caption += f" {_count(n_off, 'rating')} {'is' if n_off == 1 else 'are'} off the scale (red)."
    sec.items.append(Plot("rating_distribution", "Rating distribution", plot_rating_distribution(dist, facts.dataset), caption))
    sec.text.append(
        f"Mean rating {fmt_float(s.get('mean'), 3)}, median {fmt_float(s.get('median'), 1)}, "
        f"standard deviation {fmt_float(s.get('stddev'), 3)}, over {fmt_int(s.get(X.RATINGS))} ratings. "
        f"{fmt_int(s.get(X.USERS))} users rated {fmt_int(s.get(X.MOVIES))} movies, so "
        f"{fmt_density(s.get('density'))} of the user × movie matrix is filled."
    )
    quantiles = frames["count_quantiles"]
    q = {r[X.ENTITY]: r for _, r in quantiles.iterrows()}
    caption = ""
    if "users" in q and "movies" in q:
        caption = (
            f"The median user rated {fmt_quantile(q['users']['median'])} movies (least {fmt_int(q['users']['min'])}, "
            f"most {fmt_int(q['users']['max'])}); the median movie has {fmt_quantile(q['movies']['median'])} ratings "
            f"(most {fmt_int(q['movies']['max'])})."
        )
    sec.items.append(Plot("ratings_per_user_and_movie", "Ratings per user and per movie",
                          plot_count_histograms(frames["count_histogram"], {e: r["median"] for e, r in q.items()}), caption))
    sec.items.append(
        Table(
            "Ratings per user and per movie: exact quantiles",
            display_frame(quantiles),
            caption="p10 is the 10th percentile and so on, interpolated between neighbouring ranks.",
        )
    )
    return sec


def _section_long_tail(frames: Mapping[str, pd.DataFrame]) -> Section:
    sec = Section("Long tail")
    shares = frames["top_shares"]
    movies = shares[shares[X.ENTITY] == "movies"]
    if not movies.empty:
        parts = [f"the top {fmt_pct(r[X.TOP_SHARE], 0)} ({_count(int(r[X.ENTITIES]), 'movie')}) get {fmt_pct(r[X.RATING_SHARE])}"
                 for _, r in movies.iterrows()]
        sec.text.append("Of all ratings, " + "; ".join(parts) + ".")
    g = dict(zip(frames["gini"][X.ENTITY], frames["gini"][X.GINI]))
    caption = (
        "The further a curve bows below the diagonal, the more the ratings concentrate on few movies (users). "
        f"Gini coefficient: movies {fmt_float(g.get('movies'), 3)}, users {fmt_float(g.get('users'), 3)} "
        "(0: all equal, 1: one takes all)."
    )
    sec.items.append(Plot("lorenz", "Lorenz curves", plot_lorenz(frames["lorenz"], frames["gini"]), caption))
    sec.items.append(Table("Share of ratings held by the most-rated movies and users", display_frame(shares)))
    return sec


_TOP_COLUMNS = [C.RANK, C.TITLE, C.YEAR, X.RATINGS, X.MEAN_RATING, X.DAMPED_MEAN]


def _section_movies(frames: Mapping[str, pd.DataFrame], facts: ReportFacts) -> Section:
    sec = Section("Movies")
    most, best = frames["most_rated"], frames["best_rated"]
    if not most.empty:
        head = most.iloc[0]
        sec.text.append(
            f"Most rated: {_short_title(head[C.TITLE], head[C.YEAR], width=80)} with {fmt_int(head[X.RATINGS])} ratings."
        )
    sec.items.append(Plot("most_rated", "Most-rated movies",
                          plot_top_movies(most, X.RATINGS, "Most-rated movies", "number of ratings"), ""))
    sec.items.append(Table("Most-rated movies", display_frame(most[[c for c in _TOP_COLUMNS if c in most]])))
    damping = f"{facts.damping:g}"
    sec.items.append(
        Plot(
            "best_rated",
            "Best-rated movies (damped mean)",
            plot_top_movies(best, X.DAMPED_MEAN, "Best-rated movies by damped mean", "damped mean rating (stars)"),
            f"Damped mean = (sum of the movie's ratings + {damping} × global mean) / (its ratings + {damping}): "
            f"each movie starts with {damping} pseudo-ratings at the global mean, so one 5-star rating "
            "cannot top the list; its own ratings take over as they accumulate.",
        )
    )
    sec.items.append(Table("Best-rated movies", display_frame(best[[c for c in _TOP_COLUMNS if c in best]])))
    genres = frames["genres"]
    caption = ""
    rated = genres[genres[X.RATINGS] > 0]
    if not rated.empty:
        hi = rated.loc[rated[X.MEAN_RATING].idxmax()]
        lo = rated.loc[rated[X.MEAN_RATING].idxmin()]
        caption = (
            f"{genres.iloc[0][X.GENRE]} has the most ratings ({fmt_int(genres.iloc[0][X.RATINGS])}); "
            f"{hi[X.GENRE]} the highest mean ({fmt_float(hi[X.MEAN_RATING], 2)}) and {lo[X.GENRE]} the lowest "
            f"({fmt_float(lo[X.MEAN_RATING], 2)}). A movie counts in each of its genres."
        )
    sec.items.append(Plot("genres", "Genres", plot_genres(genres), caption))
    sec.items.append(Table("Genres", display_frame(genres)))
    years = frames["release_years"]
    known = years[years[C.YEAR].notna()]
    caption = ""
    if not known.empty:
        peak = known.loc[known[X.RATINGS].idxmax()]
        unknown = years[years[C.YEAR].isna()]
        caption = (
            f"Movies released {int(known[C.YEAR].min())}–{int(known[C.YEAR].max())}; "
            f"those from {int(peak[C.YEAR])} got the most ratings ({fmt_int(peak[X.RATINGS])})."
        )
        if not unknown.empty:
            caption += f" {fmt_int(unknown[X.RATINGS].sum())} ratings are of movies with no known release year."
    sec.items.append(Plot("release_years", "Ratings by release year", plot_release_years(years), caption))
    return sec


def _section_time(frames: Mapping[str, pd.DataFrame]) -> Section:
    sec = Section("Time")
    months, years = frames["ratings_by_month"], frames["ratings_by_year"]
    known = months[months[X.PERIOD].notna()]
    caption = ""
    if not known.empty:
        busiest = known.loc[known[X.RATINGS].idxmax()]
        known_years = years[years[X.PERIOD].notna()]
        first, last = known_years.iloc[0], known_years.iloc[-1]
        caption = (
            f"The busiest month was {pd.Timestamp(busiest[X.PERIOD]):%B %Y} with {fmt_int(busiest[X.RATINGS])} ratings. "
            f"The yearly mean moved from {fmt_float(first[X.MEAN_RATING], 2)} in {pd.Timestamp(first[X.PERIOD]).year} "
            f"to {fmt_float(last[X.MEAN_RATING], 2)} in {pd.Timestamp(last[X.PERIOD]).year}."
        )
    missing = months[months[X.PERIOD].isna()]
    if not missing.empty:
        caption += f" {fmt_int(missing[X.RATINGS].sum())} ratings have no timestamp."
    sec.items.append(Plot("ratings_over_time", "Ratings over time", plot_time(months), caption))
    shown = years.copy()
    shown[X.PERIOD] = pd.array([None if pd.isna(p) else pd.Timestamp(p).year for p in shown[X.PERIOD]], dtype="Int64")
    sec.items.append(Table("Ratings per year", display_frame(shown.rename(columns={X.PERIOD: "year"}))))
    return sec


def _section_users(frames: Mapping[str, pd.DataFrame], facts: ReportFacts) -> Section:
    sec = Section("Users")
    if not facts.has_users:
        sec.text.append(f"{facts.dataset} has no user demographics (only ml-100k and ml-1m do).")
        return sec
    gender = frames.get("users_by_gender")
    if gender is not None and not gender.empty:
        parts = [f"{r[X.GROUP]} {fmt_pct(r[X.USER_SHARE])}" for _, r in gender.iterrows()]
        sec.text.append("Users by gender: " + ", ".join(parts) + ".")
    sec.items.append(
        Plot("demographics", "Demographics", plot_demographics(frames),
             "Users per group; the orange numbers are each group's mean rating. "
             "Ages are binned into ml-1m's groups.")
    )
    for column in (C.GENDER, C.AGE, C.OCCUPATION):
        frame = frames.get(DEMOGRAPHIC_TABLES[column])
        if frame is not None:
            sec.items.append(Table(f"Users by {column}", display_frame(frame)))
    return sec


def build_report(frames: Mapping[str, pd.DataFrame], facts: ReportFacts) -> Report:
    """The whole report, plots rendered, from the aggregates in ``frames``."""
    sections = [
        _section_quality(frames, facts),
        _section_ratings(frames, facts),
        _section_long_tail(frames),
        _section_movies(frames, facts),
        _section_time(frames),
        _section_users(frames, facts),
    ]
    return Report(
        title=f"MovieLens {facts.dataset}: data quality and exploration",
        subtitle=f"Source: {facts.source}",
        key_figures=key_figures(frames),
        sections=sections,
    )


# --- rendering ---


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _text_columns(frame: pd.DataFrame) -> set[str]:
    """Columns that hold words, not numbers: left-aligned in tables."""
    return {c for c in frame.columns if not all(_looks_numeric(v) for v in frame[c])}


def markdown_table(frame: pd.DataFrame) -> str:
    text = _text_columns(frame)
    header = "| " + " | ".join(_md_cell(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" if c in text else "---:" for c in frame.columns) + " |"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def render_markdown(report: Report, plot_dir: str = "plots") -> str:
    """report.md; images are linked as ``<plot_dir>/<name>.png``."""
    out = [f"# {report.title}", "", report.subtitle, "", "| figure | value |", "| --- | --- |"]
    out += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in report.key_figures]
    for sec in report.sections:
        out += ["", f"## {sec.title}", ""]
        for paragraph in sec.text:
            out += [paragraph, ""]
        for item in sec.items:
            if isinstance(item, Plot):
                out += [f"![{item.title}]({plot_dir}/{item.name}.png)", ""]
                if item.caption:
                    out += [f"*{item.caption}*", ""]
            else:
                out += [f"**{item.title}**", ""]
                out += [markdown_table(item.frame), ""]
                if item.caption:
                    out += [item.caption, ""]
    return "\n".join(out).rstrip() + "\n"


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; color: #222;
       max-width: 1000px; margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.sub { color: #666; margin-top: 0; }
.keys { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 0.6em; margin: 1.2em 0; }
.key { background: #f4f6f9; border-radius: 6px; padding: 0.5em 0.8em; }
.key .v { font-size: 1.15em; font-weight: 600; }
.key .k { color: #666; font-size: 0.85em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .caption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.4em 0 1.2em; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3em; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e6e6e6; text-align: right; }
th { background: #f4f6f9; }
td.text, th.text { text-align: left; }
.tablewrap { overflow-x: auto; }
nav a { margin-right: 1em; }
"""


def _html_table(table: Table) -> str:
    frame = table.frame
    text_cols = _text_columns(frame)
    head = "".join(f'<th class="{"text" if c in text_cols else ""}">{html.escape(str(c))}</th>' for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False):
        cells = "".join(
            f'<td class="{"text" if c in text_cols else ""}">{html.escape(str(v))}</td>' for c, v in zip(frame.columns, row)
        )
        rows.append(f"<tr>{cells}</tr>")
    caption = f'<p class="caption">{html.escape(table.caption)}</p>' if table.caption else ""
    return (
        f'<div class="tablewrap"><table><caption>{html.escape(table.title)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{caption}"
    )


def _looks_numeric(value: Any) -> bool:
    text = str(value).replace(",", "").replace("%", "").replace("<", "").strip()
    if text in ("–", ""):
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def _anchor(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")


def render_html(report: Report) -> str:
    """One self-contained page: CSS inline, every image a base64 data URI."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="sub">{html.escape(report.subtitle)}</p>',
        '<div class="keys">'
        + "".join(
            f'<div class="key"><div class="v">{html.escape(v)}</div><div class="k">{html.escape(k)}</div></div>'
            for k, v in report.key_figures
        )
        + "</div>",
        "<nav>" + "".join(f'<a href="#{_anchor(s.title)}">{html.escape(s.title)}</a>' for s in report.sections) + "</nav>",
    ]
    for sec in report.sections:
        parts.append(f'<h2 id="{_anchor(sec.title)}">{html.escape(sec.title)}</h2>')
        parts += [f"<p>{html.escape(p)}</p>" for p in sec.text]
        for item in sec.items:
            if isinstance(item, Plot):
                data = base64.b64encode(item.png).decode("ascii")
                caption = f"<figcaption>{html.escape(item.caption)}</figcaption>" if item.caption else ""
                parts.append(
                    f'<figure><img alt="{html.escape(item.title)}" src="data:image/png;base64,{data}">{caption}</figure>'
                )
            else:
                parts.append(_html_table(item))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def console_summary(frames: Mapping[str, pd.DataFrame], facts: ReportFacts, top: int = 5) -> str:
    """A few lines for the terminal: counts, density, top movies."""
    lines = [f"{facts.dataset}: " + ", ".join(f"{k} {v}" for k, v in key_figures(frames)[:5])]
    s = _first(frames.get("summary"))
    lines.append(
        f"  mean {fmt_float(s.get('mean'), 2)}, median {fmt_float(s.get('median'), 1)}, "
        f"sd {fmt_float(s.get('stddev'), 2)}"
    )
    issues = [f"{name.replace('_', ' ')} {n:,}" for name, n in facts.listing_rows.items() if n]
    rejects = frames.get("rejects")
    if rejects is not None and not rejects.empty:
        issues.insert(0, f"rejected rows {int(rejects[X.ROWS].sum()):,}")
    lines.append("  data issues: " + (", ".join(issues) if issues else "none found"))
    for name, label, value in (("most_rated", "most rated", X.RATINGS), ("best_rated", "best rated", X.DAMPED_MEAN)):
        frame = frames.get(name)
        if frame is None or frame.empty:
            continue
        lines.append(f"  {label}:")
        for _, r in frame.head(top).iterrows():
            shown = fmt_int(r[value]) + " ratings" if value == X.RATINGS else f"{r[value]:.2f} damped mean, {fmt_int(r[X.RATINGS])} ratings"
            lines.append(f"    {int(r[C.RANK]):>2}. {_short_title(r[C.TITLE], r[C.YEAR], width=60)}: {shown}")
    return "\n".join(lines)
