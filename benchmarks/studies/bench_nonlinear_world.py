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

Run: python benchmarks/studies/bench_nonlinear_world.py [--n-samples 6000]
"""

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/
import _common  # noqa: E402

# the worlds: make_moa's defaults, then each effect, then all three
SETTINGS = [
    {},
    dict(opposed_modes=1.0),
    dict(variance_effect=1.5),
    dict(time_interaction=1.0),
    dict(opposed_modes=0.7, variance_effect=1.0, time_interaction=0.7),
]
SIZES = dict(n_genes=60, n_cells=20, n_scored=8, n_nonscored=8)


def main(argv=None):
    parser = _common.parser(__doc__)
    _common.add_world_arguments(parser, n_samples=6000)
    parser.set_defaults(seed=1)
    args = parser.parse_args(argv)
    for effects in SETTINGS:
        t0 = time.perf_counter()
        world = _common.make_world(
            args, n_test=args.n_samples, **SIZES, **(_common.EARLIER_WORLD | effects)
        )
        gap, bayes_mean, rate = gap_closed(world)
        name = ", ".join(f"{k}={v}" for k, v in effects.items()) or "default"
        print(
            f"{name:62s} prior {gap['prior']:.4f} Bayes {gap['bayes']:.4f} | gap "
            f"closed: logistic {gap['lr']:.2f}, MLP {gap['mlp']:.2f} | Bayes mean "
            f"{bayes_mean:.4f} vs rate {rate:.4f} | "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )


def design(frame, qt, fit=False):
    """RankGauss of the g- and c- columns, and cp_time / cp_dose / cp_type one-hots."""
    cols = [c for c in frame.columns if c[:2] in ("g-", "c-")]
    gc = qt.fit_transform(frame[cols]) if fit else qt.transform(frame[cols])
    one_hots = [frame.cp_time == 24, frame.cp_time == 48, frame.cp_dose == "D1"]
    one_hots.append(frame.cp_type == "ctl_vehicle")
    return np.hstack([gc, np.column_stack(one_hots).astype(float)])


def gap_closed(world):
    """The prior's and Bayes' losses, the share of the gap each model closes,
    the mean Bayes probability and the observed rate of positives."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import QuantileTransformer

    from moa_sklearn.metrics import mean_columnwise_log_loss

    qt = QuantileTransformer(n_quantiles=100, output_distribution="normal")
    A, B = design(world.data, qt, fit=True), design(world.test_data, qt)
    Y, Yt = world.target.to_numpy(), world.test_target.to_numpy()
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
    bayes = world.test_bayes_proba.to_numpy()
    losses = {
        k: mean_columnwise_log_loss(Yt, np.clip(p, 1e-4, 1 - 1e-4))
        for k, p in dict(prior=np.tile(Y.mean(0), (len(Yt), 1)), lr=lr, mlp=mlp).items()
    }
    prior, best = losses["prior"], mean_columnwise_log_loss(Yt, bayes)
    gap = {k: (prior - losses[k]) / (prior - best) for k in ("lr", "mlp")}
    return dict(prior=prior, bayes=best, **gap), bayes.mean(), Yt.mean()


if __name__ == "__main__":
    main()
