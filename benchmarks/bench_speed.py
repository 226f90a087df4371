"""Epoch time and GFLOP/s of each net against the Kaggle loop, in one run.

On the same synthetic lish-moa-sized data (Gaussian features of the width of
the preprocessed lish-moa features, 206 sparse labels, 10% inner validation),
in one process, one after the other:

- the matrix-product peaks of this machine (fp32 and bf16, 2048^3);
- ``kaggle``: the Kaggle-notebook loop of the public two-step net
  (``DataLoader`` over a ``TensorDataset``, Adam, fp32), the reference;
- ``twostep-fp32`` / ``twostep-bf16``: ``TwoStepNetClassifier`` with the same
  architecture (one step, so one epoch is comparable); bf16 only where it is
  native (else the row and the bf16 peak are reported as unavailable, as they
  are with ``MOA_SKLEARN_NO_BF16=1``);
- ``keras``: ``KerasNetClassifier`` with its defaults (TensorFlow backend);
- ``tabnet``: ``TabNetMultilabelClassifier`` with its defaults.

``--device cuda`` trains the nets on a GPU (the Kaggle loop stays on the CPU,
the reference); the machine record names the GPU.

Reported: seconds per epoch (training + validation pass; the median of the
epochs after the first, which holds tracing and warm-up), the speed-up over
the Kaggle loop, and the achieved GFLOP/s (dense nets: counted from the layer
sizes, 3 x forward for a training row and 1 x for a validation row; TabNet:
counted by ``torch.utils.flop_counter`` over one epoch on 2,048 rows) as a
share of the measured peaks. Results go to ``docs/bench/speed.json``.

Run it on a quiet machine, one thread (the documented figures)::

    taskset -c 0 python benchmarks/bench_speed.py --threads 1

A smoke run (seconds)::

    python benchmarks/bench_speed.py --n-samples 2000 --n-features 40 \\
        --n-targets 8 --epochs 2 --small --outdir /tmp/bench
"""

import os
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
from _nets import (  # noqa: E402
    DROPOUTS,
    HIDDEN,
    add_data_arguments,
    epoch_seconds,
    estimator_run,
    flops_per_row,
    kaggle_run,
    later_epochs,
    make_data,
    make_net,
    matmul_peak,
)

METHODS = ("kaggle", "twostep-fp32", "twostep-bf16", "keras", "tabnet")
NO_BF16 = "no native bf16 on this machine"


def tabnet_flops_per_row_epoch(net, X, Y, n_rows=2048):
    """Counted FLOPs of one TabNet training epoch, per row of the data given."""
    from sklearn.base import clone
    from torch.utils.flop_counter import FlopCounterMode

    n = min(n_rows, len(X))
    probe = clone(net).set_params(max_epochs=1, patience=None)
    with FlopCounterMode(display=False) as counter:
        probe.fit(X[:n], Y[:n], groups=np.arange(n))
    return counter.get_total_flops() / n


