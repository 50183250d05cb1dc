"""bench/topn_grid.py's implicit ALS variants: the product of the grid flags (no Spark)."""

import importlib.util
from pathlib import Path

import pytest

from movierec_spark import MovieRecError
from movierec_spark.models.ease import EaseParams
from movierec_spark.models.fit import AlsParams

_SPEC = importlib.util.spec_from_file_location(
    "topn_grid", Path(__file__).resolve().parents[2] / "bench" / "topn_grid.py"
)
topn_grid = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(topn_grid)

SHIPPED = AlsParams(rank=100, max_iter=15, reg_param=0.5, alpha=10.0)


def test_no_flag_keeps_the_shipped_point():
    variants = topn_grid.implicit_variants(SHIPPED, "binary")
    assert variants == [("0.5/10/binary/100/15", SHIPPED, "binary")]


def test_flags_multiply_and_max_iter_reaches_the_params():
    variants = topn_grid.implicit_variants(SHIPPED, "binary", conf="binary,rating", max_iter="15, 30")
    assert [label for label, _, _ in variants] == [
        "0.5/10/binary/100/15", "0.5/10/binary/100/30", "0.5/10/rating/100/15", "0.5/10/rating/100/30",
    ]
    assert [(p.max_iter, conf) for _, p, conf in variants] == [
        (15, "binary"), (30, "binary"), (15, "rating"), (30, "rating"),
    ]
    # everything not varied stays the shipped value
    assert {(p.rank, p.reg_param, p.alpha, p.seed) for _, p, _ in variants} == {(100, 0.5, 10.0, SHIPPED.seed)}


def test_rank_alpha_and_reg_reach_the_params():
    ((label, params, conf),) = topn_grid.implicit_variants(SHIPPED, "rating", reg="1", alpha="5", rank="200")
    assert (label, conf) == ("1/5/rating/200/15", "rating")
    assert params == SHIPPED.with_(reg_param=1.0, alpha=5.0, rank=200)


def test_ease_flags_multiply_and_reach_the_params():
    shipped = EaseParams(reg_param=1000.0, max_items=5000, neighbours=200)
    points = topn_grid.ease_variants(shipped, "300,500", dropout="0.5", diagonal="zero, free")
    assert [topn_grid.ease_label(p) for p in points] == [
        "300/0.5/zero/200", "300/0.5/free/200", "500/0.5/zero/200", "500/0.5/free/200",
    ]
    assert {p.max_items for p in points} == {5000}
    assert topn_grid.ease_variants(shipped, "", neighbours="400") == [
        EaseParams(reg_param=1000.0, max_items=5000, neighbours=400)
    ]
    with pytest.raises(MovieRecError, match="diagonal must be 'zero' or 'free'"):
        topn_grid.ease_variants(shipped, "300", diagonal="none")
