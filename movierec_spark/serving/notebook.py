"""The interactive rating app of ``notebooks/recommend_for_me.ipynb`` (ipywidgets).

A person types part of a title, picks a movie from the matches, rates it,
and asks for their top-N table or for the movies most like one they picked.
Everything it shows comes from :class:`movierec_spark.serving.local.LocalRecommender`
(title search, checked ratings, fold-in, top-N and similar tables), which
reads the saved model with pyarrow: the kernel starts no JVM and each
rating and button answers at once. This module only lays out widgets and
wires buttons to those calls. Every button
has a method doing the same (:meth:`RatingApp.rate`, :meth:`RatingApp.recommend`,
:meth:`RatingApp.similar`), so the notebook also runs headless.

ipywidgets is imported when an app is built, so the library itself does not
need it (``pip install -e '.[notebook]'``).
"""

from __future__ import annotations

import html
import logging
from typing import Any

import pandas as pd

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.serving.custom import parse_rating
from movierec_spark.serving.local import LocalRecommender
from movierec_spark.data.titles import Movie

log = logging.getLogger(__name__)


def readable_top_n(frame: pd.DataFrame) -> pd.DataFrame:
    """A top-N table with the columns a person reads, named for people."""
    out = pd.DataFrame(
        {
            "#": frame[C.RANK],
            "movie": [_label(t, y) for t, y in zip(frame[C.TITLE], frame[C.YEAR])],
            "genres": [", ".join(g) if g is not None else "" for g in frame[C.GENRES]],
            "predicted": frame[C.PREDICTION].round(2),
            "ratings": frame[C.NUM_RATINGS],
            "because you liked": frame[C.BECAUSE_YOU_LIKED].fillna(""),
            # "popular": the most-liked movies, for ratings the model cannot use yet.
            "list": frame[C.BASIS],
        }
    )
    return out.reset_index(drop=True)


def readable_similar(frame: pd.DataFrame) -> pd.DataFrame:
    """A similar-movies table for people."""
    return pd.DataFrame(
        {
            "#": frame[C.RANK],
            "movie": [_label(t, y) for t, y in zip(frame[C.TITLE], frame[C.YEAR])],
            "genres": [", ".join(g) if g is not None else "" for g in frame[C.GENRES]],
            "similarity": frame[C.SIMILARITY].round(3),
            "ratings": frame[C.NUM_RATINGS],
        }
    ).reset_index(drop=True)


def _label(title: Any, year: Any) -> str:
    return str(title) if year is None or pd.isna(year) else f"{title} ({int(year)})"


class RatingApp:
    """Search, rate, recommend, find similar: widgets over a LocalRecommender."""

    def __init__(self, recommender: LocalRecommender, user: str = "me", search_limit: int = 15):
        import ipywidgets as W

        self.recommender = recommender
        self.user = user
        self.search_limit = search_limit
        self.ratings: dict[int, float] = {}
        scale = recommender.model.scale
        self.query = W.Text(placeholder="type part of a title, e.g. matrix", description="Search")
        self.matches = W.Select(options=[], rows=8, description="Matches", layout=W.Layout(width="60%"))
        self.stars = W.FloatSlider(value=scale.high, min=scale.low, max=scale.high, step=scale.step,
                                   description="Rating", readout_format=".1f")
        self.rate_button = W.Button(description="Rate it", button_style="primary")
        self.similar_button = W.Button(description="Similar movies")
        self.recommend_button = W.Button(description="Recommend for me", button_style="success")
        self.clear_button = W.Button(description="Clear my ratings")
        self.rated = W.HTML()
        self.message = W.HTML()
        self.output = W.Output()
        self.query.observe(lambda change: self.search(change["new"]), names="value")
        self.rate_button.on_click(lambda _: self._safely(lambda: self.rate(self.matches.value, self.stars.value)))
        self.similar_button.on_click(lambda _: self._safely(lambda: self._show(self.similar(self.matches.value))))
        self.recommend_button.on_click(lambda _: self._safely(lambda: self._show(self.recommend())))
        self.clear_button.on_click(lambda _: self._safely(self.clear))
        self.widget = W.VBox(
            [
                self.query,
                self.matches,
                W.HBox([self.stars, self.rate_button, self.similar_button]),
                self.rated,
                W.HBox([self.recommend_button, self.clear_button]),
                self.message,
                self.output,
            ]
        )
        self._refresh()

    # --- what the buttons do ---

    def search(self, text: str) -> list[Movie]:
        """Fill the match list with catalog movies whose title words start with the typed words."""
        found = self.recommender.search(text, self.search_limit) if text else []
        self.matches.options = [(f"{m.label}  [{m.num_ratings or 0} ratings]", m.movie_id) for m in found]
        return found

    def rate(self, movie: str | int | None, rating: float) -> Movie:
        """Add or change a rating; ``movie`` is an id or a title."""
        if movie is None:
            raise MovieRecError("pick a movie from the matches first")
        found = self.recommender.find_movie(movie)
        self.ratings[found.movie_id] = parse_rating(str(rating), self.recommender.model.scale)
        self._refresh()
        return found

    def clear(self) -> None:
        self.ratings.clear()
        self._refresh()

    def recommend(self, n: int | None = None) -> pd.DataFrame:
        """Your top-N table (fold-in of your ratings into the model; the popular list before any)."""
        checked = self.recommender.ratings_from_pairs(self.user, list(self.ratings.items())) if self.ratings else []
        return readable_top_n(self.recommender.recommend(checked, n=n, user=self.user))

    def similar(self, movie: str | int | None, n: int | None = None) -> pd.DataFrame:
        """The movies most like ``movie`` by the model's item factors."""
        if movie is None:
            raise MovieRecError("pick a movie from the matches first")
        found, frame = self.recommender.similar(movie, n)
        if frame.empty:
            raise MovieRecError(f"{found.label} has no item factors in this model; try another movie")
        return readable_similar(frame)

    # --- display ---

    def _refresh(self) -> None:
        movies = self.recommender.index.movies
        items = "".join(
            f"<li>{html.escape(movies[i].label)}: {r:g}</li>" for i, r in sorted(self.ratings.items(), key=lambda x: -x[1])
        )
        self.rated.value = f"<b>Your ratings ({len(self.ratings)})</b><ul>{items}</ul>" if items else (
            "<i>No ratings yet: search, pick a movie, rate it.</i>"
        )

    def _show(self, frame: pd.DataFrame) -> None:
        from IPython.display import display

        self.output.clear_output()
        with self.output:
            display(frame)

    def _safely(self, action) -> None:
        self.message.value = ""
        try:
            action()
        except MovieRecError as exc:
            self.message.value = f"<span style='color:#b00'>{html.escape(str(exc))}</span>"
