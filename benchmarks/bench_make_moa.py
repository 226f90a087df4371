"""Is make_moa a fair stand-in? Stock models on a make_moa world vs prior and Bayes.

On the real lish-moa data a logistic regression on RankGauss + PCA beats the
constant prior and the public recipe's net reaches ~0.75x the prior's loss
(0.0156 vs 0.0207, all-rows convention). This script fits, on the training
rows of a world, and scores on its test rows (drugs unseen in training):

- the constant prior (training prevalence),
- logistic regression (one per target) on RankGauss + PCA features,
- a one-hidden-layer MLPClassifier on the same features,
- the exact Bayes-optimal probabilities of the world.

All losses are the competition metric over all rows (controls included).

Run: python benchmarks/bench_make_moa.py [--signal 1.3] [--n-samples 23814]
"""

import argparse
import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import QuantileTransformer

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import mean_columnwise_log_loss


def features(train, test, n_components):
    cols = [c for c in train.columns if c[:2] in ("g-", "c-")]
    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    a, b = qt.fit_transform(train[cols]), qt.transform(test[cols])
    pca = PCA(n_components=n_components, random_state=0).fit(a)
    ctl_a = (train["cp_type"] == "ctl_vehicle").to_numpy()[:, None]
    ctl_b = (test["cp_type"] == "ctl_vehicle").to_numpy()[:, None]
    return np.hstack([pca.transform(a), ctl_a]), np.hstack([pca.transform(b), ctl_b])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signal", type=float, default=1.3)
    parser.add_argument("--n-samples", type=int, default=23814)
    parser.add_argument("--n-test", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-mlp", action="store_true")
    args = parser.parse_args()

    t0 = time.perf_counter()
    world = make_moa(
        args.n_samples, n_test=args.n_test, signal=args.signal, random_state=args.seed
    )
    print(f"make_moa: {time.perf_counter() - t0:.1f} s")
    Y, Yt = world.target.to_numpy(), world.test_target.to_numpy()
    ctl_t = (world.test_data["cp_type"] == "ctl_vehicle").to_numpy()
    Xa, Xb = features(world.data, world.test_data, 100)
    rows = {}
    prior = np.tile(Y[world.data["cp_type"] == "trt_cp"].mean(0), (len(Yt), 1))
    prior[ctl_t] = 0
    rows["constant prior (treated prevalence, controls 0)"] = prior
    rows["Bayes optimum"] = world.test_bayes_proba.to_numpy()

    t0 = time.perf_counter()
    lr = np.zeros_like(prior)
    for j in range(Y.shape[1]):
        if Y[:, j].min() == Y[:, j].max():
            continue
        m = LogisticRegression(C=0.01, max_iter=300).fit(Xa, Y[:, j])
        lr[:, j] = m.predict_proba(Xb)[:, 1]
    lr[ctl_t] = 0
    rows["logistic regression (C=0.01) on RankGauss + PCA(100)"] = lr
    print(f"logistic regression: {time.perf_counter() - t0:.1f} s")

    if not args.skip_mlp:
        t0 = time.perf_counter()
        mlp = MLPClassifier(
            (512,), alpha=1e-3, early_stopping=True, max_iter=60, random_state=0
        ).fit(Xa, Y)
        p = mlp.predict_proba(Xb)
        p[ctl_t] = 0
        rows["MLPClassifier(512) on RankGauss + PCA(100)"] = p
        print(f"MLP: {time.perf_counter() - t0:.1f} s")

    prior_loss = mean_columnwise_log_loss(Yt, np.clip(prior, 1e-5, 1 - 1e-5))
    bayes_loss = mean_columnwise_log_loss(Yt, rows["Bayes optimum"])
    print(
        f"\nmake_moa(n_samples={args.n_samples}, signal={args.signal}, "
        f"random_state={args.seed}); train rows -> {args.n_test} test rows of "
        "unseen drugs; mean columnwise log loss, all rows"
    )
    print(f"{'model':58s} {'loss':>8s} {'/prior':>7s} {'gap closed':>10s}")
    for name, p in rows.items():
        loss = mean_columnwise_log_loss(Yt, np.clip(p, 1e-5, 1 - 1e-5))
        closed = (prior_loss - loss) / (prior_loss - bayes_loss)
        print(f"{name:58s} {loss:8.5f} {loss / prior_loss:7.3f} {closed:10.2f}")


if __name__ == "__main__":
    main()
