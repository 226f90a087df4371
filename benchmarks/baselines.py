"""The two plain baselines every quality figure stands next to, on both protocols.

Not estimators of the package: small script-level models, written the way a
Kaggle notebook writes them, so that a package model is compared with what a
user gets without the package.

- ``logistic``: RankGauss (``QuantileTransformer(n_quantiles=100,
  output_distribution="normal")``) + ``PCA(100)`` + one
  ``LogisticRegression(C=0.01)`` per target;
- ``plain``: the public lish-moa recipe written plainly: RankGauss, PCA
  600 genes / 50 cells appended, ``VarianceThreshold(0.8)``, cp_time / cp_dose
  one-hots; a net BN -> Dropout -> weight-normed Dense(2048) -> ReLU, twice,
  then a weight-normed head; Adam (weight decay 1e-5), OneCycle (max lr 1e-2),
  25 epochs, batch 128, label smoothing 0.001; the best epoch chosen on 10% of
  the training *drugs* held out whole; predictions clipped to [0.0005, 0.9995].

Both are fitted on treated rows (the notebooks' habit) and predict control
rows 0; preprocessing is fitted on the training part of each fold only.

``python benchmarks/baselines.py`` scores, on a ``make_moa`` world and the same
folds for every model, the constant prior, both baselines and the Bayes
optimum under the two protocols:

- ``new-compound``: ``DrugMultilabelStratifiedKFold(K, max_drug_size=None)``,
  every drug held out whole (what predicting a new compound needs);
- ``kaggle``: ``DrugMultilabelStratifiedKFold(K)``, the large drugs split by
  row (comparable with the competition's CV figures).

Metric: mean columnwise log loss over all rows (controls included), out of
fold. Results go to ``<outdir>/baselines.json``. A smoke run (seconds)::

    python benchmarks/baselines.py --n-samples 600 --small --outdir /tmp/bench
"""

import json
import time
import warnings
from pathlib import Path

import _common
import numpy as np
from _nets import kaggle_optimizer

PROTOCOLS = ("new-compound", "kaggle")
CLIP = (0.0005, 0.9995)


def _gc_columns(frame):
    genes = [c for c in frame.columns if c.startswith("g-")]
    cells = [c for c in frame.columns if c.startswith("c-")]
    return genes, cells


def _one_hots(frame):
    time_, dose = frame["cp_time"].to_numpy(), frame["cp_dose"].to_numpy()
    return np.column_stack(
        [time_ == 24, time_ == 48, time_ == 72, dose == "D1", dose == "D2"]
    ).astype(np.float32)


def logistic(train, Y, test, *, seed=0, n_components=100):
    """RankGauss + PCA + one logistic regression per target; controls 0."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import QuantileTransformer

    keep = _common.treated(train)
    train, Y = train[keep], Y[keep]
    genes, cells = _gc_columns(train)
    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    a = qt.fit_transform(train[genes + cells])
    b = qt.transform(test[genes + cells])
    n_components = min(n_components, a.shape[1], a.shape[0] - 1)
    pca = PCA(n_components=n_components, random_state=seed).fit(a)
    a, b = pca.transform(a), pca.transform(b)
    P = np.zeros((len(test), Y.shape[1]))
    for j in range(Y.shape[1]):
        if Y[:, j].min() == Y[:, j].max():
            P[:, j] = Y[0, j]
            continue
        model = LogisticRegression(C=0.01, max_iter=300).fit(a, Y[:, j])
        P[:, j] = model.predict_proba(b)[:, 1]
    P[~_common.treated(test)] = 0.0
    return np.clip(P, *CLIP)


def plain_features(train, test, *, seed=0, n_pca=(600, 50), threshold=0.8):
    """The public notebooks' features, fitted on ``train`` only."""
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.preprocessing import QuantileTransformer

    genes, cells = _gc_columns(train)
    blocks_a, blocks_b = [], []
    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    a = qt.fit_transform(train[genes + cells])
    b = qt.transform(test[genes + cells])
    blocks_a.append(a)
    blocks_b.append(b)
    for cols, n in (
        (slice(0, len(genes)), n_pca[0]),
        (slice(len(genes), None), n_pca[1]),
    ):
        width = a[:, cols].shape[1]
        n = min(n, width, a.shape[0] - 1)
        pca = PCA(n_components=n, random_state=seed).fit(a[:, cols])
        blocks_a.append(pca.transform(a[:, cols]))
        blocks_b.append(pca.transform(b[:, cols]))
    a, b = np.hstack(blocks_a), np.hstack(blocks_b)
    vt = VarianceThreshold(threshold)
    if (a.var(axis=0) > threshold).any():
        a, b = vt.fit_transform(a), vt.transform(b)
    a = np.hstack([_one_hots(train), a]).astype(np.float32)
    b = np.hstack([_one_hots(test), b]).astype(np.float32)
    return a, b


