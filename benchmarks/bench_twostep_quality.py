"""Drug-grouped CV of the two-step net on a make_moa world, against landmarks.

On a ``make_moa`` world, out-of-fold predictions of drug-grouped K-fold CV
(``DrugMultilabelStratifiedKFold``) for:

- the constant prior (treated-row prevalence of the training folds, controls 0);
- a stock ``MLPClassifier`` on the same features;
- ``make_pipeline(make_moa_features(), TwoStepNetClassifier(...))`` pretrained
  on ``y`` and the nonscored ``y_aux`` (the recipe), pretrained on ``y`` alone,
  and without pretraining, each with ``precision`` fp32 and/or bf16;

scored with the competition metric over all rows (controls included, the
net's raw output, no post-processing) next to the world's Bayes-optimal loss
(``world.bayes_proba``). "gap closed" is (prior - loss) / (prior - Bayes):
the target of the net is at least 0.5. The bf16 line says how far bf16
training is from fp32 (target: within 1%).

Full size (the lead's run, long on a laptop CPU: 5 folds x 2 steps x 24
epochs per net)::

    python benchmarks/bench_twostep_quality.py

A tiny smoke run::

    python benchmarks/bench_twostep_quality.py --n-samples 1200 --n-genes 40 \\
        --n-cells 10 --n-scored 12 --n-nonscored 20 --folds 3 --epochs 2 \\
        --hidden 64 32 --skip-mlp
"""

import argparse
import time

import numpy as np

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold

CONFIGS = {
    "aux": dict(pretrain=True, use_aux=True),
    "y-only": dict(pretrain=True, use_aux=False),
    "no-pretrain": dict(pretrain=False, use_aux=False),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=23814)
    parser.add_argument("--n-genes", type=int, default=772)
    parser.add_argument("--n-cells", type=int, default=100)
    parser.add_argument("--n-scored", type=int, default=206)
    parser.add_argument("--n-nonscored", type=int, default=402)
    parser.add_argument("--signal", type=float, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-seeds", type=int, default=1, help="net seeds averaged")
    parser.add_argument("--epochs", type=int, default=24, help="epochs per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=None)
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS)
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"]
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-mlp", action="store_true")
    args = parser.parse_args(argv)

    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.neural import TwoStepNetClassifier
    from moa_sklearn.preprocessing import make_moa_features

    world_kw = dict(
        n_test=max(10, args.n_samples // 20),
        n_genes=args.n_genes,
        n_cells=args.n_cells,
        n_scored=args.n_scored,
        n_nonscored=args.n_nonscored,
        random_state=args.seed,
    )
    if args.signal is not None:
        world_kw["signal"] = args.signal
    t0 = time.perf_counter()
    world = make_moa(args.n_samples, **world_kw)
    print(f"make_moa({args.n_samples}, {world_kw}): {time.perf_counter() - t0:.1f} s")
    X, Y, Y_aux = world.data, world.target.to_numpy(), world.target_aux.to_numpy()
    groups = world.groups.to_numpy()
    control = (X["cp_type"] == "ctl_vehicle").to_numpy()
    cv = DrugMultilabelStratifiedKFold(args.folds, random_state=args.seed)
    folds = list(cv.split(X, Y, groups))

    small_features = args.n_genes < 600 or args.n_cells < 50
    features_kw = {}
    if small_features:  # the recipe's 600 + 50 components need 772 + 100 columns
        features_kw = dict(
            n_components={
                "g": max(2, args.n_genes // 2),
                "c": max(2, args.n_cells // 2),
            },
            n_clusters={"g": 4, "c": 2},
        )

    def net(precision, pretrain):
        kw = dict(
            pretrain=pretrain,
            max_epochs_pretrain=args.epochs,
            max_epochs_finetune=args.epochs,
            n_seeds=args.n_seeds,
            precision=precision,
            n_threads=args.threads,
            random_state=args.seed,
        )
        if args.hidden:
            kw["hidden_sizes"] = tuple(args.hidden)
            kw["dropouts"] = 0.25
        return TwoStepNetClassifier(**kw)

    from moa_sklearn.neural._torch_utils import bf16_supported

    if "bf16" in args.precisions and not bf16_supported("cpu"):
        print("bf16: unavailable (no native bf16 on this machine); fp32 only")
        args.precisions = [p for p in args.precisions if p != "bf16"] or ["fp32"]
    models = {}
    if not args.skip_mlp:
        models["MLPClassifier (stock, early stopping)"] = (
            lambda: make_pipeline(
                make_moa_features(random_state=args.seed, **features_kw),
                MLPClassifier(early_stopping=True, random_state=args.seed),
            ),
            False,
        )
    for name in args.configs:
        for precision in args.precisions:
            cfg = CONFIGS[name]
            models[f"TwoStepNet {name} {precision}"] = (
                lambda p=precision, c=cfg: make_pipeline(
                    make_moa_features(random_state=args.seed, **features_kw),
                    net(p, c["pretrain"]),
                ),
                cfg["use_aux"],
            )

    oof = {"constant prior": np.zeros(Y.shape)}
    for train, test in folds:
        prior = Y[train][~control[train]].mean(axis=0)
        oof["constant prior"][test] = np.where(control[test, None], 0.0, prior)
    seconds = {}
    for name, (make, use_aux) in models.items():
        t0 = time.perf_counter()
        pred = np.zeros(Y.shape)
        for train, test in folds:
            model = make()
            params = {}
            if isinstance(model[-1], TwoStepNetClassifier):
                step = model.steps[-1][0]
                params[f"{step}__groups"] = groups[train]
                if use_aux:
                    params[f"{step}__y_aux"] = Y_aux[train]
            model.fit(X.iloc[train], Y[train], **params)
            pred[test] = model.predict_proba(X.iloc[test])
        seconds[name] = time.perf_counter() - t0
        oof[name] = pred
        print(f"{name}: {seconds[name]:.0f} s", flush=True)

    bayes = world.bayes_proba.to_numpy()
    eps = 1e-15
    prior_loss = mean_columnwise_log_loss(
        Y, np.clip(oof["constant prior"], 1e-5, 1 - 1e-5)
    )
    bayes_loss = mean_columnwise_log_loss(Y, bayes, eps=eps)
    print(
        f"\n{args.folds}-fold drug-grouped CV, out-of-fold mean columnwise log loss "
        f"over all {len(Y)} rows (controls included); {args.n_scored} scored + "
        f"{args.n_nonscored} nonscored targets"
    )
    print(f"{'model':44s} {'loss':>9s} {'/prior':>7s} {'gap closed':>11s} {'time':>7s}")
    rows = [("Bayes optimum (world.bayes_proba)", bayes)] + [
        (k, v) for k, v in oof.items()
    ]
    losses = {}
    for name, p in rows:
        p = np.clip(p, 1e-5, 1 - 1e-5) if name == "constant prior" else p
        loss = mean_columnwise_log_loss(Y, p, eps=eps)
        losses[name] = loss
        closed = (prior_loss - loss) / (prior_loss - bayes_loss)
        t = f"{seconds[name]:6.0f}s" if name in seconds else ""
        print(f"{name:44s} {loss:9.5f} {loss / prior_loss:7.3f} {closed:11.2f} {t:>7s}")
    for name in args.configs:
        a = losses.get(f"TwoStepNet {name} fp32")
        b = losses.get(f"TwoStepNet {name} bf16")
        if a and b:
            print(f"bf16 vs fp32 ({name}): {100 * (b - a) / a:+.2f}% log loss")


if __name__ == "__main__":
    main()