def parse_args(argv):
    parser = _common.parser(__doc__)
    add_data_arguments(parser, n_samples=23814, n_features=1239, epochs=3)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument(
        "--device",
        default="cpu",
        help="the nets' device (cpu, cuda); the Kaggle loop runs on the CPU",
    )
    _common.add_run_arguments(parser, small="small architectures", outdir=True)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)

    import torch

    _common.threads(args.threads)
    hidden = (64, 32) if args.small else HIDDEN
    X, Y = make_data(args.n_samples, args.n_features, args.n_targets, args.seed)
    n_valid = max(2, len(X) // 10)
    print(
        f"data: {X.shape[0]} rows x {X.shape[1]} features ({n_valid} inner "
        f"validation), {Y.shape[1]} labels ({Y.mean():.2%} positive); "
        f"{args.epochs} epochs; torch threads {torch.get_num_threads()}",
        flush=True,
    )
    bf16 = _common.bf16_native("cpu" if args.device == "cpu" else args.device)
    peaks = {
        "fp32": matmul_peak(torch, torch.float32),
        "bf16": matmul_peak(torch, torch.bfloat16) if bf16 else None,
    }
    print(
        f"matmul peaks: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 "
        + (f"{peaks['bf16']:.0f} GFLOP/s" if bf16 else "unavailable (not native)")
    )
    rows = {}
    for method in args.methods:
        if method.endswith("bf16") and not bf16:
            rows[method] = dict(precision="bf16", unavailable=NO_BF16)
            print(f"{method}: unavailable ({NO_BF16})", flush=True)
            continue
        rows[method] = measure(method, args, torch, X, Y, n_valid, hidden)
        r = rows[method]
        print(
            f"{method}: {r['epoch_seconds']:.2f} s/epoch, {r['gflops']:.0f} GFLOP/s",
            flush=True,
        )
    print_rows(rows, peaks)
    data = {k: getattr(args, k) for k in ("n_samples", "n_features", "n_targets")}
    data.update(n_valid=n_valid, epochs=args.epochs, batch_size=args.batch_size)
    data.update(small=args.small, dropouts=list(DROPOUTS), hidden=list(hidden))
    results = dict(
        data=data,
        threads=torch.get_num_threads(),
        device=args.device,
        matmul_peak_gflops=peaks,
        methods=rows,
        peak_rss_mib=_common.peak_rss_mib(),
    )
    _common.save("speed", results, args.outdir)
    plot(results, args.outdir)


def measure(method, args, torch, X, Y, n_valid, hidden):
    """Train one method; its epoch seconds, precision and GFLOP/s."""

    def dense_epoch_flops(sizes):
        # training: forward + backward (~3 forwards); validation: one forward
        fpr = flops_per_row(args.n_features, sizes, args.n_targets)
        return 3 * fpr * (len(X) - n_valid) + fpr * n_valid

    run = dict(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
    t0 = time.perf_counter()
    if method == "kaggle":
        durations, _ = kaggle_run(
            torch, X, Y, X[:10], n_valid=n_valid, hidden=hidden, **run
        )
        flops, precision = dense_epoch_flops(hidden), "fp32"
    elif method.startswith("twostep"):
        precision = method.split("-")[1]
        _, durations = estimator_run(
            X,
            Y,
            hidden=hidden,
            precision=precision,
            n_valid=n_valid,
            device=args.device,
            **run,
        )
        flops = dense_epoch_flops(hidden)
    else:
        net = make_net(method, args)
        # every epoch runs; one seed (the epochs of one net are measured)
        net.set_params(patience=None, n_seeds=1, device=args.device)
        net.fit(X, Y, groups=np.arange(len(X)))  # rows of distinct compounds
        durations, precision = epoch_seconds(net), "fp32"
        if method == "keras":
            flops = dense_epoch_flops(net.hidden_sizes)
        else:
            flops = tabnet_flops_per_row_epoch(net, X, Y) * len(X)
    fit_s = time.perf_counter() - t0
    sec = later_epochs(durations)
    return dict(
        epoch_seconds=sec,
        first_epoch_seconds=float(durations[0]),
        fit_seconds=fit_s,
        precision=precision,
        gflop_per_epoch=flops / 1e9,
        gflops=flops / sec / 1e9,
    )


def print_rows(rows, peaks):
    """The table of the methods; adds each one's speed-up over the Kaggle loop."""
    ref = rows.get("kaggle", {}).get("epoch_seconds")
    print(
        f"{'method':14s}{'s/epoch':>9s}{'vs Kaggle':>10s}{'GFLOP/s':>9s}"
        f"{'% fp32 pk':>10s}{'% bf16 pk':>10s}"
    )
    for method, r in rows.items():
        if r.get("unavailable"):
            print(f"{method:14s}  unavailable: {r['unavailable']}")
            continue
        r["speedup_vs_kaggle"] = ref / r["epoch_seconds"] if ref else None
        up = f"{r['speedup_vs_kaggle']:.2f}x" if ref else "-"
        of_bf16 = (
            f"{100 * r['gflops'] / peaks['bf16']:9.0f}%"
            if peaks["bf16"]
            else "       -"
        )
        print(
            f"{method:14s}{r['epoch_seconds']:9.2f}{up:>10s}{r['gflops']:9.0f}"
            f"{100 * r['gflops'] / peaks['fp32']:9.0f}%{of_bf16}"
        )


def plot(results, outdir=None):
    """Bar chart of seconds per epoch, annotated with GFLOP/s."""

    plt = _common.pyplot()
    rows = {k: v for k, v in results["methods"].items() if not v.get("unavailable")}
    names = list(rows)
    secs = [rows[n]["epoch_seconds"] for n in names]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    bars = ax.barh(names[::-1], secs[::-1], color="#4C72B0")
    for bar, n in zip(bars, names[::-1]):
        ax.text(
            bar.get_width(),
            bar.get_y() + bar.get_height() / 2,
            f" {rows[n]['gflops']:.0f} GFLOP/s",
            va="center",
            fontsize=8,
        )
    d = results["data"]
    ax.set_xlabel("seconds per epoch (train + validation), lower is better")
    ax.set_title(
        f"{d['n_samples']:,} x {d['n_features']:,}, {d['n_targets']} labels, "
        f"{results['threads']} thread(s)",
        fontsize=9,
    )
    ax.set_xlim(0, max(secs) * 1.45)
    fig.tight_layout()
    _common.savefig(fig, "speed", outdir)


if __name__ == "__main__":
    main()
