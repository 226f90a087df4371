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
BLEND = "StackingBlend (the recipe)"
LABELS = {
    "twostep": "TwoStepNetClassifier",
    "keras": "KerasNetClassifier",
    "tabnet": "TabNetMultilabelClassifier",
}
# --small: a tiny world, features and nets (a smoke run of the whole
# benchmark); the nets' epochs come from --epochs, as every net's
SMALL_WORLD = dict(n_samples=600, n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)
SMALL_FEATURES = dict(n_components={"g": 6, "c": 3}, n_clusters={"g": 3, "c": 2})
SMALL_NETS = {
    "twostep": dict(hidden_sizes=[16], dropouts=0.1, unfreeze_every=1, batch_size=64),
    "keras": dict(hidden_sizes=[16], dropouts=0.1, batch_size=64),
    "tabnet": dict(n_d=8, n_a=8, batch_size=64, virtual_batch_size=16),
}


def parse_args(argv):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--inner-folds", type=int, default=2)
    parser.add_argument(
        "--epochs", type=int, default=24, help="Keras and TabNet (--small: all nets)"
    )
    parser.add_argument("--skip-stock", action="store_true")
    parser.add_argument(
        "--workdir", default="benchmarks/work", help="the world and the blend's CV"
    )
    _common.add_run_arguments(parser, small="smoke run", outdir=True)
    return parser.parse_args(argv)


def write_world(args, world_dir):
    """``moa-sklearn make-data`` of the world (unless written already)."""
    from moa_sklearn import cli

    world = dict(SMALL_WORLD) if args.small else dict(n_samples=args.n_samples)
    if not (world_dir / "train_features.csv").is_file():
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in world.items()]
        cli.main(
            ["make-data", str(world_dir), *flags, "--n-test=0", f"--seed={args.seed}"]
        )
    return dict(world, n_test=0, random_state=args.seed)


def blend_cv(args, world_dir, cv_dir):
    """``moa-sklearn cv`` of the full pipeline (resumes a finished part)."""
    from moa_sklearn import cli

    small = SMALL_NETS if args.small else {}
    nets = _common.net_params(
        args.epochs, args.threads, twostep_epochs=args.epochs if args.small else None
    )
    config = dict(
        profile="quick" if args.small else "full",
        models=list(LABELS),
        seed=args.seed,
        folds=args.folds,
        protocol="kaggle",  # the documented figures' scheme (large drugs by row)
        inner_folds=args.inner_folds,
        feature_params=SMALL_FEATURES if args.small else {},
        model_params={k: {**small.get(k, {}), **v} for k, v in nets.items()},
    )
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
        # a small world: fewer components than the recipe
        kw = SMALL_FEATURES if n_features < 600 else {}
        return make_pipeline(
            make_moa_features(random_state=seed, **kw),
            MLPClassifier(early_stopping=True, random_state=seed),
        )

    return {
        "RankGauss + PCA + logistic regression": lr,
        "MLPClassifier": mlp,
    }


def stock_predictions(X, Y, folds, seed):
    """Out-of-fold predictions (clipped) and seconds of each stock model."""
    from moa_sklearn.metrics import mean_columnwise_log_loss, multilabel_proba

    predictions, seconds = {}, {}
    for name, make in stock_models(seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant labels in a fold
            P, seconds[name] = _common.oof_predictions(
                lambda make=make: make(X.shape[1]),
                X,
                Y,
                folds,
                predict=multilabel_proba,
            )
        predictions[name] = np.clip(P, *CLIP)
        print(f"{name}: {mean_columnwise_log_loss(Y, predictions[name]):.5f}")
    return predictions, seconds


def main(argv=None):
    args = parse_args(argv)

    from moa_sklearn.datasets import load_moa

    _common.threads(args.threads)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    world_dir, cv_dir = work / "world", work / "blend_cv"
    world = write_world(args, world_dir)
    blend_seconds = blend_cv(args, world_dir, cv_dir)

    moa = load_moa(world_dir)
    X, Y = moa.data, moa.target.to_numpy()
    oof, infos = read_cv(cv_dir, Y.shape)
    folds = _common.drug_folds(moa, args.folds, args.seed)
    prior = _common.oof_prior(Y, _common.treated(X), folds)
    predictions = {"constant prior": np.clip(prior, 1e-5, 1 - 1e-5)}
    seconds = {}
    if not args.skip_stock:
        stock, seconds = stock_predictions(X, Y, folds, args.seed)
        predictions.update(stock)
    names = list(infos[0]["model_scores"])
    labels = {n: LABELS.get(n, n) for n in names}
    for name in names:
        predictions[labels[name]] = oof[name]
    predictions[BLEND] = oof["blend"]
    predictions["Bayes optimum"] = oof["bayes"]
    seconds[BLEND] = sum(i["fit_seconds"] for i in infos)

    table = _common.score_table(Y, predictions, seconds)
    _common.print_table(table)
    best_net = min(labels.values(), key=lambda k: table[k]["loss"])
    blend_loss, net_loss = table[BLEND]["loss"], table[best_net]["loss"]
    print(
        f"blend {blend_loss:.5f} vs best net ({best_net}) {net_loss:.5f}: "
        f"{'beats it' if blend_loss < net_loss else 'does NOT beat it'}"
    )
    results = dict(
        world=world,
        rows=len(Y),
        cv=f"DrugMultilabelStratifiedKFold({args.folds}, random_state={args.seed})",
        inner_folds=args.inner_folds,
        keras_tabnet_epochs=args.epochs,
        metric="mean columnwise log loss over all rows (controls included)",
        table=table,
        best_net=best_net,
        blend_beats_best_net=bool(blend_loss < net_loss),
        blend_weights=[i["weights"] for i in infos],
        fold_scores=[
            {BLEND: i["score"]} | {labels[n]: v for n, v in i["model_scores"].items()}
            for i in infos
        ],
        fold_fit_seconds=[i["fit_seconds"] for i in infos],
        pipeline_cv_seconds=seconds[BLEND],
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
