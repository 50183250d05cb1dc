"""Which rating blend ships: members and support terms, compared on validation.

    ./spark-submit.sh bench/blend_features.py [--dataset ml-latest-small --source DIR] [compare_models flags]

Takes jobs/compare_models.py's flags and split (random 80/20, seed 42 by
default); the TEST part is set aside and never read. The training part is
cut like the job's blend does (``[blend] validation_fraction``, the split
seed): all six possible members are fitted once on the fit part (the job's
own fitters), score the validation slice once, and every candidate blend --
the four rating models or all six, with and without support terms -- gets
its 5-fold cross-validated RMSE on that slice (movierec_spark.models.blend, the
job's code). The lowest, weighed against what a member costs, is what
``[blend]`` ships.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from movierec_spark import cli  # noqa: E402
from movierec_spark.models import registry as R  # noqa: E402

RATING_MEMBERS = [R.BIAS, R.ALS, R.ITEM_KNN, R.USER_KNN]
ALL_MEMBERS = RATING_MEMBERS + [R.IMPLICIT, R.EASE]


def run(spark, cfg) -> int:
    from movierec_spark import columns as C
    from movierec_spark.data.load import load_data
    from movierec_spark.evaluation.protocol import make_split
    from movierec_spark.models import blend as B
    from movierec_spark.session import set_checkpoint_dir

    checkpoints = tempfile.mkdtemp(prefix="blend_features_")
    set_checkpoint_dir(spark, checkpoints)
    try:
        loaded = load_data(spark, cfg["data"])
        split, _ = make_split(spark, cfg, loaded)
        keep = [c for c in (C.USER_ID, C.MOVIE_ID, C.RATING, C.TIMESTAMP) if c in split.train.columns]
        train = split.train.select(*keep).cache()
        settings = R.blend_settings(cfg)
        seed = int(cfg["split"].get("seed", 42))
        fit_part, validation = B.validation_split(train, settings["validation_fraction"], seed)
        fit_part, validation = fit_part.cache(), validation.cache()
        fitters = R.ModelFitter(cfg, loaded.scale)
        first = {name: fitters(name, fit_part) for name in ALL_MEMBERS}
        scored = B.with_support(B.with_predictions(validation, first), B.support_tables(fit_part)).cache()
        print(f"validation slice: {scored.count()} ratings")
        for members in (RATING_MEMBERS, ALL_MEMBERS):
            for support in (False, True):
                report = B.fit_blend_weights(
                    scored, members, folds=settings["folds"], ridge=settings["ridge"], seed=seed, support=support
                )
                print(f"{'+'.join(members):40s} support {str(support):5s}  CV RMSE {report.rmse[B.BLEND]:.4f}")
    finally:
        shutil.rmtree(checkpoints, ignore_errors=True)
    return cli.EXIT_OK


def build_parser():
    parser = cli.make_parser("blend_features", __doc__.splitlines()[0])
    cli.add_data_flags(parser)
    cli.add_split_flags(parser)
    cli.add_model_flags(parser, "compare_models")
    return parser


def main(argv: list[str] | None = None) -> int:
    return cli.run_job("blend_features", build_parser(), run, argv, None)


if __name__ == "__main__":
    sys.exit(main())
