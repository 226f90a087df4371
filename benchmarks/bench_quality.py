"""Drug-grouped CV of every model on one make_moa world, next to the optimum.

On a full-size ``make_moa`` world (fixed seed, written in the Kaggle layout by
``moa-sklearn make-data``), drug-grouped K-fold CV
(``DrugMultilabelStratifiedKFold(K, random_state=seed)``, the same folds for
every model) of:

- the constant prior (treated-row prevalence of the training folds, controls 0);
- stock scikit-learn: ``CategoricalEncoder`` + ``RankGauss`` + ``PCA(100)`` +
  one ``LogisticRegression(C=0.01)`` per label, and ``MLPClassifier`` (early
  stopping) on ``make_moa_features()``;
- the whole recipe, ``make_moa_pipeline(profile="full")``: features -> control
  rows -> ``StackingBlend`` of the two-step net, the Keras net and TabNet, with
  blend weights chosen on a drug-grouped inner CV of the training folds
  (nested CV: no weight sees its test fold). This runs as ``moa-sklearn cv``,
  which also scores each net as refitted inside the blend on the same
  training folds and features: "each net" below is that, like for like;
- the Bayes-optimal probabilities of the world.

Score: mean columnwise log loss over all rows (controls included) of the
out-of-fold predictions; stock models clipped to [0.0005, 0.9995] as the nets
clip theirs. "gap closed" is (prior - loss) / (prior - Bayes). Results go to
``docs/bench/quality.json`` and ``docs/bench/quality.png``.

``--epochs`` caps the Keras and TabNet epochs (their defaults: 35 with early
stopping, 200 with patience 20); the two-step net keeps the recipe's 24 + 24.
The blend's CV is resumable: it is kept in ``--workdir`` and an interrupted
run resumes from its finished folds.

The documented run (about 50 minutes on one core)::

    taskset -c 0 python benchmarks/bench_quality.py --threads 1

A smoke run (about a minute)::

    python benchmarks/bench_quality.py --small --workdir /tmp/bq --outdir /tmp/bench
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

CLIP = (0.0005, 0.9995)
# --small: a tiny world and tiny nets (a smoke run of the whole benchmark)
SMALL_WORLD = dict(n_samples=600, n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)
SMALL_CONFIG = dict(
    feature_params={"n_components": {"g": 6, "c": 3}, "n_clusters": {"g": 3, "c": 2}},
    model_params={
        "twostep": {
            "hidden_sizes": [16],
            "dropouts": 0.1,
            "max_epochs_pretrain": 2,
            "max_epochs_finetune": 2,
            "unfreeze_every": 1,
            "batch_size": 64,
        },
        "keras": {"hidden_sizes": [16], "dropouts": 0.1, "batch_size": 64},
        "tabnet": {"n_d": 8, "n_a": 8, "batch_size": 64, "virtual_batch_size": 16},
    },
)


def blend_cv(args, world_dir, cv_dir):
    """``moa-sklearn cv`` of the full pipeline (resumes a finished part)."""
    from moa_sklearn import cli

    config = dict(
        profile="quick" if args.small else "full",
        models=["twostep", "keras", "tabnet"],
        seed=args.seed,
        folds=args.folds,
        protocol="kaggle",  # the documented figures' scheme (large drugs by row)
        inner_folds=args.inner_folds,
        feature_params={},
        model_params={"twostep": {}, "keras": {}, "tabnet": {}},
    )
    if args.small:
        config.update(json.loads(json.dumps(SMALL_CONFIG)))
    mp = config["model_params"]
    mp["keras"]["max_epochs"] = args.epochs
    mp["tabnet"]["max_epochs"] = args.epochs
    if args.threads is not None:
        mp["twostep"]["n_threads"] = args.threads
        mp["tabnet"]["n_threads"] = args.threads
    cfg = Path(args.workdir) / "blend_cv.json"
    cfg.write_text(json.dumps(config, indent=1))
    t0 = time.perf_counter()
    if cli.main(["cv", str(world_dir), "-o", str(cv_dir), "--config", str(cfg)]):
        raise SystemExit("moa-sklearn cv failed")
    return time.perf_counter() - t0


def read_cv(cv_dir, shape):
    """OOF blend, per-net and Bayes predictions and fold infos of a CV folder."""
    infos = [
        json.loads(p.read_text())
        for p in sorted(Path(cv_dir).glob("fold_*.json"))
        if p.stem.split("_")[1].isdigit()
    ]
    names = list(infos[0]["model_scores"])
    oof = {k: np.full(shape, np.nan) for k in ["blend", *names, "bayes"]}
    for info in infos:
        with np.load(Path(cv_dir) / f"fold_{info['fold']}.npz") as f:
            test = f["test"]
            oof["blend"][test] = f["proba"]
            for m, name in enumerate(names):
                oof[name][test] = f["per_model"][m]
            oof["bayes"][test] = f["bayes"]
    return oof, infos


def stock_models(seed):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.preprocessing import (
        CategoricalEncoder,
        RankGauss,
        make_moa_features,
    )

    def lr(n_features):
        return make_pipeline(
            CategoricalEncoder(),
            RankGauss(),
            PCA(min(100, n_features - 3), random_state=seed),
            OneVsRestClassifier(LogisticRegression(C=0.01)),
        )

    def mlp(n_features):
        kw = {}
        if n_features < 600:  # a small world: fewer components than the recipe
            kw = dict(n_components={"g": 6, "c": 3}, n_clusters={"g": 3, "c": 2})
        return make_pipeline(
            make_moa_features(random_state=seed, **kw),
            MLPClassifier(early_stopping=True, random_state=seed),
        )

    return {
        "RankGauss + PCA + logistic regression": lr,
        "MLPClassifier": mlp,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=23814)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--inner-folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="smoke run")
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument(
        "--workdir", default="benchmarks/work", help="the world and the blend's CV"
    )
    parser.add_argument("--outdir", default=None, help="default: docs/bench")
    args = parser.parse_args(argv)

    from moa_sklearn import cli
    from moa_sklearn.datasets import load_moa
    from moa_sklearn.metrics import mean_columnwise_log_loss, multilabel_proba
    from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold

    _common.threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    world_dir, cv_dir = work / "world", work / "blend_cv"
    world = dict(SMALL_WORLD) if args.small else dict(n_samples=args.n_samples)
    if not (world_dir / "train_features.csv").is_file():
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in world.items()]
        cli.main(
            ["make-data", str(world_dir), *flags, "--n-test=0", f"--seed={args.seed}"]
        )
    blend_seconds = blend_cv(args, world_dir, cv_dir)

    moa = load_moa(world_dir)
    X, Y, groups = moa.data, moa.target.to_numpy(), moa.groups.to_numpy()
    oof, infos = read_cv(cv_dir, Y.shape)
    names = list(infos[0]["model_scores"])
    folds = list(
        DrugMultilabelStratifiedKFold(args.folds, random_state=args.seed).split(
            X, Y, groups
        )
    )
    treated = (X["cp_type"] != "ctl_vehicle").to_numpy()
    prior = np.zeros(Y.shape)
    for train, test in folds:
        prevalence = Y[train][treated[train]].mean(axis=0)
        prior[test] = np.where(treated[test, None], prevalence, 0.0)
    predictions = {"constant prior": np.clip(prior, 1e-5, 1 - 1e-5)}
    seconds = {}
    if not args.skip_stock:
        for name, make in stock_models(args.seed).items():
            t0 = time.perf_counter()
            P = np.full(Y.shape, np.nan)
            for train, test in folds:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # constant labels in a fold
                    model = make(X.shape[1]).fit(X.iloc[train], Y[train])
                P[test] = multilabel_proba(model, X.iloc[test])
            predictions[name] = np.clip(P, *CLIP)
            seconds[name] = time.perf_counter() - t0
            print(f"{name}: {mean_columnwise_log_loss(Y, predictions[name]):.5f}")
    labels = {
        "twostep": "TwoStepNetClassifier",
        "keras": "KerasNetClassifier",
        "tabnet": "TabNetMultilabelClassifier",
    }
    labels = {n: labels.get(n, n) for n in names}
    for name in names:
        predictions[labels[name]] = oof[name]
    predictions["StackingBlend (the recipe)"] = oof["blend"]
    predictions["Bayes optimum"] = oof["bayes"]
    seconds["StackingBlend (the recipe)"] = sum(i["fit_seconds"] for i in infos)

    loss = {k: mean_columnwise_log_loss(Y, v) for k, v in predictions.items()}
    p, b = loss["constant prior"], loss["Bayes optimum"]
    table = {
        k: dict(
            loss=v,
            ratio_to_prior=v / p,
            gap_closed=(p - v) / (p - b),
            seconds=seconds.get(k),
        )
        for k, v in loss.items()
    }
    best_net = min((labels[n] for n in names), key=lambda k: loss[k])
    print(f"{'model':40s} {'loss':>8s} {'/prior':>7s} {'gap closed':>10s}")
    for k, r in table.items():
        print(
            f"{k:40s} {r['loss']:8.5f} {r['ratio_to_prior']:7.3f} "
            f"{r['gap_closed']:10.2f}"
        )
    blend_loss = loss["StackingBlend (the recipe)"]
    print(
        f"blend {blend_loss:.5f} vs best net ({best_net}) {loss[best_net]:.5f}: "
        f"{'beats it' if blend_loss < loss[best_net] else 'does NOT beat it'}"
    )
    results = dict(
        world=dict(world, n_test=0, random_state=args.seed),
        rows=len(Y),
        cv=f"DrugMultilabelStratifiedKFold({args.folds}, random_state={args.seed})",
        inner_folds=args.inner_folds,
        keras_tabnet_epochs=args.epochs,
        metric="mean columnwise log loss over all rows (controls included)",
        table=table,
        best_net=best_net,
        blend_beats_best_net=bool(blend_loss < loss[best_net]),
        blend_weights=[i["weights"] for i in infos],
        fold_scores=[
            {"StackingBlend (the recipe)": i["score"]}
            | {labels[n]: v for n, v in i["model_scores"].items()}
            for i in infos
        ],
        fold_fit_seconds=[i["fit_seconds"] for i in infos],
        pipeline_cv_seconds=seconds["StackingBlend (the recipe)"],
        this_run_blend_seconds=blend_seconds,
    )
    _common.save("quality", results, args.outdir)
    plot(results, args.outdir)


def plot(results, outdir=None):
    """Horizontal bars of the CV loss, with the prior and the Bayes optimum."""
    plt = _common.pyplot()
    table = results["table"]
    names = [k for k in table if k not in ("constant prior", "Bayes optimum")]
    names.sort(key=lambda k: -table[k]["loss"])
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(names) + 1.4))
    colors = ["#C44E52" if k.startswith("StackingBlend") else "#4C72B0" for k in names]
    ax.barh(names, [table[k]["loss"] for k in names], color=colors)
    for k in names:
        ax.text(
            table[k]["loss"],
            names.index(k),
            f" {table[k]['loss']:.5f} ({table[k]['gap_closed']:.2f} of gap)",
            va="center",
            fontsize=8,
        )
    for key, style in (("constant prior", "--"), ("Bayes optimum", ":")):
        ax.axvline(table[key]["loss"], color="k", ls=style, lw=1, label=key)
    ax.set_xlim(0, max(table[k]["loss"] for k in table) * 1.35)
    ax.set_xlabel(
        "mean columnwise log loss, out of fold over all rows (lower is better)"
    )
    ax.set_title(f"{results['cv']}, {results['rows']:,} rows", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    _common.savefig(fig, "quality", outdir)


if __name__ == "__main__":
    main()