def drug_holdout(groups, fraction, seed):
    """Boolean mask of the rows of ``fraction`` of the drugs, held out whole."""
    drugs = np.unique(groups)
    rng = np.random.RandomState(seed)
    n = max(1, int(round(fraction * drugs.size)))
    held = rng.choice(drugs, size=min(n, drugs.size - 1), replace=False)
    return np.isin(groups, held)


def plain(
    train,
    Y,
    groups,
    test,
    *,
    seed=0,
    epochs=25,
    hidden=2048,
    batch_size=128,
    n_pca=(600, 50),
    valid_fraction=0.1,
):
    """The public recipe's net, best epoch on held-out drugs; controls 0."""
    import torch
    from torch import nn

    keep = _common.treated(train)
    train, Y, groups = train[keep], Y[keep], np.asarray(groups)[keep]
    a, b = plain_features(train, test, seed=seed, n_pca=n_pca)
    valid = drug_holdout(groups, valid_fraction, seed)
    wn = nn.utils.parametrizations.weight_norm

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.BatchNorm1d(a.shape[1]),
        nn.Dropout(0.2),
        wn(nn.Linear(a.shape[1], hidden)),
        nn.ReLU(),
        nn.BatchNorm1d(hidden),
        nn.Dropout(0.5),
        wn(nn.Linear(hidden, hidden)),
        nn.ReLU(),
        nn.BatchNorm1d(hidden),
        nn.Dropout(0.5),
        wn(nn.Linear(hidden, Y.shape[1])),
    )
    x_fit, y_fit = torch.tensor(a[~valid]), torch.tensor(Y[~valid], dtype=torch.float32)
    x_val, y_val = torch.tensor(a[valid]), torch.tensor(Y[valid], dtype=torch.float32)
    steps = int(np.ceil(len(x_fit) / batch_size))
    optimizer, scheduler = kaggle_optimizer(torch, model, epochs, steps)
    loss_fn, smoothing = nn.BCEWithLogitsLoss(), 0.001
    generator = torch.Generator().manual_seed(seed)
    best, best_state = np.inf, None
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x_fit), generator=generator)
        for i in range(steps):
            rows = order[i * batch_size : (i + 1) * batch_size]
            if len(rows) < 2:  # BatchNorm needs two rows
                continue
            optimizer.zero_grad()
            target = y_fit[rows] * (1 - smoothing) + 0.5 * smoothing
            loss_fn(model(x_fit[rows]), target).backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            loss = loss_fn(model(x_val), y_val).item()
        if loss < best:
            best = loss
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        P = torch.sigmoid(model(torch.tensor(b))).numpy().astype(np.float64)
    P[~_common.treated(test)] = 0.0
    return np.clip(P, *CLIP)


