"""How linear is a make_moa world? Linear vs non-linear models against Bayes.

On small worlds (fast: a minute on one core) with and without the non-linear
effects of ``make_moa`` (``opposed_modes``, ``variance_effect``,
``time_interaction``), fitted on the training rows and scored on the test
rows (drugs unseen in training):

- the constant prior (training prevalence),
- logistic regression (``C=0.05``) per target on RankGauss features +
  cp_time / cp_dose / cp_type one-hots,
- ``MLPClassifier((256,), alpha=1e-2, early_stopping=True)`` on the same,
- the exact Bayes-optimal probabilities.

Printed: the share of the prior-to-Bayes gap each model closes, and the mean
Bayes probability next to the observed rate (calibration). Metric: mean
columnwise log loss over all rows, predictions clipped to [1e-4, 1 - 1e-4].

Run: python benchmarks/bench_nonlinear_world.py [--n-samples 6000]
"""

import argparse
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import QuantileTransformer

    from moa_sklearn.datasets import make_moa
    from moa_sklearn.metrics import mean_columnwise_log_loss

    kw = dict(
        n_samples=args.n_samples,
        n_test=args.n_samples,
        n_genes=60,
        n_cells=20,
        n_scored=8,
        n_nonscored=8,
        random_state=args.seed,
    )
    settings = [
        {},
        dict(opposed_modes=1.0),
        dict(variance_effect=1.5),
        dict(time_interaction=1.0),
        dict(opposed_modes=0.7, variance_effect=1.0, time_interaction=0.7),
    ]
    print(f"make_moa({', '.join(f'{k}={v}' for k, v in kw.items())}, ...)")
    for effects in settings:
        t0 = time.perf_counter()
        w = make_moa(**kw, **effects)
        cols = [c for c in w.data.columns if c[:2] in ("g-", "c-")]
        qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")

        def design(d, fit=False, qt=qt, cols=cols):
            gc = qt.fit_transform(d[cols]) if fit else qt.transform(d[cols])
            one_hots = [d.cp_time == 24, d.cp_time == 48, d.cp_dose == "D1"]
            one_hots.append(d.cp_type == "ctl_vehicle")
            return np.hstack([gc, np.column_stack(one_hots).astype(float)])

        A, B = design(w.data, fit=True), design(w.test_data)
        Y, Yt = w.target.to_numpy(), w.test_target.to_numpy()
        lr = np.column_stack(
            [
                LogisticRegression(C=0.05, max_iter=500)
                .fit(A, Y[:, j])
                .predict_proba(B)[:, 1]
                for j in range(Y.shape[1])
            ]
        )
        mlp = MLPClassifier(
            (256,), alpha=1e-2, early_stopping=True, max_iter=200, random_state=0
        )
        mlp = mlp.fit(A, Y).predict_proba(B)
        bayes = w.test_bayes_proba.to_numpy()

        losses = {
            k: mean_columnwise_log_loss(Yt, np.clip(p, 1e-4, 1 - 1e-4))
            for k, p in dict(
                prior=np.tile(Y.mean(0), (len(Yt), 1)), lr=lr, mlp=mlp
            ).items()
        }
        prior, best = losses["prior"], mean_columnwise_log_loss(Yt, bayes)
        gap = {k: (prior - v) / (prior - best) for k, v in losses.items()}

        name = ", ".join(f"{k}={v}" for k, v in effects.items()) or "default"
        print(
            f"{name:62s} prior {prior:.4f} Bayes {best:.4f} | gap closed: "
            f"logistic {gap['lr']:.2f}, MLP {gap['mlp']:.2f} | Bayes mean "
            f"{bayes.mean():.4f} vs rate {Yt.mean():.4f} | "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
