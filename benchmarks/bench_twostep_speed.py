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

    python benchmarks/bench_twostep_speed.py --n-samples 20000 \\
        --n-features 1000 --epochs 2

A small smoke run::

    python benchmarks/bench_twostep_speed.py --n-samples 600 \\
        --n-features 50 --epochs 1 --hidden 64 32
"""

import argparse
import os
import time

import numpy as np

HIDDEN = (1500, 1250, 1000, 750)
DROPOUTS = (0.5, 0.35, 0.3, 0.25)


def make_data(n_samples, n_features, n_targets, seed=0):
    """Gaussian features; sparse-logistic labels with ~1% positives."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features)).astype(np.float32)
    W = np.zeros((n_features, n_targets), dtype=np.float32)
    for j in range(n_targets):
        idx = rng.choice(n_features, size=min(8, n_features), replace=False)
        W[idx, j] = rng.normal(scale=1.0, size=idx.size)
    logits = X @ W - 5.0
    Y = (rng.uniform(size=logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    return X, Y


def flops_per_row(n_features, hidden, n_targets):
    """Multiply-adds x 2 of one forward pass of one row."""
    sizes = [n_features, *hidden, n_targets]
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_peak(torch, dtype, size=2048, reps=5):
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def log_loss(Y, P):
    P = np.clip(P, 1e-15, 1 - 1e-15)
    return float(-(Y * np.log(P) + (1 - Y) * np.log1p(-P)).mean())


def kaggle_loop(torch, X, Y, Xv, Yv, Xt, *, hidden, epochs, batch_size, seed):
    """The notebook's loop, as published (fp32, DataLoader, default Adam)."""
    from torch import nn
    from torch.nn import functional as F

    torch.manual_seed(seed)

    class Model(nn.Module):
        def __init__(self, n_features, n_targets):
            super().__init__()
            sizes = [n_features, *hidden]
            self.bns = nn.ModuleList(nn.BatchNorm1d(s) for s in sizes)
            self.drops = nn.ModuleList(
                nn.Dropout(p) for p in [0.0, *DROPOUTS[: len(hidden)]]
            )
            self.denses = nn.ModuleList(
                nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])
            )
            self.head = nn.utils.parametrizations.weight_norm(
                nn.Linear(sizes[-1], n_targets)
            )

        def forward(self, x):
            for i, dense in enumerate(self.denses):
                x = F.leaky_relu(dense(self.drops[i](self.bns[i](x))))
            return self.head(self.drops[-1](self.bns[-1](x)))

    model = Model(X.shape[1], Y.shape[1])
    train_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(
            torch.tensor(X), torch.tensor(Y, dtype=torch.float32)
        ),
        batch_size=batch_size,
        shuffle=True,
        drop_last=len(X) % batch_size == 1,
    )
    valid_loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(
            torch.tensor(Xv), torch.tensor(Yv, dtype=torch.float32)
        ),
        batch_size=batch_size,
        shuffle=False,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        pct_start=0.1,
        div_factor=1e3,
        max_lr=1e-2,
        epochs=epochs,
        steps_per_epoch=len(train_loader),
    )
    loss_fn = nn.BCEWithLogitsLoss()
    smoothing = 0.001
    durations = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.train()
        for inputs, targets in train_loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = loss_fn(outputs, targets * (1 - smoothing) + 0.5 * smoothing)
            loss.backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            for inputs, targets in valid_loader:
                loss_fn(model(inputs), targets).item()
        durations.append(time.perf_counter() - t)
    with torch.no_grad():
        proba = torch.sigmoid(model(torch.tensor(Xt))).numpy()
    return durations, np.clip(proba, 0.0005, 0.9995)


def kaggle_run(torch, X, Y, X_test, *, n_valid, hidden, epochs, batch_size, seed):
    """The Kaggle loop with a random ``n_valid`` rows of ``X`` as validation."""
    perm = np.random.RandomState(seed).permutation(len(X))
    fit_rows, valid_rows = perm[n_valid:], perm[:n_valid]
    return kaggle_loop(
        torch,
        X[fit_rows],
        Y[fit_rows],
        X[valid_rows],
        Y[valid_rows],
        X_test,
        hidden=hidden,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
    )


def estimator_run(
    X, Y, *, hidden, epochs, batch_size, seed, precision, n_valid, device="cpu"
):
    from moa_sklearn.neural import TwoStepNetClassifier

    net = TwoStepNetClassifier(
        hidden_sizes=hidden,
        dropouts=DROPOUTS[: len(hidden)],
        pretrain=False,
        max_epochs_finetune=epochs,
        batch_size=batch_size,
        learning_rate_finetune=1e-2,
        div_factor_finetune=1e3,
        weight_decay_finetune=1e-5,
        validation_fraction=n_valid / len(X),
        precision=precision,
        device=device,
        random_state=seed,
    )
    net.fit(X, Y)
    return net, [r["dur"] for r in net.history_]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=20000)
    parser.add_argument("--n-features", type=int, default=1000)
    parser.add_argument("--n-targets", type=int, default=206)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden", type=int, nargs="+", default=list(HIDDEN))
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["kaggle", "estimator-fp32", "estimator-bf16"],
        choices=["kaggle", "estimator-fp32", "estimator-bf16"],
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a torch.profiler table of one bf16 (or fp32) estimator epoch",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
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
    X_train, Y_train, X_test, Y_test = X[n_test:], Y[n_test:], X[:n_test], Y[:n_test]
    n_valid = max(2, len(X_train) // 10)
    print(
        f"data: {len(X_train)} training rows ({n_valid} of them inner validation), "
        f"{n_test} holdout rows, {args.n_features} features, {args.n_targets} "
        f"targets; net {hidden}, batch {args.batch_size}, {args.epochs} epoch(s)"
    )

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

    fpr = flops_per_row(args.n_features, hidden, args.n_targets)
    n_fit = len(X_train) - n_valid
    # training: forward + backward (~3 forwards); validation: one forward
    epoch_flops = 3 * fpr * n_fit + fpr * n_valid

    results = {}
    for method in args.methods:
        if method == "kaggle":
            durations, proba = kaggle_run(
                torch,
                X_train,
                Y_train,
                X_test,
                n_valid=n_valid,
                hidden=hidden,
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=args.seed,
            )
        else:
            precision = method.split("-")[1]
            net, durations = estimator_run(
                X_train,
                Y_train,
                hidden=hidden,
                epochs=args.epochs,
                batch_size=args.batch_size,
                seed=args.seed,
                precision=precision,
                n_valid=n_valid,
            )
            proba = net.predict_proba(X_test)
        # the first epoch pays one-off costs (allocations, oneDNN kernels)
        sec = float(np.median(durations[1:] if len(durations) > 1 else durations))
        results[method] = (sec, log_loss(Y_test, proba))

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

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        precision = "bf16" if "estimator-bf16" in args.methods else "fp32"
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            estimator_run(
                X_train,
                Y_train,
                hidden=hidden,
                epochs=1,
                batch_size=args.batch_size,
                seed=args.seed,
                precision=precision,
                n_valid=n_valid,
            )
        print(f"\nprofile of one {precision} estimator epoch (self CPU time):")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


if __name__ == "__main__":
    main()
