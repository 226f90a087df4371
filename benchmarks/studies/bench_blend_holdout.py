"""The whole recipe on a make_moa world: the blend against each of its nets.

Fits ``make_moa_pipeline(profile="full")`` (features -> control rows ->
``StackingBlend`` of the two-step net, the Keras net and TabNet, blend weights
chosen on a drug-grouped inner CV) on the training rows of a full-size
``make_moa`` world, with the drug ids and the nonscored targets routed, and
scores on its test rows (drugs not in the training rows):

- the blend, and each net as refitted inside the blend (same features, same
  control handling), so the comparison is like for like;
- the constant prior (treated-row prevalence of the training rows, controls 0);
- the world's Bayes-optimal probabilities.

Loss: mean columnwise log loss over all test rows (controls included).
``--epochs`` caps the Keras and TabNet epochs (their defaults: 35 with early
stopping, 200 with patience 20) to keep the CPU run in bounds; the two-step
net keeps the recipe's 24 + 24.

Run (about 30 minutes on one core)::

    python benchmarks/studies/bench_blend_holdout.py --inner-folds 3 --epochs 24 \\
        --threads 1

A smoke run::

    python benchmarks/studies/bench_blend_holdout.py --n-samples 1500 --n-test 400 \\
        --small --inner-folds 2 --epochs 2
"""

import sys
import time
from pathlib import Path

import numpy as np
import sklearn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402

from moa_sklearn.recipes import make_moa_pipeline  # noqa: E402


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, n_test=3982)
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=24)
    _common.add_run_arguments(parser, small="quick profile")
    args = parser.parse_args(argv)

    world = _common.make_world(args, **_common.EARLIER_WORLD)
    profile = "quick" if args.small else "full"
    sklearn.set_config(enable_metadata_routing=True)
    pipe = make_moa_pipeline(
        ["twostep", "keras", "tabnet"],
        profile=profile,
        cv=args.inner_folds,
        random_state=args.seed,
        model_params=_common.net_params(args.epochs, args.threads),
    )
    t0 = time.perf_counter()
    pipe.fit(world.data, world.target, groups=world.groups, y_aux=world.target_aux)
    fit_s = time.perf_counter() - t0

    Yt = world.test_target.to_numpy()
    predictions = {"blend": pipe.predict_proba(world.test_data), **nets(pipe, world)}
    prior = np.tile(
        world.target.to_numpy()[_common.treated(world.data)].mean(0), (len(Yt), 1)
    )
    prior[pipe.control_mask(world.test_data)] = 0  # controls: no MoA
    predictions["constant prior"] = np.clip(prior, 1e-5, 1 - 1e-5)
    predictions["Bayes optimum"] = world.test_bayes_proba.to_numpy()
    print(
        f"make_moa_pipeline(profile={profile!r}, inner folds {args.inner_folds}, "
        f"Keras/TabNet epochs <= {args.epochs}); fit {fit_s:.0f} s; mean columnwise "
        f"log loss over the {len(Yt)} test rows (unseen drugs, controls included)"
    )
    blend = pipe.estimator_["model"]
    weights = {
        k: round(float(w), 3) for k, w in zip(blend.named_estimators_, blend.weights_)
    }
    print("blend weights:", weights)
    print("inner OOF scores:", {k: round(v, 5) for k, v in blend.oof_scores_.items()})
    _common.print_table(_common.score_table(Yt, predictions), width=16)


def nets(pipe, world):
    """Each net as refitted inside the blend, on the test rows (controls floored):
    the pipeline's public per-model output, ``transform``."""
    names = list(pipe.estimator_["model"].named_estimators_)
    P = pipe.transform(world.test_data).reshape(len(world.test_data), len(names), -1)
    return {name: P[:, m] for m, name in enumerate(names)}


if __name__ == "__main__":
    main()
