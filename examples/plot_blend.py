"""
==========================================================
The whole recipe: features, control rows and a blend of nets
==========================================================

``make_moa_pipeline`` builds the seed's full system as one scikit-learn
estimator: a ``ControlVehicleClassifier``, which recognises the control
(``cp_type == "ctl_vehicle"``) rows on the raw frame and predicts the floor
probability for them, around a ``Pipeline`` that sees the treated rows only:

- ``features``: ``make_moa_features`` (RankGauss, PCA, variance selection,
  KMeans, row statistics);
- ``model``: a ``StackingBlend`` of the two-step PyTorch net, the Keras net
  and TabNet, whose weights are chosen on out-of-fold predictions of a
  drug-grouped inner CV to minimise the competition metric.

With metadata routing on, the drug ids (``groups``) reach the outer and the
inner splitters and the nets' inner validation, and the nonscored targets
(``y_aux``) reach the nets (the two-step net pretrains on them).

The ``quick`` profile (small nets, few epochs) and a small ``make_moa`` world
keep this example to a couple of minutes on two CPU cores; ``profile="full"``
is the recipe, for a GPU and the real data.

Run: python examples/plot_blend.py [--n-samples 1500] [--folds 3]
[--inner-folds 3] [--models twostep keras tabnet] [--save weights.png]
(``--save`` writes the figure to a file instead of showing it).
"""

# %%
# A small lish-moa-like world, with its Bayes-optimal loss
# --------------------------------------------------------
import argparse
import time
import warnings

import numpy as np
import sklearn
from sklearn.model_selection import cross_validate

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import mean_columnwise_log_loss, neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.recipes import make_moa_pipeline

warnings.filterwarnings("ignore", category=UserWarning)

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[1])
parser.add_argument("--n-samples", type=int, default=1500, help="training rows")
parser.add_argument("--folds", type=int, default=3, help="folds of the outer CV")
parser.add_argument(
    "--inner-folds", type=int, default=None, help="folds of the blend's inner CV"
)
parser.add_argument(
    "--models", nargs="+", default="auto", help="nets of the blend (default: auto)"
)
parser.add_argument("--save", help="write the figure to this file, do not show it")
args = parser.parse_args()

# routing must be on before the pipeline is built: the factory then requests
# y_aux and groups in the nets' fit
sklearn.set_config(enable_metadata_routing=True)

world = make_moa(
    args.n_samples,
    n_test=0,
    n_genes=120,
    n_cells=30,
    n_scored=30,
    n_nonscored=40,
    random_state=0,
)
X, Y, Y_aux, drugs = world.data, world.target, world.target_aux, world.groups
prior = np.clip(Y.mean().to_numpy(), 5e-4, 1 - 5e-4)
print(f"X {X.shape}, Y {Y.shape}, Y_aux {Y_aux.shape}, {drugs.nunique()} drugs")
print(f"constant prior (in-sample) {mean_columnwise_log_loss(Y, 0 * Y + prior):.5f}")
print(
    f"Bayes optimum              {mean_columnwise_log_loss(Y, world.bayes_proba):.5f}"
)

# %%
# The pipeline
# ------------
# ``models="auto"`` takes the nets whose engine is installed.
pipe = make_moa_pipeline(
    args.models,
    profile="quick",
    random_state=0,
    cv=args.inner_folds,
    feature_params=dict(n_components={"g": 40, "c": 10}, n_clusters={"g": 6, "c": 2}),
)
blend = pipe.estimator.named_steps["model"]
print(
    "steps:",
    list(pipe.estimator.named_steps),
    "| models:",
    [n for n, _ in blend.estimators],
)

# %%
# Drug-grouped cross-validation of the whole system
# -------------------------------------------------
# Everything (features, inner CV, blend weights, nets) is refitted on the
# training part of each outer fold.
t0 = time.perf_counter()
result = cross_validate(
    pipe,
    X,
    Y,
    cv=DrugMultilabelStratifiedKFold(args.folds, random_state=0),
    scoring=neg_mean_columnwise_log_loss,
    params={"groups": drugs, "y_aux": Y_aux},
    return_estimator=True,
)
scores = -result["test_score"]
print(
    f"blend, drug-grouped {args.folds}-fold CV: {scores.mean():.5f} "
    f"(folds {np.round(scores, 5).tolist()}, {time.perf_counter() - t0:.0f} s)"
)

# %%
# Inside the blend of each fold: weights and out-of-fold losses
# -------------------------------------------------------------
# The weights are non-negative and sum to 1; by construction the blend's
# out-of-fold loss (on the treated rows of the outer training part) is at most
# the best single net's.
for k, fitted in enumerate(result["estimator"]):
    blend = fitted.estimator_.named_steps["model"]
    weights = {
        n: round(float(w), 3) for n, w in zip(blend.named_estimators_, blend.weights_)
    }
    oof = {name: round(loss, 5) for name, loss in blend.oof_scores_.items()}
    print(f"fold {k}: weights {weights}")
    print(f"        OOF losses {oof} -> blend {blend.oof_score_:.5f}")

# %%
# Plot the weights (when matplotlib is installed)
# -----------------------------------------------
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    names = list(result["estimator"][0].estimator_["model"].named_estimators_)
    W = np.array([f.estimator_["model"].weights_ for f in result["estimator"]])
    fig, ax = plt.subplots(figsize=(5, 3))
    width = 0.8 / len(W)
    for k, w in enumerate(W):
        ax.bar(np.arange(len(names)) + width * k, w, width=width, label=f"fold {k}")
    ax.set_xticks(np.arange(len(names)) + width * (len(W) - 1) / 2, names)
    ax.set_ylabel("blend weight")
    ax.legend()
    fig.tight_layout()
    if args.save:
        fig.savefig(args.save)
    else:
        plt.show()

sklearn.set_config(enable_metadata_routing=False)
