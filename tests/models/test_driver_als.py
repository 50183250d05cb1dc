"""movierec_spark.models.driver_als: MLlib's ALS equations solved in the driver, and when fit.py uses them."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import functions as F

from movierec_spark import MovieRecError
from movierec_spark import columns as C
from movierec_spark.models import driver_als
from movierec_spark.models.fit import AlsParams, fit_biased_als
from movierec_spark.data.releases import HALF_STARS


def _triples(seed: int = 3, users: int = 40, movies: int = 25, count: int = 400):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(users * movies, size=count, replace=False)
    return (pairs // movies).astype(np.int32), (pairs % movies).astype(np.int32), rng.normal(0, 1, count)


def _objective(users, movies, values, user_ids, uf, movie_ids, mf, reg):
    """MLlib's ALS-WR loss: squared error plus reg * (n_u |x_u|^2 + n_i |y_i|^2)."""
    u = np.searchsorted(user_ids, users)
    m = np.searchsorted(movie_ids, movies)
    error = np.sum((values - np.einsum("ij,ij->i", uf[u], mf[m])) ** 2)
    n_u = np.bincount(u, minlength=len(user_ids))
    n_m = np.bincount(m, minlength=len(movie_ids))
    return error + reg * (np.sum(n_u * np.sum(uf**2, axis=1)) + np.sum(n_m * np.sum(mf**2, axis=1)))


def test_solve_rows_is_each_rows_ridge_regression_scaled_by_its_count():
    rng = np.random.default_rng(0)
    other = rng.normal(size=(30, 4))
    rows = [rng.choice(30, size=n, replace=False) for n in (1, 5, 0, 30, 7)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    cols = np.concatenate(rows).astype(np.int32)
    values = rng.normal(size=len(cols)).astype(np.float32)
    out = np.full((len(rows), 4), np.nan)
    driver_als.solve_rows(offsets, cols, values, other, 0.3, out)
    for i, picked in enumerate(rows):
        if len(picked) == 0:
            assert np.all(out[i] == 0.0)  # a row without ratings: zeros, not NaN
            continue
        y = other[picked]
        r = values[offsets[i] : offsets[i + 1]].astype(np.float64)
        expected = np.linalg.solve(y.T @ y + 0.3 * len(picked) * np.eye(4), y.T @ r)
        np.testing.assert_allclose(out[i], expected, rtol=1e-10, atol=1e-12)


def test_compressed_rows_group_each_row_in_input_order():
    rows = np.array([2, 0, 2, 1, 0, 2], dtype=np.int32)
    cols = np.array([10, 11, 12, 13, 14, 15], dtype=np.int32)
    values = np.arange(6, dtype=np.float32)
    offsets, out_cols, out_values = driver_als._compressed(rows, cols, values, 4)
    assert offsets.tolist() == [0, 2, 3, 6, 6]
    assert out_cols.tolist() == [11, 14, 13, 10, 12, 15]
    assert out_values.tolist() == [1, 4, 3, 0, 2, 5]


@pytest.mark.parametrize(
    "ids",
    [
        np.array([7, 3, 7, 0, 12], dtype=np.int32),  # the lookup table
        np.array([-5, 2_000_000_000, 3, -5], dtype=np.int32),  # negative and far apart: sorted instead
        np.zeros(0, dtype=np.int32),
    ],
)
def test_dense_rows_number_ids_in_ascending_order(ids):
    unique, rows = driver_als.dense_rows(ids)
    expected_unique, expected_rows = np.unique(ids, return_inverse=True)
    assert unique.tolist() == expected_unique.tolist()
    assert rows.tolist() == expected_rows.tolist()
    assert unique.dtype == np.int32 and rows.dtype == np.int32


def test_each_iteration_lowers_the_objective_mllib_minimises():
    users, movies, values = _triples()
    losses = []
    for iterations in range(1, 6):
        fitted = driver_als.alternate(users, movies, values, rank=3, max_iter=iterations, reg_param=0.05, seed=9)
        losses.append(_objective(users, movies, values, *fitted, 0.05))
    assert all(later <= earlier * (1 + 1e-9) for earlier, later in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0]


def test_alternate_is_deterministic_for_a_seed_and_starts_from_unit_vectors():
    users, movies, values = _triples()
    first = driver_als.alternate(users, movies, values, rank=3, max_iter=2, reg_param=0.1, seed=4)
    again = driver_als.alternate(users, movies, values, rank=3, max_iter=2, reg_param=0.1, seed=4)
    other = driver_als.alternate(users, movies, values, rank=3, max_iter=2, reg_param=0.1, seed=5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])
    start = driver_als.initial_factors(50, 6, seed=1)
    np.testing.assert_allclose(np.linalg.norm(start, axis=1), 1.0)


@pytest.mark.parametrize(
    "solver, master, nonnegative, expected",
    [
        ("auto", "local[2]", False, "driver"),
        ("auto", "local", False, "driver"),
        ("auto", "spark://127.0.0.1:7077", False, "mllib"),
        ("auto", "yarn", False, "mllib"),
        ("auto", "local[*]", True, "mllib"),
        ("mllib", "local[*]", False, "mllib"),
        ("driver", "spark://127.0.0.1:7077", False, "driver"),
    ],
)
def test_the_solver_follows_the_setting_and_the_master(solver, master, nonnegative, expected):
    params = AlsParams(solver=solver, nonnegative=nonnegative)
    params.validate()
    assert params.solver_for(master) == expected


