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

    python benchmarks/studies/bench_keras_tabnet.py --part speed --n-samples 23814 \\
        --epochs 3
    python benchmarks/studies/bench_keras_tabnet.py --part cv

A tiny smoke run (seconds)::

    python benchmarks/studies/bench_keras_tabnet.py --n-samples 1200 --n-genes 40 \\
        --n-cells 10 --n-scored 12 --n-nonscored 20 --n-features 50 \\
        --folds 3 --epochs 2 --small

``--models`` picks the nets (``keras tabnet twostep``); ``--small`` swaps the
default architectures for small ones (for smoke runs). ``--epochs`` caps the
epochs of every net in the CV part (default: each net's own defaults, with
early stopping). Set ``KERAS_BACKEND`` to try another Keras backend.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402
from _nets import epoch_seconds, make_data, make_net  # noqa: E402

MODELS = ("keras", "tabnet", "twostep")


def speed(args):
    X, Y = make_data(args.n_samples, args.n_features, args.n_scored, args.seed)
    print(
        f"speed: X {X.shape}, Y {Y.shape} ({Y.mean():.2%} positives), "
        f"{args.epochs} epochs, 10% inner validation"
    )
    print(f"{'model':10s} {'epoch 1 s':>10s} {'later epochs s':>15s} {'fit s':>8s}")
    for name in args.models:
        net = make_net(name, args)
        if name in ("keras", "tabnet"):
            net.set_params(patience=None)  # every epoch runs
        t0 = time.perf_counter()
        net.fit(X, Y)
        total = time.perf_counter() - t0
        durations = epoch_seconds(net)
        later = np.median(durations[1:]) if len(durations) > 1 else float("nan")
        print(f"{name:10s} {durations[0]:10.2f} {later:15.2f} {total:8.1f}", flush=True)


def cv(args):
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.preprocessing import make_moa_features

    world = _common.make_world(args, n_test=0, **_common.EARLIER_WORLD)
    groups, Y_aux = world.groups.to_numpy(), world.target_aux.to_numpy()
    features = _common.small_features(args.n_genes, args.n_cells)

    def make(name):
        return lambda: make_pipeline(
            make_moa_features(random_state=args.seed, **features),
            make_net(name, args),
        )

    models = {  # the nonscored targets to the two-step net (pretraining)
        name: (make(name), _common.routed(groups, Y_aux if name == "twostep" else None))
        for name in args.models
    }
    folds = _common.drug_folds(world, args.folds, args.seed)
    _common.cv_table(world, folds, models, f"{args.n_scored} scored targets", 36)


def main(argv=None):
    parser = _common.parser(__doc__)
    parser.add_argument("--part", choices=["speed", "cv", "all"], default="all")
    _common.add_world_arguments(parser, columns=True)
    parser.add_argument(
        "--n-features", type=int, default=1239, help="width of X (speed part)"
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of every net (speed part: default 3; cv: the nets' defaults)",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    _common.add_run_arguments(parser, small="small architectures")
    args = parser.parse_args(argv)
    if args.part in ("speed", "all"):
        # the nets at torch's default threads, 3 epochs unless told
        speed(
            argparse.Namespace(
                **vars(args) | dict(epochs=args.epochs or 3, threads=None)
            )
        )
    if args.part in ("cv", "all"):
        cv(args)


if __name__ == "__main__":
    main()
