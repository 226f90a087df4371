"""The nets' timing helpers, shared by ``bench_speed.py`` and the studies.

- ``add_data_arguments``, ``make_data``: lish-moa-sized dense data (Gaussian
  features, sparse labels);
- ``make_net``: each net of the package with its default (or a small)
  architecture;
- ``kaggle_loop`` / ``kaggle_run``: the Kaggle-notebook training loop of the
  public two-step net, the reference of every speed figure;
- ``estimator_run``: ``TwoStepNetClassifier`` with the same architecture;
- ``matmul_peak``, ``flops_per_row``, ``epoch_seconds``, ``later_epochs``: what
  the figures are made of.
"""

import time

import numpy as np

from moa_sklearn.utils._engines import ENGINES

HIDDEN = (1500, 1250, 1000, 750)
DROPOUTS = (0.5, 0.35, 0.3, 0.25)

# per net: its small architecture (--small), the parameters that set its
# epochs, and whether it takes n_threads (every net does: torch's threads,
# or TensorFlow's pools, which otherwise use every core)
_NETS = {
    "keras": (dict(hidden_sizes=(64,), dropouts=0.2), ("max_epochs",), True),
    "tabnet": (
        dict(n_d=8, n_a=8, batch_size=128, virtual_batch_size=32, n_seeds=1),
        ("max_epochs",),
        True,
    ),
    "twostep": (
        dict(hidden_sizes=(64, 32), dropouts=0.25),
        ("max_epochs_pretrain", "max_epochs_finetune"),
        True,
    ),
}


def add_data_arguments(parser, *, n_samples, n_features, epochs):
    """--n-samples, --n-features, --n-targets, --epochs, --batch-size, --seed."""
    parser.add_argument("--n-samples", type=int, default=n_samples)
    parser.add_argument("--n-features", type=int, default=n_features)
    parser.add_argument("--n-targets", type=int, default=206)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)


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


def make_net(name, args):
    """One net with its default (or, with ``args.small``, a small) architecture.

    ``args.epochs``: the epochs of each of its steps (None: its defaults);
    ``args.seed``, ``args.threads``: its seed and torch threads.
    """
    from moa_sklearn import neural

    small_params, epoch_params, torch_threads = _NETS[name]
    params = dict(random_state=args.seed)
    if torch_threads:
        params["n_threads"] = args.threads
    if getattr(args, "small", False):
        params.update(small_params)
    if args.epochs is not None:
        params.update(dict.fromkeys(epoch_params, args.epochs))
    return getattr(neural, ENGINES[name].cls)(**params)


def epoch_seconds(net):
    """The seconds of each epoch of a fitted net (its history)."""
    return [r["dur"] for r in net.history_ if r.get("dur") is not None]


def later_epochs(durations):
    """Median epoch time after the first (which holds warm-up and tracing)."""
    return float(np.median(durations[1:] if len(durations) > 1 else durations))


def flops_per_row(n_features, hidden, n_targets):
    """Multiply-adds x 2 of one forward pass of one row."""
    sizes = [n_features, *hidden, n_targets]
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def matmul_peak(torch, dtype, size=2048, reps=5):
    """GFLOP/s of the best of ``reps`` products of two size x size matrices."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def _kaggle_model(torch, n_features, n_targets, hidden):
    """The public two-step net's module: BN / Dropout / Linear / LeakyReLU."""
    from torch import nn
    from torch.nn import functional as F

    class Model(nn.Module):
        def __init__(self):
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

    return Model()


def _loader(torch, X, Y, batch_size, shuffle):
    dataset = torch.utils.data.TensorDataset(
        torch.tensor(X), torch.tensor(Y, dtype=torch.float32)
    )
    drop_last = shuffle and len(X) % batch_size == 1
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last
    )


def kaggle_optimizer(torch, model, epochs, steps_per_epoch):
    """The public notebooks' Adam (weight decay 1e-5) and per-batch OneCycle."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=1e-2,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        pct_start=0.1,
        div_factor=1e3,
    )
    return optimizer, scheduler


def kaggle_loop(torch, X, Y, Xv, Yv, Xt, *, hidden, epochs, batch_size, seed):
    """The notebook's loop, as published (fp32, DataLoader, default Adam)."""
    from torch import nn

    torch.manual_seed(seed)
    model = _kaggle_model(torch, X.shape[1], Y.shape[1], hidden)
    train_loader = _loader(torch, X, Y, batch_size, shuffle=True)
    valid_loader = _loader(torch, Xv, Yv, batch_size, shuffle=False)
    optimizer, scheduler = kaggle_optimizer(torch, model, epochs, len(train_loader))
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
    """``TwoStepNetClassifier`` with the Kaggle loop's architecture and schedule.

    One step (no pretraining), so that an epoch compares with the loop's.
    Returns the fitted net and its epoch seconds.
    """
    from moa_sklearn.neural import TwoStepNetClassifier

    net = TwoStepNetClassifier(
        hidden_sizes=hidden,
        dropouts=DROPOUTS[: len(hidden)],
        pretrain=False,
        powerset=0.0,  # the loop's single sigmoid head
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
    net.fit(X, Y, groups=np.arange(len(X)))  # rows of distinct compounds
    return net, [r["dur"] for r in net.history_]
