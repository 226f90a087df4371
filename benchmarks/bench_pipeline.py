"""Fit time, peak memory and predict latency of the whole pipeline vs rows.

For each size, in a fresh process (so that the peak memory is that size's):
a ``make_moa`` world of that many training rows and ``--n-test`` test rows
(fixed seed), then ``make_moa_pipeline(profile="full")`` (features -> control
rows -> ``StackingBlend`` of the two-step net, the Keras net and TabNet, with
a drug-grouped inner CV of ``--inner-folds`` folds) fitted with the drug ids
and the nonscored targets routed; then ``predict_proba`` of the test rows
(3,982 by default, the size of lish-moa's public test set), best of 3.

Measured: fit seconds, peak resident memory of the process (and its value
before the fit, with the world in memory), predict seconds. Fit time and
memory are plotted against rows on log-log axes with the fitted slope
(``docs/bench/scaling.png``; numbers in ``docs/bench/scaling.json``).

Every net's epochs are capped at ``--epochs`` (default 3) so that the sweep
finishes in minutes on a laptop CPU: the time of a fit is linear in the
epochs, so the slope is that of the full recipe; the full recipe's own fit
time is in the quality benchmark.

The documented run (one core, one thread)::

    taskset -c 0 python benchmarks/bench_pipeline.py --threads 1

A smoke run (under a minute)::

    python benchmarks/bench_pipeline.py --sizes 600 1200 --n-test 200 \\
        --small --epochs 1 --outdir /tmp/bench
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402


def model_params(epochs, threads):
    """The nets' parameters: epochs capped, torch threads set."""
    t = {} if threads is None else {"n_threads": threads}
    return {
        "twostep": {"max_epochs_pretrain": epochs, "max_epochs_finetune": epochs, **t},
        "keras": {"max_epochs": epochs},
        "tabnet": {"max_epochs": epochs, **t},
    }


def one_size(args):
    """Fit and predict at ``args.one`` rows; print one JSON line."""
    import sklearn

    from moa_sklearn.datasets import make_moa
    from moa_sklearn.recipes import make_moa_pipeline

    _common.threads(args.threads)
    # the engines first, so that the baseline holds them and the world
    import keras  # noqa: F401
    import pytorch_tabnet.tab_model  # noqa: F401
    import torch  # noqa: F401

    t0 = time.perf_counter()
    world = make_moa(args.one, n_test=args.n_test, random_state=args.seed)
    world_s = time.perf_counter() - t0
    rss_before = _common.peak_rss_mib()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_moa_pipeline(
            profile="quick" if args.small else "full",
            cv=args.inner_folds,
            random_state=args.seed,
            model_params=model_params(args.epochs, args.threads),
        )
        t0 = time.perf_counter()
        pipe.fit(world.data, world.target, groups=world.groups, y_aux=world.target_aux)
        fit_s = time.perf_counter() - t0
    rss_fit = _common.peak_rss_mib()
    predict = []
    for _ in range(3):
        t0 = time.perf_counter()
        proba = pipe.predict_proba(world.test_data)
        predict.append(time.perf_counter() - t0)
    assert proba.shape == world.test_target.shape
    out = dict(
        n_samples=args.one,
        n_test=len(world.test_data),
        world_seconds=world_s,
        fit_seconds=fit_s,
        predict_seconds=min(predict),
        rss_before_fit_mib=rss_before,
        peak_rss_fit_mib=rss_fit,
        peak_rss_mib=_common.peak_rss_mib(),
    )
    out["fit_memory_mib"] = out["peak_rss_fit_mib"] - rss_before
    print("RESULT " + json.dumps(out), flush=True)


def slope(x, y):
    """Least-squares slope of log y on log x (the scaling exponent)."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[5000, 10000, 20000, 40000]
    )
    parser.add_argument("--n-test", type=int, default=3982)
    parser.add_argument("--inner-folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="quick profile")
    parser.add_argument("--outdir", default=None, help="default: docs/bench")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        return one_size(args)

    common = ["--n-test", str(args.n_test), "--inner-folds", str(args.inner_folds)]
    common += ["--epochs", str(args.epochs), "--seed", str(args.seed)]
    if args.threads is not None:
        common += ["--threads", str(args.threads)]
    if args.small:
        common.append("--small")
    rows = []
    for n in args.sizes:
        print(f"{n} rows ...", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), *common],
            capture_output=True,
            text=True,
        )
        lines = [
            line for line in proc.stdout.splitlines() if line.startswith("RESULT ")
        ]
        if proc.returncode != 0 or not lines:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            raise SystemExit(f"the run at {n} rows failed ({proc.returncode})")
        row = json.loads(lines[-1][len("RESULT ") :])
        rows.append(row)
        print(
            f"  fit {row['fit_seconds']:.1f} s, predict {row['n_test']} rows "
            f"{row['predict_seconds']:.2f} s, peak memory "
            f"{row['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    n = [r["n_samples"] for r in rows]
    results = dict(
        profile="quick" if args.small else "full",
        inner_folds=args.inner_folds,
        epochs=args.epochs,
        threads=args.threads,
        sizes=rows,
        fit_time_slope=slope(n, [r["fit_seconds"] for r in rows]),
        peak_memory_slope=slope(n, [r["peak_rss_mib"] for r in rows]),
        fit_memory_slope=slope(n, [r["fit_memory_mib"] for r in rows]),
    )
    print(
        f"log-log slopes: fit time {results['fit_time_slope']:.2f}, peak memory "
        f"{results['peak_memory_slope']:.2f}, memory added by the fit "
        f"{results['fit_memory_slope']:.2f}"
    )
    _common.save("scaling", results, args.outdir)
    plot(results, args.outdir)


def plot(results, outdir=None):
    """Log-log plots of fit time and peak memory against rows, with slopes."""

    plt = _common.pyplot()
    rows = results["sizes"]
    n = np.array([r["n_samples"] for r in rows], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
    series = (
        (axes[0], "fit_seconds", "fit time", "#4C72B0"),
        (axes[1], "peak_rss_mib", "peak of the process", "#DD8452"),
        (axes[1], "fit_memory_mib", "added by the fit", "#55A868"),
    )
    grid = np.geomspace(n.min(), n.max(), 50)
    for ax, key, label, color in series:
        y = np.array([r[key] for r in rows], dtype=float)
        b, a = np.polyfit(np.log(n), np.log(y), 1)
        ax.loglog(n, y, "o", color=color)
        ax.loglog(grid, np.exp(a) * grid**b, "-", color=color, alpha=0.6)
        ax.plot([], [], "o-", color=color, label=f"{label}: slope {b:.2f}")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for ax, ylabel in zip(axes, ("fit time (s)", "memory (MiB)")):
        ax.set_xticks(n, [f"{v:,.0f}" for v in n])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training rows")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle(
        f"make_moa_pipeline(profile={results['profile']!r}), "
        f"{results['inner_folds']} inner folds, epochs <= {results['epochs']}",
        fontsize=9,
    )
    fig.tight_layout()
    _common.savefig(fig, "scaling", outdir)


if __name__ == "__main__":
    main()
