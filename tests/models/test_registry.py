"""movierec_spark.models.registry and base: one registry of models, one interface every model declares."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from movierec_spark import MovieRecError
from movierec_spark.models import registry as R
from movierec_spark.models.base import Recommender
from movierec_spark.progress import StageTimer
from movierec_spark.data.releases import WHOLE_STARS
from tests.tiny_release import tiny_release

ROOT = Path(__file__).resolve().parents[2]


def test_the_models_a_run_fits_come_from_its_section_once_each_in_order():
    from movierec_spark import pipeline

    cfg = {"train_als": {"models": ["als", "bias", "als"]}, "compare_models": {"models": ["ease"]}}
    assert pipeline.models_wanted(cfg, pipeline.TRAIN) == ["als", "bias"]
    assert pipeline.models_wanted(cfg, pipeline.COMPARE) == ["ease"]


def test_every_registered_model_fits_and_declares_what_it_can_do(spark, tmp_path):
    from movierec_spark.config import load_config
    from movierec_spark.session import checkpoint_dir

    release = tiny_release(spark)
    cfg = load_config()
    cfg["als"] = {**cfg["als"], "rank": 2, "max_iter": 2, "num_user_blocks": 2, "num_item_blocks": 2}
    cfg["implicit"] = {**cfg["implicit"], "rank": 2, "max_iter": 2}
    cfg["blend"] = {**cfg["blend"], "validation_fraction": 0.3, "folds": 2}
    with checkpoint_dir(spark, tmp_path / "checkpoints"):
        fitter = R.ModelFitter(cfg, WHOLE_STARS, parallelism=2)
        models = R.fit_models(release.ratings, list(reversed(R.MODEL_NAMES)), fitter, StageTimer())
        assert list(models) == list(reversed(R.MODEL_NAMES))  # in the order asked for
        # Fitted once per frame: the blends' members are the models reported under their own names.
        assert fitter(R.ALS, release.ratings) is models[R.ALS]
        assert models[R.TOPN_BLEND].models["ease"] is models[R.EASE]
        rating = {n for n, m in models.items() if m.predicts_ratings}
        ranked = {n for n, m in models.items() if m.ranks}
        assert rating == {"global_mean", "bias", "als", "item_knn", "user_knn", "blend"}
        assert ranked == {"bias", "als", "implicit", "ease", "rp3beta", "popularity", "topn_blend"}
        pairs = release.ratings.select("user_id", "movie_id").limit(5)
        for name, model in models.items():
            assert isinstance(model, Recommender), name
            described = model.describe()
            assert isinstance(described, dict) and described, name
            assert model.predict(pairs).count() == 5, name
            model.save(tmp_path / "saved" / name)
            assert type(model).load(spark, tmp_path / "saved" / name).describe().keys() == described.keys(), name


def test_an_unknown_model_is_refused():
    with pytest.raises(MovieRecError, match="unknown model 'magic'"):
        R.ModelFitter({}, WHOLE_STARS)("magic", None)


def _imports(path: Path) -> set[str]:
    """The movierec_spark modules ``path`` imports, at any depth in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("movierec_spark"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("movierec_spark"))
    return found


def test_the_library_has_no_import_cycles_and_imports_no_job():
    package = ROOT / "movierec_spark"
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in package.rglob("*.py")
    }
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    # Package __init__ files import nothing of their own here, so edges are module to module.
    state: dict[str, int] = {}

    def visit(name, trail):
        state[name] = 1
        for other in graph[name]:
            if state.get(other) == 1:
                raise AssertionError(" -> ".join([*trail, name, other]))
            if other not in state:
                visit(other, [*trail, name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    for path in [*package.rglob("*.py"), *(ROOT / "bench").glob("*.py")]:
        tree = ast.parse(path.read_text())
        jobs = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                and any((getattr(n, "module", None) or "").startswith("jobs") or a.name.startswith("jobs")
                        for a in n.names)]
        assert not jobs, f"{path} imports a job"