def splitter(protocol, n_splits, seed):
    """The drug splitter of a protocol (as ``moa-sklearn cv --protocol``)."""
    from moa_sklearn.model_selection import _protocol_splitter

    return _protocol_splitter(protocol, n_splits, seed)


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, signal=True, effects=True)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=25, help="the plain net's")
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="keep the baselines' out-of-fold predictions here "
        "(bench_quality.py reads them back from the same --workdir)",
    )
    _common.add_run_arguments(parser, small="a tiny world and net", outdir=True)
    args = parser.parse_args(argv)

    _common.threads(args.threads)
    net_kw = dict(epochs=args.epochs)
    world_kw = _common.world_kwargs(args, n_test=0)
    if args.small:
        world_kw.update(n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)
        net_kw.update(hidden=32, n_pca=(6, 3))
    world = _common.make_world(args, **world_kw)
    results = {
        protocol: score_protocol(world, protocol, args, net_kw, key=world_kw)
        for protocol in args.protocols
    }
    _common.save(
        "baselines",
        dict(
            world=world_kw,
            metric="mean columnwise log loss over all rows (controls included)",
            plain_net=net_kw,
            protocols=results,
        ),
        args.outdir,
    )


def oof_baselines(X, Y, groups, folds, *, seed=0, net_kw=None, cache=None, key=None):
    """Out-of-fold predictions and seconds of both baselines on ``folds``.

    With ``cache`` (an ``.npz`` path), they are kept there with ``key`` (the
    world, say) and the folds, and read back by a later run of the same key
    and folds (``bench_quality.py`` reuses a ``baselines.py`` run this way).
    """
    net_kw = {"epochs": 25} | dict(net_kw or {})
    tests = np.concatenate([test for _, test in folds])
    stamp = json.dumps(
        dict(key=key, seed=seed, plain=net_kw, folds=[len(t) for _, t in folds]),
        sort_keys=True,
        default=str,
    )
    if cache is not None and Path(cache).is_file():
        with np.load(cache) as f:
            if str(f["stamp"]) == stamp and np.array_equal(f["tests"], tests):
                print(f"baselines read back from {cache}", flush=True)
                return (
                    {k: f[k] for k in ("logistic", "plain")},
                    json.loads(str(f["seconds"])),
                )
    oof = {k: np.full(Y.shape, np.nan) for k in ("logistic", "plain")}
    seconds = {"logistic": 0.0, "plain": 0.0}
    for train, test in folds:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant labels in a fold
            oof["logistic"][test] = logistic(
                X.iloc[train], Y[train], X.iloc[test], seed=seed
            )
            t1 = time.perf_counter()
            oof["plain"][test] = plain(
                X.iloc[train],
                Y[train],
                groups[train],
                X.iloc[test],
                seed=seed,
                **net_kw,
            )
        seconds["logistic"] += t1 - t0
        seconds["plain"] += time.perf_counter() - t1
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, stamp=stamp, tests=tests, seconds=json.dumps(seconds), **oof)
    return oof, seconds


def score_protocol(world, protocol, args, net_kw, key=None):
    """The prior, both baselines and the Bayes optimum, out of fold."""
    X, Y, groups = world.data, world.target.to_numpy(), world.groups.to_numpy()
    folds = list(splitter(protocol, args.folds, args.seed).split(X, Y, groups))
    prior = _common.oof_prior(Y, _common.treated(X), folds)
    oof = {"prior": np.clip(prior, 1e-5, 1 - 1e-5)}
    cache = None
    if args.workdir is not None:
        cache = Path(args.workdir) / f"baselines_{protocol}.npz"
    base, seconds = oof_baselines(
        X, Y, groups, folds, seed=args.seed, net_kw=net_kw, cache=cache, key=key
    )
    oof.update(base)
    oof["bayes"] = world.bayes_proba.to_numpy()
    result = dict(
        cv=repr(splitter(protocol, args.folds, args.seed)),
        table=_common.score_table(Y, oof, prior="prior", bayes="bayes"),
        seconds=seconds,
    )
    print(f"{protocol}: {result['cv']}")
    for k, r in result["table"].items():
        print(
            f"  {k:10s} {r['loss']:.5f}  {r['ratio_to_prior']:.3f} of prior, "
            f"{r['gap_closed']:.2f} of the gap closed"
        )
    return result


if __name__ == "__main__":
    main()
