"""Speed and drug-grouped CV quality of the Keras net and TabNet.

Two parts (``--part speed``, ``--part cv`` or both):

``speed``
    Seconds per epoch of ``KerasNetClassifier`` and
    ``TabNetMultilabelClassifier`` (and ``TwoStepNetClassifier`` for scale)
    with their default architectures on lish-moa-sized data: Gaussian
    features of the width of the preprocessed lish-moa features (~1,239
    columns), 206 sparse labels, ``--n-samples`` rows of which 10% are the
    inner validation split. Each net trains ``--epochs`` epochs without early
    stopping; the first epoch (which holds TensorFlow's tracing) is reported
    apart from the median of the others. Each epoch is training plus the
    validation pass. For the two-step net one "epoch" is an epoch of a step.

``cv``
    Drug-grouped ``--folds``-fold CV (``DrugMultilabelStratifiedKFold``) on a
    ``make_moa`` world: out-of-fold mean columnwise log loss over all rows
    (controls included, the nets' raw output) of
    ``make_pipeline(make_moa_features(), net)`` for each net, next to the
    constant prior (treated-row prevalence of the training folds, controls
    0) and the world's Bayes-optimal loss (``world.bayes_proba``). The drug
    ids are routed to every net (drug-grouped inner validation); the
    nonscored targets to the two-step net (pretraining). "gap closed" is
    (prior - loss) / (prior - Bayes).

Full size (the lead's run; long on a laptop CPU)::

    python benchmarks/bench_keras_tabnet.py --part speed --n-samples 23814 \\
        --epochs 3
    python benchmarks/bench_keras_tabnet.py --part cv

A tiny smoke run (seconds)::

    python benchmarks/bench_keras_tabnet.py --n-samples 1200 --n-genes 40 \\
        --n-cells 10 --n-scored 12 --n-nonscored 20 --n-features 50 \\
        --folds 3 --epochs 2 --small

``--models`` picks the nets (``keras tabnet twostep``); ``--small`` swaps the
default architectures for small ones (for smoke runs). ``--epochs`` caps the
epochs of every net in the CV part (default: each net's own defaults, with
early stopping). Set ``KERAS_BACKEND`` to try another Keras backend.
"""

import argparse
import os
import time

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODELS = ("keras", "tabnet", "twostep")


def make_net(name, *, small, epochs, seed, threads):
    """One net with its default (or, with ``small``, a small) architecture."""
    from moa_sklearn import neural

    if name == "keras":
        kw = dict(random_state=seed)
        if small:
            kw.update(hidden_sizes=(64,), dropouts=0.2)
        if epochs is not None:
            kw["max_epochs"] = epochs
        return neural.KerasNetClassifier(**kw)
    if name == "tabnet":
        kw = dict(random_state=seed, n_threads=threads)
        if small:
            kw.update(n_d=8, n_a=8, batch_size=128, virtual_batch_size=32)
        if epochs is not None:
            kw["max_epochs"] = epochs
        return neural.TabNetMultilabelClassifier(**kw)
    if name == "twostep":
        kw = dict(random_state=seed, n_threads=threads)
        if small:
            kw.update(hidden_sizes=(64, 32), dropouts=0.25)
        if epochs is not None:
            kw.update(max_epochs_pretrain=epochs, max_epochs_finetune=epochs)
        return neural.TwoStepNetClassifier(**kw)
    raise ValueError(name)


