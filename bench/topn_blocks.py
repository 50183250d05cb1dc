"""Time the per-block work of movierec_spark.serving.topn_all at ml-25m's shape, without Spark.

    .venv/bin/python bench/topn_blocks.py [--users 162541] [--movies 59047] [--seen 20000000] [--share 0.1]

Random rank-10 factors and biases; each user has seen ``seen / users``
random movies. Runs the same ``mapInArrow`` function the job runs, on a
``share`` of the users in this one process, and prints the CPU seconds per
user block and the projection to all users (the JVM's part -- grouping the
seen movies, joins -- is not included: see BENCHMARKS.md for the stage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from movierec_spark import columns as C
from movierec_spark.models.factors import FEATURES
from movierec_spark.models.recommender import USER_BIAS
from movierec_spark.serving.topn_all import _SEEN, DEFAULT_BLOCK_SIZE, _score_blocks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=162_541)
    parser.add_argument("--movies", type=int, default=59_047)
    parser.add_argument("--seen", type=int, default=20_000_000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK_SIZE)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    item_ids = np.arange(1, args.movies + 1)
    items = np.hstack([rng.normal(0, 0.3, (args.movies, 10)), rng.normal(0, 0.5, (args.movies, 1))])
    users = int(args.users * args.share)
    per_user = args.seen // args.users
    factors = rng.normal(0, 0.3, (users, 10)).astype(np.float32)
    seen = [rng.choice(item_ids, per_user, replace=False).astype(np.int32) for _ in range(users)]
    batch = pa.RecordBatch.from_pydict({
        C.USER_ID: pa.array(np.arange(1, users + 1, dtype=np.int32)),
        USER_BIAS: pa.array(rng.normal(0, 0.3, users)),
        FEATURES: pa.ListArray.from_arrays(pa.array(np.arange(0, 10 * users + 1, 10, dtype=np.int32)), pa.array(factors.ravel())),
        _SEEN: pa.ListArray.from_arrays(pa.array(np.arange(0, per_user * users + 1, per_user, dtype=np.int32)), pa.array(np.concatenate(seen))),
    })  # fmt: skip
    run = _score_blocks(item_ids, np.ascontiguousarray(items.T), 3.5, (0.5, 5.0), 10, args.block_size)
    cpu, wall = time.process_time(), time.perf_counter()
    rows = sum(out.num_rows for out in run(iter([batch])))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    blocks = -(-users // args.block_size)
    print(f"{users:,} users x {args.movies:,} movies in {blocks} blocks of {args.block_size}: {rows:,} rows, "
          f"CPU {cpu:.1f} s ({cpu / blocks:.3f} s/block), wall {wall:.1f} s, load {os.getloadavg()[0]:.1f}; "
          f"all {args.users:,} users: {cpu / args.share:.0f} CPU s")  # fmt: skip


if __name__ == "__main__":
    main()
