"""Where the top-N blend's settings come from: EASE's λ, RP3beta's, the weights, the normalisation.

    ./spark-submit.sh bench/topn_grid.py [--data ../shared/data/movielens] [--seeds 7,8,9]
        [--normalise none,max,zscore,rrf] [--validation-fraction 0.25] [--implicit-reg 1.0]
        [--implicit-alpha 10,20] [--implicit-confidence binary,rating] [--implicit-rank 100,200]
        [--implicit-max-iter 15,30]
        [--ease-reg 200,...] [--ease-dropout 0,0.5] [--ease-diagonal zero,free] [--ease-neighbours 200,400]
        [--rp3-alpha 0.5,1.0 --rp3-beta 0.2,0.4 [--rp3-neighbours 200]]

On ml-100k's per-user stratified 75/25 split (seed 42, the accuracy
protocol's), the TEST part is set aside and never read. The training part
is split again, stratified (``--validation-fraction`` of each user's
ratings held out, 0.25 by default), once per validation seed; on each slice
it fits implicit ALS with the shipped ``[implicit]`` settings (regParam,
alpha, confidence, rank, maxIter: each combination of ``--implicit-reg``,
``--implicit-alpha``, ``--implicit-confidence``, ``--implicit-rank``,
``--implicit-max-iter``) and EASE for
every point of the grid (``--ease-reg`` λ x ``--ease-dropout`` x
``--ease-diagonal`` x ``--ease-neighbours``; the library's own functions),
rescales each member's
scores per user with each normalisation of ``--normalise`` (the library's
``topn_blend.normalise_per_user``, the one ``TopNBlend`` applies), then scores
every (implicit variant, normalisation, EASE point, EASE weight) point by nDCG@10 of the top 10 unseen
movies against the held-out slice. It prints the grid sorted by mean
nDCG@10 over the seeds; the best point is what ``[ease] reg_param`` and
``[topn_blend] weights`` and ``normalise`` (and ``[implicit] reg_param``) ship.

With ``--rp3-alpha`` RP3beta joins as a third member: its weights come
from the library's ``rp3beta.co_walks`` (once per alpha) and
``rp3beta_weights`` (per beta) in Spark, and the weights searched are every
(implicit, EASE, RP3beta) triple summing to 1 in steps of 0.1 (RP3beta 0 is
the two-member blend, so the shipped point is in the same run). The best
point with RP3beta is what ``[rp3beta]`` and ``[topn_blend]`` would ship
if it beat the best without.

What ships was chosen with ``--validation-fraction 0.1 --implicit-reg
0.5,1.0 --normalise none,max`` (conf/movierec.toml ``[topn_blend]``): a
fit part of 90% of the training ratings is nearer the data the shipped
models train on than the default 75%, and fits on less data favoured
stronger regularisation. The same slices with RP3beta and rrf
(``--normalise max,rrf --ease-reg 1000 --rp3-alpha 0.5,0.75,1.0 --rp3-beta
0.0,0.25,0.5``) kept it: no RP3beta member, no rrf (bench/NOTES.md).
So did other implicit ALS members (``--normalise max --ease-reg 1000
--implicit-confidence binary,rating --implicit-alpha 5,10,20``, then rank
200, 30 iterations and alpha 2, 3 at binary confidence: bench/NOTES.md).

The weighted sums and nDCG are done in numpy on the driver: ml-100k's
943 x 1,682 score matrix is small, and each of the grid's points would
otherwise cost a Spark top-N run. That is a tuning aid for this one
release, not the pipeline.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LAMBDAS = (200.0, 300.0, 500.0, 700.0, 1000.0)
EASE_WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0)  # 0: implicit ALS alone; 1: EASE alone
K = 10
STEPS = 10  # the three-member weights: multiples of 1 / STEPS summing to 1


def weight_points(three: bool) -> list[tuple[float, float, float]]:
    """(implicit, EASE, RP3beta) weights: EASE_WEIGHTS without RP3beta, else the 0.1 simplex."""
    if not three:
        return [(1 - w, w, 0.0) for w in EASE_WEIGHTS]
    return [(a / STEPS, b / STEPS, (STEPS - a - b) / STEPS) for a in range(STEPS + 1) for b in range(STEPS + 1 - a)]


def implicit_variants(shipped, confidence: str, reg: str = "", alpha: str = "", conf: str = "",
                      rank: str = "", max_iter: str = "") -> list[tuple[str, object, str]]:
    """(label, AlsParams, confidence) of every implicit ALS variant of the grid.

    Each argument is a comma-separated list of values ("" keeps the shipped
    one: ``shipped`` AlsParams, ``confidence``); the variants are their
    product. Label: regParam/alpha/confidence/rank/maxIter.
    """
    def values(text: str, default, kind) -> list:
        return [kind(v.strip()) for v in text.split(",")] if text else [default]

    return [
        (f"{r:g}/{a:g}/{c}/{k}/{i}", shipped.with_(reg_param=r, alpha=a, rank=k, max_iter=i), c)
        for r, a, c, k, i in itertools.product(
            values(reg, float(shipped.reg_param), float),
            values(alpha, float(shipped.alpha), float),
            values(conf, confidence, str),
            values(rank, int(shipped.rank), int),
            values(max_iter, int(shipped.max_iter), int),
        )
    ]


def ease_variants(shipped, reg: str, dropout: str = "", diagonal: str = "", neighbours: str = "") -> list:
    """Every EaseParams of the grid: the product of the comma-separated lists ("" keeps ``shipped``'s value)."""
    def values(text: str, default, kind) -> list:
        return [kind(v.strip()) for v in text.split(",")] if text else [default]

    return [
        dataclasses.replace(shipped, reg_param=r, dropout=p, diagonal=d, neighbours=k).validate()
        for r, p, d, k in itertools.product(
            values(reg, shipped.reg_param, float),
            values(dropout, shipped.dropout, float),
            values(diagonal, shipped.diagonal, str),
            values(neighbours, shipped.neighbours, int),
        )
    ]


def ease_label(point) -> str:
    """An EASE grid point as reg_param/dropout/diagonal/neighbours."""
    return f"{point.reg_param:g}/{point.dropout:g}/{point.diagonal}/{point.neighbours}"


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's ``k`` highest columns, highest first, ties to the lower column.

    The order of ``np.argsort(-scores, kind="stable")[:, :k]``, about ten
    times faster: a partition finds each row's top ``k``, and only rows with
    a tie at the k-th place are fully sorted.
    """
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, top, axis=1)
    top = np.take_along_axis(top, np.lexsort((top, -values), axis=1), axis=1)
    tied = (scores >= values.min(axis=1, keepdims=True)).sum(axis=1) > k
    if tied.any():
        top[tied] = np.argsort(-scores[tied], axis=1, kind="stable")[:, :k]
    return top


def ndcg_at_k(scores: np.ndarray, train: np.ndarray, held_out: np.ndarray, k: int = K) -> float:
    """Mean nDCG@k (binary relevance) over users with held-out movies.

    Movies the user rated in ``train`` and movies nobody rated there are not
    candidates, as in jobs/train_als.py.
    """
    candidates = train.any(axis=0)
    scores = np.where(train | ~candidates[None, :], -np.inf, scores)
    users = np.flatnonzero(held_out.any(axis=1))
    top = top_k(scores[users], k)
    hits = held_out[users[:, None], top]
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.array([discount[: min(n, k)].sum() for n in held_out[users].sum(axis=1)])
    return float(((hits * discount).sum(axis=1) / ideal).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "movielens"))
    parser.add_argument("--seeds", default="7,8,9", help="validation slices' seeds")
    parser.add_argument("--normalise", default="none,max,zscore", help="[topn_blend] normalise values to try")
    parser.add_argument("--validation-fraction", type=float, default=0.25,
                        help="share of each user's training ratings held out for validation (shipped: 0.1)")
    parser.add_argument("--implicit-reg", default="", help="[implicit] reg_param values to try (default: the shipped one)")
    parser.add_argument("--implicit-alpha", default="", help="[implicit] alpha values to try (default: the shipped one)")
    parser.add_argument("--implicit-confidence", default="", help="[implicit] confidence values to try (default: the shipped one)")
    parser.add_argument("--implicit-rank", default="", help="[implicit] rank values to try (default: the shipped one)")
    parser.add_argument("--implicit-max-iter", default="", help="[implicit] max_iter values to try (default: the shipped one)")
    parser.add_argument("--ease-reg", default=",".join(f"{lam:g}" for lam in LAMBDAS), help="[ease] reg_param values to try")
    parser.add_argument("--ease-dropout", default="", help="[ease] dropout values to try (default: the shipped one)")
    parser.add_argument("--ease-diagonal", default="", help="[ease] diagonal values to try (default: the shipped one)")
    parser.add_argument("--ease-neighbours", default="", help="[ease] neighbours values to try (default: the shipped one)")
    parser.add_argument("--rp3-alpha", default="", help="[rp3beta] alpha values to try (default: no RP3beta member)")
    parser.add_argument("--rp3-beta", default="0.0,0.2,0.4", help="[rp3beta] beta values to try (with --rp3-alpha)")
    parser.add_argument("--rp3-neighbours", type=int, default=0, help="[rp3beta] neighbours (default: the shipped one)")
    args = parser.parse_args()

    from movierec_spark import columns as C
    from movierec_spark.config import load_config
    from movierec_spark.models.ease import EaseParams, ease_weights, gram_matrix, item_index, prune
    from movierec_spark.models.item_weights import SOURCE, WEIGHT
    from movierec_spark.models.topn_blend import check_normalisation, normalise_per_user
    from movierec_spark.models.fit import fit_implicit_als
    from movierec_spark.data.load import load_data
    from movierec_spark.models.rp3beta import Rp3BetaParams, co_walks, rp3beta_weights
    from movierec_spark.session import build_session, set_checkpoint_dir
    from movierec_spark.evaluation.split import stratified_split
    from movierec_spark.models.registry import implicit_params

    normalisations = [check_normalisation(n.strip()) for n in args.normalise.split(",")]
    cfg = load_config()
    shipped = implicit_params(cfg)
    confidence = cfg.get("implicit", {}).get("confidence", "binary")

    variants = implicit_variants(shipped, confidence, args.implicit_reg, args.implicit_alpha,
                                 args.implicit_confidence, args.implicit_rank, args.implicit_max_iter)
    ease_points = ease_variants(EaseParams.from_config(cfg.get("ease", {})), args.ease_reg, args.ease_dropout,
                                args.ease_diagonal, args.ease_neighbours)
    labels = [ease_label(point) for point in ease_points]
    neighbours = args.rp3_neighbours or Rp3BetaParams.from_config(cfg.get("rp3beta", {})).neighbours
    rp3_points = [
        Rp3BetaParams(alpha=float(a), beta=float(b), neighbours=neighbours).validate()
        for a in args.rp3_alpha.split(",") if a for b in args.rp3_beta.split(",")
    ]
    spark = build_session("topn_grid")
    checkpoints = tempfile.mkdtemp(prefix="topn_grid_")
    set_checkpoint_dir(spark, checkpoints)
    loaded = load_data(spark, {"dataset": "ml-100k", "source": str(Path(args.data) / "ml-100k")})
    train = stratified_split(loaded.ratings, 0.25, 42).train.cache()
    users = 1 + max(r[0] for r in train.select(C.USER_ID).collect())
    movies = 1 + max(r[0] for r in train.select(C.MOVIE_ID).collect())

    def dense(frame) -> np.ndarray:
        m = np.zeros((users, movies), dtype=bool)
        rows = np.array(frame.select(C.USER_ID, C.MOVIE_ID).collect())
        m[rows[:, 0], rows[:, 1]] = True
        return m

    def rescaled(scores: dict[str, np.ndarray], candidates: np.ndarray, how: str) -> dict[str, np.ndarray]:
        """Each member's scores over the candidate pairs, rescaled by the library's normalise_per_user."""
        users_at, movies_at = np.nonzero(candidates)
        frame = pd.DataFrame({C.USER_ID: users_at.astype("int32"), C.MOVIE_ID: movies_at.astype("int32")})
        column = {name: f"member_{i}" for i, name in enumerate(scores)}  # labels hold dots: no column names
        for name, matrix in scores.items():
            frame[column[name]] = matrix[users_at, movies_at].astype("float64")
        done = normalise_per_user(spark.createDataFrame(frame), list(column.values()), how).toPandas()
        rows, cols = done[C.USER_ID].to_numpy(), done[C.MOVIE_ID].to_numpy()
        out = {}
        for name in scores:
            matrix = np.zeros((users, movies))
            matrix[rows, cols] = done[column[name]].to_numpy()
            out[name] = matrix
        return out

    def rp3_label(point) -> str:
        return "-" if point is None else f"{point.alpha:g}/{point.beta:g}"

    # (implicit variant, normalise, λ, RP3beta alpha/beta, (implicit, EASE, RP3beta) weights) -> nDCG per seed
    results: dict[tuple, list[float]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        part = stratified_split(train, args.validation_fraction, seed)
        fit_part = part.train.cache()
        x, held_out = dense(fit_part), dense(part.test)
        scores = {}
        for label, params, conf in variants:
            als = fit_implicit_als(fit_part, loaded.scale, params, conf).als
            u = np.zeros((users, als.rank))
            v = np.zeros((movies, als.rank))
            for row in als.userFactors.collect():
                u[row.id] = row.features
            for row in als.itemFactors.collect():
                v[row.id] = row.features
            scores[f"implicit_{label}"] = u @ v.T
        ids = np.array(item_index(fit_part, movies))
        gram = gram_matrix(fit_part, ids.tolist())
        for point, label in zip(ease_points, labels):
            b = np.zeros((movies, movies))
            solved = ease_weights(gram, point.reg_param, point.dropout, point.diagonal)
            rows, cols, vals = prune(solved, point.neighbours)
            b[ids[rows], ids[cols]] = vals
            scores[f"ease_{label}"] = x @ b
        for alpha in dict.fromkeys(p.alpha for p in rp3_points):
            walks = co_walks(fit_part, alpha).cache()
            for point in (p for p in rp3_points if p.alpha == alpha):
                w = np.zeros((movies, movies))
                table = rp3beta_weights(walks, fit_part, point).toPandas()
                w[table[SOURCE].to_numpy(), table[C.MOVIE_ID].to_numpy()] = table[WEIGHT].to_numpy()
                scores[f"rp3_{rp3_label(point)}"] = x @ w
            walks.unpersist()
        candidates = ~x & x.any(axis=0)[None, :]
        for how in normalisations:
            members = rescaled(scores, candidates, how)
            for (label, _, _), ease, (wi, we, wr) in itertools.product(variants, labels, weight_points(bool(rp3_points))):
                for point in (rp3_points if wr > 0 else [None]):
                    blend = wi * members[f"implicit_{label}"] + we * members[f"ease_{ease}"]
                    if point is not None:
                        blend = blend + wr * members[f"rp3_{rp3_label(point)}"]
                    score = ndcg_at_k(blend, x, held_out)
                    results.setdefault((label, how, ease, rp3_label(point), (wi, we, wr)), []).append(score)
                    print(f"seed {seed}  implicit {label}  {how}  EASE {ease}  RP3beta {rp3_label(point)}  "
                          f"weights {wi:g}/{we:g}/{wr:g}  nDCG@{K} {score:.4f}", flush=True)
        fit_part.unpersist()

    print(f"\nmean validation nDCG@{K} over seeds {args.seeds}, best first:")
    print(f"{'implicit reg/α/conf/rank/iter':>29} {'normalise':>9} {'EASE λ/p/diag/k':>20} {'RP3 α/β':>8} {'weights imp/EASE/RP3':>21} "
          f"{'nDCG@10':>9}   per seed")
    for (label, how, ease, rp3, weights), scores in sorted(results.items(), key=lambda kv: -np.mean(kv[1])):
        shares = "/".join(f"{w:g}" for w in weights)
        print(f"{label:>29} {how:>9} {ease:>20} {rp3:>8} {shares:>21} {np.mean(scores):>9.4f}   "
              + " ".join(f"{s:.4f}" for s in scores))
    spark.stop()
    shutil.rmtree(checkpoints, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
