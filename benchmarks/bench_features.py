"""Speed of make_moa_features: fit on lish-moa-sized data, transform the test rows.

Targets (issue "Feature transformers"): on a 2-core machine, fitting
``make_moa_features()`` (default recipe sizes: 600 gene / 50 cell components,
22 / 4 clusters, variance threshold 0.8) on 23,814 x 875 takes under 60 s and
transforming 3,982 rows under 2 s.

The data come from ``make_moa`` with the lish-moa layout; generating them is
not timed. ``--breakdown`` refits step by step to show where the time goes.

Run it on a quiet machine: with other processes busy, OpenBLAS's worker
threads contend for the 2 cores and PCA / KMeans slow down many times over
(the script prints the load average). ``--threads 1`` limits BLAS / OpenMP to
one thread, which is often faster on a loaded machine.

Run (full size, takes about a minute; not part of the test suite)::

    python benchmarks/bench_features.py
    python benchmarks/bench_features.py --n-samples 2000 --breakdown   # quick
"""

import os
import platform
import time

import _common
import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from moa_sklearn.preprocessing import make_moa_features

FIT_LIMIT_S = 60.0
TRANSFORM_LIMIT_S = 2.0


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, n_test=3982)
    parser.add_argument("--n-genes", type=int, default=772)
    parser.add_argument("--n-cells", type=int, default=100)
    parser.add_argument(
        "--repeat", type=int, default=3, help="transform timings: best of this many"
    )
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each step's fit"
    )
    _common.add_run_arguments(parser)
    args = parser.parse_args(argv)
    with threadpool_limits(args.threads):
        return _run(args)


def _run(args):
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"python {platform.python_version()}, load average {load:.1f}, "
        f"threads {'default' if args.threads is None else args.threads}"
    )
    world = _common.make_world(args)
    X, X_test = world.data, world.test_data
    print(f"data: train {X.shape}, test {X_test.shape}")

    features = make_moa_features(random_state=args.seed)
    _, t_fit = _timed(features.fit, X)
    times = []
    for _ in range(max(1, args.repeat)):
        Xt_test, t = _timed(features.transform, X_test)
        times.append(t)
    t_transform = min(times)
    Xt_train, t_transform_train = _timed(features.transform, X)

    print(f"output: {X.shape[1]} -> {Xt_train.shape[1]} columns")
    for name, step in features.named_steps.items():
        print(f"  after {name:<10} {len(step.get_feature_names_out()):>5} columns")
    assert Xt_test.shape == (X_test.shape[0], Xt_train.shape[1])
    assert np.isfinite(Xt_test.to_numpy()).all()

    if args.breakdown:
        print("fit time per step (refit, step by step):")
        Xc = X
        for name, step in features.steps:
            Xc, t = _timed(clone(step).fit_transform, Xc)
            print(f"  {name:<10} {t:7.2f} s")

    ok_fit = t_fit < FIT_LIMIT_S
    ok_transform = t_transform < TRANSFORM_LIMIT_S
    print(
        f"fit on {X.shape[0]} x {X.shape[1]}: {t_fit:.2f} s "
        f"(target < {FIT_LIMIT_S:.0f} s at 23,814 rows: "
        f"{'ok' if ok_fit else 'TOO SLOW'})"
    )
    print(
        f"transform {X_test.shape[0]} rows: {t_transform:.3f} s, best of "
        f"{len(times)} (target < {TRANSFORM_LIMIT_S:.0f} s: "
        f"{'ok' if ok_transform else 'TOO SLOW'})"
    )
    print(f"transform {X.shape[0]} training rows: {t_transform_train:.2f} s")
    return {"fit_s": t_fit, "transform_s": t_transform, "n_out": Xt_train.shape[1]}


if __name__ == "__main__":
    main()
