"""
==========================================================
The lish-moa feature recipe under drug-grouped CV and tuning
==========================================================

``make_moa_features`` is the public lish-moa feature recipe as one scikit-learn
``Pipeline``: one-hot ``cp_*`` columns, RankGauss, PCA components of the genes
and cells, variance selection, KMeans cluster one-hots and row statistics. As
an ordinary transformer it sits in front of any classifier, is refitted inside
every fold of a drug-grouped cross-validation (nothing is learnt from the test
fold), and its steps' parameters are tuned with ``GridSearchCV``.

This example uses a small ``make_moa`` world (same layout as lish-moa, fewer
rows and columns) so that it runs in about a minute on two cores.

Run: python examples/plot_features_cv.py [--n-samples 1500] [--folds 5]
[--save grid.png] (``--save`` writes the figure to a file instead of showing
it).
"""

# %%
# A small lish-moa-like world
# ---------------------------
import argparse
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import mean_columnwise_log_loss, neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.preprocessing import make_moa_features

warnings.filterwarnings("ignore", category=ConvergenceWarning)

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[1])
parser.add_argument("--n-samples", type=int, default=1500, help="training rows")
parser.add_argument("--folds", type=int, default=5, help="folds of the CV")
parser.add_argument("--save", help="write the figure to this file, do not show it")
args = parser.parse_args()

world = make_moa(
    args.n_samples, n_test=300, n_genes=200, n_cells=40, n_scored=40, random_state=0
)
X, Y, drugs = world.data, world.target, world.groups
print(f"X {X.shape}, Y {Y.shape}, {drugs.nunique()} drugs")

# %%
# The recipe as one transformer
# -----------------------------
# Smaller PCA / KMeans sizes than the recipe's 600 / 50 components and 22 / 4
# clusters, since this world has 200 genes and 40 cells.
features = make_moa_features(
    n_components={"g": 50, "c": 10}, n_clusters={"g": 8, "c": 4}, random_state=0
)
Xt = features.fit_transform(X)
print(f"{X.shape[1]} columns -> {Xt.shape[1]}")
for name, step in features.named_steps.items():
    print(f"  after {name:<10} {len(step.get_feature_names_out()):>4} columns")
print("cp_type one-hot columns:", [c for c in Xt.columns if c.startswith("cp_type")])


# %%
# Drug-grouped cross-validation
# -----------------------------
# The features are refitted on the training part of each fold. Scores are the
# competition metric (all rows), negated as scikit-learn scorers are. The
# constant prior, fitted in the same folds, is the landmark to beat; on so few
# rows a stock MLP only just beats it (on lish-moa-sized data the gap is wide).
def make_mlp():
    return MLPClassifier(
        hidden_layer_sizes=(64,), alpha=1.0, max_iter=30, random_state=0
    )


model = make_pipeline(features, StandardScaler(), make_mlp())
cv = DrugMultilabelStratifiedKFold(n_splits=args.folds, random_state=0)
scores = cross_val_score(
    model, X, Y, groups=drugs, cv=cv, scoring=neg_mean_columnwise_log_loss
)
prior_losses = []
for train, test in cv.split(X, Y, groups=drugs):
    prior = np.clip(Y.iloc[train].mean().to_numpy(), 1e-4, 1 - 1e-4)
    proba = np.tile(prior, (len(test), 1))
    prior_losses.append(mean_columnwise_log_loss(Y.iloc[test], proba))
print(f"MLP on the recipe: {-scores.mean():.4f} +/- {scores.std():.4f} log loss")
print(f"constant prior:    {np.mean(prior_losses):.4f}")

# %%
# Tuning two steps at once
# ------------------------
# Each step is reachable as ``<pipeline step>__<recipe step>__<parameter>``:
# here the PCA sizes and the number of KMeans clusters.
search = GridSearchCV(
    Pipeline(
        [
            ("features", features),
            ("scale", StandardScaler()),
            ("mlp", make_mlp()),
        ]
    ),
    param_grid={
        "features__pca__n_components": [{"g": 10, "c": 5}, {"g": 50, "c": 10}],
        "features__kmeans__n_clusters": [{"g": 4, "c": 2}, {"g": 16, "c": 4}],
    },
    cv=DrugMultilabelStratifiedKFold(n_splits=3, random_state=0),
    scoring=neg_mean_columnwise_log_loss,
)
search.fit(X, Y, groups=drugs)
results = pd.DataFrame(
    {
        "pca": [
            str(p) for p in search.cv_results_["param_features__pca__n_components"]
        ],
        "kmeans": [
            str(p) for p in search.cv_results_["param_features__kmeans__n_clusters"]
        ],
        "log loss": -search.cv_results_["mean_test_score"],
    }
)
print(results.to_string(index=False))
print("best:", search.best_params_)
test_loss = mean_columnwise_log_loss(
    world.test_target, search.predict_proba(world.test_data)
)
print(f"best model on the held-out test drugs: {test_loss:.4f}")

# %%
# Plot the grid (when matplotlib is installed)
# --------------------------------------------
try:
    import matplotlib.pyplot as plt
except ImportError:
    plt = None
if plt is not None:
    fig, ax = plt.subplots(figsize=(6, 3))
    labels = [f"pca {p}\nkmeans {k}" for p, k in zip(results.pca, results.kmeans)]
    ax.barh(labels, results["log loss"])
    ax.set_xlabel("mean columnwise log loss (3-fold drug CV)")
    ax.set_xlim(results["log loss"].min() * 0.95, results["log loss"].max() * 1.02)
    fig.tight_layout()
    if args.save:
        fig.savefig(args.save)
    else:
        plt.show()
