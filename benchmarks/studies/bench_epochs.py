"""Where each net's inner validation loss bottoms out, at its defaults.

Evidence for the nets' epoch defaults (``max_epochs``, ``patience``). On a
``make_moa`` world (full size, the defaults), one training fold of the
new-compound protocol (``DrugMultilabelStratifiedKFold(--folds,
max_drug_size=None)``, fold ``--fold``), each net of ``--models`` is fitted
as inside the recipe: ``make_moa_features()`` then the net, on the treated
rows, with the drug ids routed (inner validation on held-out drugs) and the
nonscored targets routed to the two-step net. ``--max-epochs`` and
``--patience`` override the Keras net's and TabNet's (default: theirs).

Per net (and step): epochs run, the best epoch (lowest inner validation
loss), that loss, the lowest loss within the first E epochs for a few caps E
(what a cap of E epochs would have kept), seconds per epoch, and the test
fold's mean columnwise log loss over its treated rows. Output in
``benchmarks/results/epochs.txt``::

    python benchmarks/studies/bench_epochs.py --models tabnet --threads 2

A smoke run (seconds)::

    python benchmarks/studies/bench_epochs.py --small --n-samples 600
"""

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402
from _nets import make_net  # noqa: E402

MODELS = ("tabnet", "keras", "twostep")
CAPS = (10, 20, 24, 30, 40, 60, 80, 100, 150, 200)


def curves(history):
    """Per step: (epochs, validation losses, seconds per epoch) of seed 0."""
    out = {}
    for r in history:
        if r.get("seed", 0) != 0 or r.get("valid_loss") is None:
            continue
        step = r.get("step") or "fit"
        out.setdefault(step, []).append((r["valid_loss"], r.get("dur")))
    return {
        step: (
            np.array([v for v, _ in rows]),
            np.nanmedian([np.nan if s is None else s for _, s in rows]),
        )
        for step, rows in out.items()
    }


def study(name, X, Y, Y_aux, groups, train, test, args):
    from sklearn.pipeline import make_pipeline

    from moa_sklearn.metrics import mean_columnwise_log_loss
    from moa_sklearn.preprocessing import make_moa_features

    net = make_net(name, args)
    if name != "twostep":
        if args.max_epochs is not None:
            net.set_params(max_epochs=args.max_epochs)
        if args.patience is not None:
            net.set_params(patience=args.patience or None)
    columns = [str(c)[:2] for c in X.columns]
    features = {}
    if args.small:
        features = _common.small_features(columns.count("g-"), columns.count("c-"))
    pipe = make_pipeline(make_moa_features(random_state=args.seed, **features), net)
    treated = _common.treated(X)
    fit, held = train[treated[train]], test[treated[test]]
    params = {f"{pipe.steps[-1][0]}__groups": groups[fit]}
    if name == "twostep":
        params[f"{pipe.steps[-1][0]}__y_aux"] = Y_aux[fit]
    t0 = time.perf_counter()
    pipe.fit(X.iloc[fit], Y[fit], **params)
    seconds = time.perf_counter() - t0
    test_loss = mean_columnwise_log_loss(Y[held], pipe.predict_proba(X.iloc[held]))
    print(f"== {name}: fit {seconds:.0f} s, test fold (treated rows) {test_loss:.5f}")
    for step, (valid, per_epoch) in curves(pipe[-1].history_).items():
        best = int(np.argmin(valid)) + 1
        caps = ", ".join(f"{c}: {valid[:c].min():.5f}" for c in CAPS if c < len(valid))
        print(
            f"  {step}: {len(valid)} epochs run ({per_epoch:.2f} s each), best "
            f"epoch {best} (valid {valid[best - 1]:.5f}); best within the first "
            f"E epochs: {caps or '-'}",
            flush=True,
        )


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, signal=True, effects=True)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--max-epochs", type=int, default=None)
    parser.add_argument("--patience", type=int, default=None, help="0: none")
    _common.add_run_arguments(parser, small="a tiny world and small nets")
    args = parser.parse_args(argv)
    args.epochs = 3 if args.small else None  # make_net's per-step epochs

    from moa_sklearn.model_selection import _protocol_splitter

    _common.threads(args.threads)
    world_kw = dict(n_test=0)
    if args.small:
        world_kw.update(n_genes=24, n_cells=8, n_scored=6, n_nonscored=5)
    world = _common.make_world(args, **world_kw)
    X, Y = world.data, world.target.to_numpy()
    groups, Y_aux = world.groups.to_numpy(), world.target_aux.to_numpy()
    cv = _protocol_splitter("new-compound", args.folds, args.seed)
    train, test = list(cv.split(X, Y, groups))[args.fold]
    print(f"{cv!r}, fold {args.fold}: {len(train)} training rows, {len(test)} test")
    for name in args.models:
        study(name, X, Y, Y_aux, groups, train, test, args)


if __name__ == "__main__":
    main()
