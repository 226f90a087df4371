"""Seconds per epoch: the Kaggle-notebook training loop vs TwoStepNetClassifier.

Both train the same architecture (the public two-step net: BN / Dropout /
Linear / LeakyReLU blocks 1500-1250-1000-750, weight-normalised head) on the
same synthetic data with batch 128, Adam and a per-batch OneCycle schedule:

- ``kaggle``: the notebook loop, a ``DataLoader`` over a ``TensorDataset``,
  ``torch.optim.Adam`` with its defaults, ``nn.Dropout``, fp32;
- ``estimator-fp32`` / ``estimator-bf16``: ``TwoStepNetClassifier`` (skorch
  with the fast data path, fused Adam, a faster dropout; bf16 autocast).

It prints seconds per epoch (train + validation), the speed-up over the
Kaggle loop, the achieved GFLOP/s against this machine's fp32 and bf16
matrix-product peaks (measured here), and the holdout log loss of each run
so that bf16 can be checked against fp32. Run it on a quiet machine: other
processes on the cores distort every figure.

Example (the lead's full-size run)::

    python benchmarks/studies/bench_twostep_speed.py --n-samples 20000 \\
        --n-features 1000 --epochs 2

A small smoke run::

    python benchmarks/studies/bench_twostep_speed.py --n-samples 600 \\
        --n-features 50 --epochs 1 --hidden 64 32
"""

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402
from _nets import (  # noqa: E402
    HIDDEN,
    add_data_arguments,
    estimator_run,
    flops_per_row,
    kaggle_run,
    later_epochs,
    make_data,
    matmul_peak,
)

METHODS = ("kaggle", "estimator-fp32", "estimator-bf16")


def log_loss(Y, P):
    P = np.clip(P, 1e-15, 1 - 1e-15)
    return float(-(Y * np.log(P) + (1 - Y) * np.log1p(-P)).mean())


def parse_args(argv):
    parser = _common.parser(__doc__)
    add_data_arguments(parser, n_samples=20000, n_features=1000, epochs=2)
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a torch.profiler table of one bf16 (or fp32) estimator epoch",
    )
    _common.add_run_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    import torch

    _common.threads(args.threads)
    hidden = tuple(args.hidden)
    if hasattr(os, "getloadavg"):
        print(
            f"load average before the run: {os.getloadavg()[0]:.2f} "
            f"(on {os.cpu_count()} cores; want ~0 for clean figures)"
        )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    X, Y = make_data(args.n_samples, args.n_features, args.n_targets, args.seed)
    n_test = max(2, args.n_samples // 5)
    train, test = (X[n_test:], Y[n_test:]), (X[:n_test], Y[:n_test])
    n_valid = max(2, len(train[0]) // 10)
    print(
        f"data: {len(train[0])} training rows ({n_valid} of them inner validation), "
        f"{n_test} holdout rows, {args.n_features} features, {args.n_targets} "
        f"targets; net {hidden}, batch {args.batch_size}, {args.epochs} epoch(s)"
    )
    peaks = matmul_peaks(torch, args)
    run = dict(
        hidden=hidden,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        n_valid=n_valid,
    )
    results = {}
    for method in args.methods:
        if method == "kaggle":
            durations, proba = kaggle_run(torch, *train, test[0], **run)
        else:
            precision = method.split("-")[1]
            net, durations = estimator_run(*train, precision=precision, **run)
            proba = net.predict_proba(test[0])
        # the first epoch pays one-off costs (allocations, oneDNN kernels)
        results[method] = (later_epochs(durations), log_loss(test[1], proba))
    fpr = flops_per_row(args.n_features, hidden, args.n_targets)
    # training: forward + backward (~3 forwards); validation: one forward
    epoch_flops = 3 * fpr * (len(train[0]) - n_valid) + fpr * n_valid
    print_results(results, epoch_flops, *peaks)
    if args.profile:
        profile(args, train, run)


def matmul_peaks(torch, args):
    """The fp32 and bf16 (None where not native) matmul peaks; drops bf16 runs."""
    from moa_sklearn.neural._torch_utils import bf16_supported

    peak32 = matmul_peak(torch, torch.float32)
    peak16 = matmul_peak(torch, torch.bfloat16) if bf16_supported("cpu") else None
    print(
        f"matmul peaks (2048^3): fp32 {peak32:.0f} GFLOP/s, bf16 "
        + ("unavailable (not native)" if peak16 is None else f"{peak16:.0f} GFLOP/s")
    )
    if peak16 is None and "estimator-bf16" in args.methods:
        print("estimator-bf16: unavailable (no native bf16 on this machine)")
        args.methods = [m for m in args.methods if m != "estimator-bf16"]
    return peak32, peak16


def print_results(results, epoch_flops, peak32, peak16):
    base = results.get("kaggle", (None,))[0]
    print()
    print(
        f"{'method':<16}{'s/epoch':>9}{'speed-up':>10}{'GFLOP/s':>9}"
        f"{'% fp32 pk':>11}{'% bf16 pk':>11}{'holdout logloss':>17}"
    )
    for method, (sec, loss) in results.items():
        gflops = epoch_flops / sec / 1e9
        speed = f"{base / sec:.2f}x" if base else "-"
        print(
            f"{method:<16}{sec:>9.3f}{speed:>10}{gflops:>9.0f}"
            f"{100 * gflops / peak32:>10.0f}%"
            + (f"{100 * gflops / peak16:>10.0f}%" if peak16 else f"{'-':>11}")
            + f"{loss:>17.5f}"
        )
    if "estimator-fp32" in results and "estimator-bf16" in results:
        a, b = results["estimator-fp32"][1], results["estimator-bf16"][1]
        print(
            f"\nbf16 vs fp32 holdout log loss: {100 * (b - a) / a:+.2f}% "
            "(one seed; the quality benchmark gives the CV figure)"
        )


def profile(args, train, run):
    """A torch.profiler table of one estimator epoch (self CPU time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    precision = "bf16" if "estimator-bf16" in args.methods else "fp32"
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        estimator_run(*train, precision=precision, **dict(run, epochs=1))
    print(f"\nprofile of one {precision} estimator epoch (self CPU time):")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
