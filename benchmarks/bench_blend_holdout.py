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

    python benchmarks/bench_blend_holdout.py --inner-folds 3 --epochs 24 --threads 1

A smoke run::

    python benchmarks/bench_blend_holdout.py --n-samples 1500 --n-test 400 \\
        --small --inner-folds 2 --epochs 2
"""

import argparse
import time

import numpy as np
import sklearn

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import mean_columnwise_log_loss
from moa_sklearn.recipes import make_moa_pipeline


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=23814)
    parser.add_argument("--n-test", type=int, default=3982)
    parser.add_argument("--inner-folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="quick profile")
    args = parser.parse_args()

    world = make_moa(args.n_samples, n_test=args.n_test, random_state=args.seed)
    sklearn.set_config(enable_metadata_routing=True)
    threads = {} if args.threads is None else {"n_threads": args.threads}
    model_params = {
        "twostep": dict(threads),
        "keras": {"max_epochs": args.epochs},
        "tabnet": {"max_epochs": args.epochs, **threads},
    }
    pipe = make_moa_pipeline(
        ["twostep", "keras", "tabnet"],
        profile="quick" if args.small else "full",
        cv=args.inner_folds,
        random_state=args.seed,
        model_params=model_params,
    )
    t0 = time.perf_counter()
    pipe.fit(world.data, world.target, groups=world.groups, y_aux=world.target_aux)
    fit_s = time.perf_counter() - t0

    Yt = world.test_target.to_numpy()
    rows = {"blend": pipe.predict_proba(world.test_data)}
    treated = ~pipe.control_mask(world.test_data)
    features = pipe.estimator_["features"].transform(world.test_data[treated])
    blend = pipe.estimator_["model"]
    for name, est in blend.named_estimators_.items():
        p = np.full(Yt.shape, pipe.control_proba)
        p[treated] = est.predict_proba(features)
        rows[name] = p
    train_treated = (world.data["cp_type"] == "trt_cp").to_numpy()
    prior = np.tile(world.target.to_numpy()[train_treated].mean(0), (len(Yt), 1))
    prior[~treated] = 0
    rows["constant prior"] = np.clip(prior, 1e-5, 1 - 1e-5)
    rows["Bayes optimum"] = world.test_bayes_proba.to_numpy()

    loss = {k: mean_columnwise_log_loss(Yt, v) for k, v in rows.items()}
    print(
        f"make_moa({args.n_samples}, n_test={args.n_test}, random_state={args.seed})"
        f"; make_moa_pipeline(profile={'quick' if args.small else 'full'!r}, "
        f"inner folds {args.inner_folds}, Keras/TabNet epochs <= {args.epochs}); "
        f"fit {fit_s:.0f} s; mean columnwise log loss over the "
        f"{len(Yt)} test rows (unseen drugs, controls included)"
    )
    weights = {
        k: round(float(w), 3) for k, w in zip(blend.named_estimators_, blend.weights_)
    }
    print("blend weights:", weights)
    print("inner OOF scores:", {k: round(v, 5) for k, v in blend.oof_scores_.items()})
    prior_loss, bayes = loss["constant prior"], loss["Bayes optimum"]
    print(f"{'model':16s} {'loss':>8s} {'/prior':>7s} {'gap closed':>10s}")
    for name, value in loss.items():
        closed = (prior_loss - value) / (prior_loss - bayes)
        print(f"{name:16s} {value:8.5f} {value / prior_loss:7.3f} {closed:10.2f}")


if __name__ == "__main__":
    main()