@pytest.mark.parametrize("solver", ["auto", "driver", "mllib"])
def test_a_spark_connect_client_always_fits_with_mllib_and_says_so_once(solver, caplog):
    from movierec_spark.models import fit

    fit._said.clear()
    params = AlsParams(solver=solver)
    with caplog.at_level("INFO", logger="movierec_spark.models.fit"):
        assert params.solver_for("local[2]", connect=True) == "mllib"
        assert params.solver_for("local[2]", connect=True) == "mllib"
    said = [r.getMessage() for r in caplog.records if "Spark Connect" in r.getMessage()]
    assert said == ([] if solver == "mllib" else
                    ["Spark Connect: ALS fits with MLlib's solver (the driver solver needs a classic session)"])


@pytest.mark.parametrize(
    "params, message",
    [
        (AlsParams(solver="numpy"), r"\[als\] solver must be 'auto', 'mllib' or 'driver', got 'numpy'"),
        (AlsParams(solver="driver", nonnegative=True), r"\[als\] solver 'driver' cannot fit nonnegative factors"),
    ],
)
def test_bad_solver_settings_are_refused(params, message):
    with pytest.raises(MovieRecError, match=message):
        params.validate()


@pytest.fixture(scope="module")
def u1(spark, movielens_dir):
    def read(name):
        return spark.read.csv(
            str(movielens_dir / "ml-100k" / name), sep="\t",
            schema="user_id int, movie_id int, rating float, timestamp long",
        )  # fmt: skip

    return read("u1.base").cache(), read("u1.test").cache()


def _rmse(model: ALSModel, test) -> float:
    scored = model.transform(test).where(~F.isnan("prediction"))
    return scored.select(F.sqrt(F.avg((F.col("prediction") - F.col(C.RATING)) ** 2))).first()[0]


@pytest.mark.slow
def test_a_driver_fit_is_an_als_model_as_accurate_as_mllibs(spark, u1, tmp_path):
    train, test = u1
    driver = driver_als.fit_explicit(train, C.RATING, rank=10, max_iter=10, reg_param=0.1, seed=42)
    mllib = ALS(
        rank=10, maxIter=10, regParam=0.1, seed=42, userCol=C.USER_ID, itemCol=C.MOVIE_ID, ratingCol=C.RATING,
        coldStartStrategy="nan",
    ).fit(train)  # fmt: skip
    driver_rmse, mllib_rmse = _rmse(driver, test), _rmse(mllib, test)
    # Same equations, another random start: the same accuracy, not the same digits.
    assert abs(driver_rmse - mllib_rmse) < 0.01, (driver_rmse, mllib_rmse)
    assert driver.rank == 10
    assert driver.userFactors.count() == train.select(C.USER_ID).distinct().count()
    assert driver.itemFactors.count() == train.select(C.MOVIE_ID).distinct().count()
    assert driver.userFactors.schema.simpleString() == mllib.userFactors.schema.simpleString()
    # A real ALSModel: saved and loaded by MLlib, scoring as before.
    driver.save(str(tmp_path / "als"))
    loaded = ALSModel.load(str(tmp_path / "als"))
    assert loaded.getUserCol() == C.USER_ID and loaded.getItemCol() == C.MOVIE_ID
    assert _rmse(loaded, test) == pytest.approx(driver_rmse, abs=1e-12)


def test_null_or_no_ratings_are_refused(spark):
    schema = "user_id int, movie_id int, rating float"
    nulls = spark.createDataFrame([(1, 2, 4.0), (1, None, 3.0)], schema)
    with pytest.raises(MovieRecError, match="ALS input column movie_id has 1 null values"):
        driver_als.fit_explicit(nulls, C.RATING, rank=2, max_iter=1, reg_param=0.1, seed=1)
    with pytest.raises(MovieRecError, match="ALS has no ratings to fit"):
        driver_als.fit_explicit(spark.createDataFrame([], schema), C.RATING, rank=2, max_iter=1, reg_param=0.1, seed=1)


def test_fit_biased_als_records_the_solver_that_ran(spark):
    rows = [(u, m, float(1 + (u * m) % 5), 1_000_000 + u) for u in range(1, 13) for m in range(1, 9) if (u + m) % 3]
    ratings = spark.createDataFrame(rows, "user_id int, movie_id int, rating float, timestamp long")
    for solver, expected in (("auto", "driver"), ("mllib", "mllib")):
        model = fit_biased_als(ratings, HALF_STARS, AlsParams(rank=2, max_iter=2, solver=solver))
        assert model.params["solver"] == expected
        assert isinstance(model.als, ALSModel)
        assert model.als.userFactors.count() == 12


def test_the_tuning_estimator_passes_its_solver_on():
    from movierec_spark.models.fit import BiasedALS

    assert BiasedALS(scale=HALF_STARS).als_params().solver == "auto"
    assert BiasedALS(scale=HALF_STARS, solver="mllib").als_params().solver == "mllib"