def speed(args):
    rng = np.random.RandomState(args.seed)
    n, d, k = args.n_samples, args.n_features, args.n_scored
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = np.zeros((d, k), dtype=np.float32)
    for j in range(k):
        idx = rng.choice(d, size=min(8, d), replace=False)
        W[idx, j] = rng.normal(size=idx.size)
    logits = X @ W - 5.0
    Y = (rng.uniform(size=logits.shape) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    print(
        f"speed: X {X.shape}, Y {Y.shape} ({Y.mean():.2%} positives), "
        f"{args.epochs} epochs, 10% inner validation"
    )
    print(f"{'model':10s} {'epoch 1 s':>10s} {'later epochs s':>15s} {'fit s':>8s}")
    for name in args.models:
        net = make_net(
            name, small=args.small, epochs=args.epochs, seed=args.seed, threads=None
        )
        if name in ("keras", "tabnet"):
            net.set_params(patience=None)  # every epoch runs
        t0 = time.perf_counter()
        net.fit(X, Y)
        total = time.perf_counter() - t0
        durations = [r["dur"] for r in net.history_ if r.get("dur") is not None]
        later = np.median(durations[1:]) if len(durations) > 1 else float("nan")
        print(f"{name:10s} {durations[0]:10.2f} {later:15.2f} {total:8.1f}", flush=True)


def cv(args):
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.datasets import make_moa
    from moa_sklearn.metrics import mean_columnwise_log_loss
    from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
    from moa_sklearn.preprocessing import make_moa_features

    world_kw = dict(
        n_test=0,
        n_genes=args.n_genes,
        n_cells=args.n_cells,
        n_scored=args.n_scored,
        n_nonscored=args.n_nonscored,
        random_state=args.seed,
    )
    t0 = time.perf_counter()
    world = make_moa(args.n_samples, **world_kw)
    print(f"make_moa({args.n_samples}, {world_kw}): {time.perf_counter() - t0:.1f} s")
    X, Y, Y_aux = world.data, world.target.to_numpy(), world.target_aux.to_numpy()
    groups = world.groups.to_numpy()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    folds = list(
        DrugMultilabelStratifiedKFold(args.folds, random_state=args.seed).split(
            X, Y, groups
        )
    )
    features_kw = {}
    if args.n_genes < 600 or args.n_cells < 50:
        # the recipe's 600 + 50 components need 772 + 100 columns
        features_kw = dict(
            n_components={
                "g": max(2, args.n_genes // 2),
                "c": max(2, args.n_cells // 2),
            },
            n_clusters={"g": 4, "c": 2},
        )

    oof = {"constant prior": np.zeros(Y.shape)}
    for train, test in folds:
        prior = Y[train][~control[train]].mean(axis=0)
        oof["constant prior"][test] = np.where(control[test, None], 0.0, prior)
    seconds = {}
    for name in args.models:
        t0 = time.perf_counter()
        pred = np.zeros(Y.shape)
        for train, test in folds:
            net = make_net(
                name,
                small=args.small,
                epochs=args.epochs,
                seed=args.seed,
                threads=args.threads,
            )
            pipe = make_pipeline(
                make_moa_features(random_state=args.seed, **features_kw), net
            )
            step = pipe.steps[-1][0]
            params = {f"{step}__groups": groups[train]}
            if name == "twostep":
                params[f"{step}__y_aux"] = Y_aux[train]
            pipe.fit(X.iloc[train], Y[train], **params)
            pred[test] = pipe.predict_proba(X.iloc[test])
        seconds[name] = time.perf_counter() - t0
        oof[name] = pred
        print(f"{name}: {seconds[name]:.0f} s", flush=True)

    eps = 1e-15
    prior_p = np.clip(oof["constant prior"], 1e-5, 1 - 1e-5)
    prior_loss = mean_columnwise_log_loss(Y, prior_p, eps=eps)
    bayes_loss = mean_columnwise_log_loss(Y, world.bayes_proba.to_numpy(), eps=eps)
    print(
        f"\n{args.folds}-fold drug-grouped CV, out-of-fold mean columnwise log loss "
        f"over all {len(Y)} rows (controls included); {args.n_scored} scored targets"
    )
    print(f"{'model':36s} {'loss':>9s} {'/prior':>7s} {'gap closed':>11s} {'time':>7s}")
    rows = [("Bayes optimum (world.bayes_proba)", bayes_loss)]
    rows.append(("constant prior", prior_loss))
    rows += [
        (name, mean_columnwise_log_loss(Y, oof[name], eps=eps)) for name in seconds
    ]
    for name, loss in rows:
        closed = (prior_loss - loss) / (prior_loss - bayes_loss)
        t = f"{seconds[name]:6.0f}s" if name in seconds else ""
        print(f"{name:36s} {loss:9.5f} {loss / prior_loss:7.3f} {closed:11.2f} {t:>7s}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["speed", "cv", "all"], default="all")
    parser.add_argument("--n-samples", type=int, default=23814)
    parser.add_argument(
        "--n-features", type=int, default=1239, help="width of X (speed part)"
    )
    parser.add_argument("--n-genes", type=int, default=772)
    parser.add_argument("--n-cells", type=int, default=100)
    parser.add_argument("--n-scored", type=int, default=206)
    parser.add_argument("--n-nonscored", type=int, default=402)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every net (speed part: default 3; cv: the nets' defaults)",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--small", action="store_true", help="small architectures")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.part in ("speed", "all"):
        speed(argparse.Namespace(**{**vars(args), "epochs": args.epochs or 3}))
    if args.part in ("cv", "all"):
        cv(args)


if __name__ == "__main__":
    main()
