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

    python benchmarks/studies/bench_twostep_quality.py

A tiny smoke run::

    python benchmarks/studies/bench_twostep_quality.py --n-samples 1200 --n-genes 40 \\
        --n-cells 10 --n-scored 12 --n-nonscored 20 --folds 3 --epochs 2 \\
        --hidden 64 32 --skip-mlp
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402
from _nets import make_net  # noqa: E402

CONFIGS = {
    "aux": dict(pretrain=True, use_aux=True),
    "y-only": dict(pretrain=True, use_aux=False),
    "no-pretrain": dict(pretrain=False, use_aux=False),
}


def parse_args(argv):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, columns=True, signal=1.3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--n-seeds", type=int, default=1, help="net seeds averaged")
    parser.add_argument("--epochs", type=int, default=24, help="epochs per step")
    parser.add_argument("--hidden", type=int, nargs="+", default=None)
    parser.add_argument(
        "--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS)
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"]
    )
    parser.add_argument("--skip-mlp", action="store_true")
    _common.add_run_arguments(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from moa_sklearn.neural._torch_utils import bf16_supported

    if "bf16" in args.precisions and not bf16_supported("cpu"):
        print("bf16: unavailable (no native bf16 on this machine); fp32 only")
        args.precisions = [p for p in args.precisions if p != "bf16"] or ["fp32"]
    world = _common.make_world(
        args,
        n_test=max(10, args.n_samples // 20),
        **(_common.EARLIER_WORLD | {"signal": args.signal}),
    )
    folds = _common.drug_folds(world, args.folds, args.seed)
    about = f"{args.n_scored} scored + {args.n_nonscored} nonscored targets"
    table = _common.cv_table(world, folds, models(args, world), about, 44)
    for name in args.configs:
        a = table.get(f"TwoStepNet {name} fp32", {}).get("loss")
        b = table.get(f"TwoStepNet {name} bf16", {}).get("loss")
        if a and b:
            print(f"bf16 vs fp32 ({name}): {100 * (b - a) / a:+.2f}% log loss")


def models(args, world):
    """name -> (a fresh pipeline, its fit parameters on a training part)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.preprocessing import make_moa_features

    groups, Y_aux = world.groups.to_numpy(), world.target_aux.to_numpy()
    features = _common.small_features(args.n_genes, args.n_cells)

    def net(precision, pretrain):
        kw = dict(pretrain=pretrain, n_seeds=args.n_seeds, precision=precision)
        if args.hidden:
            kw.update(hidden_sizes=tuple(args.hidden), dropouts=0.25)
        return make_net("twostep", args).set_params(**kw)

    out = {}
    if not args.skip_mlp:
        out["MLPClassifier (stock, early stopping)"] = (
            lambda: make_pipeline(
                make_moa_features(random_state=args.seed, **features),
                MLPClassifier(early_stopping=True, random_state=args.seed),
            ),
            None,
        )
    for name in args.configs:
        for precision in args.precisions:
            cfg = CONFIGS[name]
            out[f"TwoStepNet {name} {precision}"] = (
                lambda p=precision, c=cfg: make_pipeline(
                    make_moa_features(random_state=args.seed, **features),
                    net(p, c["pretrain"]),
                ),
                _common.routed(groups, Y_aux if cfg["use_aux"] else None),
            )
    return out


if __name__ == "__main__":
    main()
