"""The main job on built-in synthetic data: a world, a drug-grouped CV, the scores.

Generates a lish-moa-sized ``make_moa`` world (whose Bayes-optimal loss is
known), then runs a drug-grouped 5-fold cross-validation
(``DrugMultilabelStratifiedKFold``, Chris Deotte's scheme) scored with the
competition metric (mean columnwise log loss over all rows, controls
included) for:

- the constant prior (``DummyClassifier(strategy="prior")``, clipped to
  [0.0005, 0.9995] as the nets clip their predictions),
- a stock scikit-learn pipeline: RankGauss, PCA and a per-label logistic
  regression (clipped alike),
- the package's two-step PyTorch net on the package's feature recipe
  (``make_moa_features``), when torch is installed, with the nonscored
  targets routed to it for pretraining.

It prints each model's CV loss, its ratio to the prior and the fraction of
the prior-to-Bayes gap it closes. ``--n-samples`` makes a smaller, faster
world; ``--epochs`` sets the net's epochs per step.

Run: python examples/quickstart.py [--n-samples 23814] [--folds 5] [--epochs 12]
"""

import argparse
import time
import warnings

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_validate
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from moa_sklearn.datasets import make_moa
from moa_sklearn.metrics import (
    mean_columnwise_log_loss,
    multilabel_proba,
    neg_mean_columnwise_log_loss,
)
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.preprocessing import CategoricalEncoder, RankGauss, make_moa_features


class Clipped(ClassifierMixin, BaseEstimator):
    """P(label = 1) of a multilabel classifier, clipped as the nets clip theirs.

    DummyClassifier and OneVsRestClassifier predict exactly 0 for a label with
    no positive in the training folds (rare MoAs have one drug), which the
    metric punishes by -log(1e-15) per positive: clipping to [0.0005, 0.9995],
    as the nets do, makes the comparison fair.
    """

    def __init__(self, estimator, clip=(0.0005, 0.9995)):
        self.estimator = estimator
        self.clip = clip

    def fit(self, X, y, **fit_params):
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        return self

    def predict_proba(self, X):
        return np.clip(multilabel_proba(self.estimator_, X), *self.clip)

    def predict(self, X):
        return (self.predict_proba(X) > 0.5).astype(int)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0]
        + " With no option it runs a full-size CV (23,814 rows, 5 folds) of the "
        "prior, a stock pipeline and the two-step net (the net is fitted 5 "
        "times on about 19,000 rows: many minutes on a CPU); try "
        "--n-samples 3000 --folds 3 --epochs 4 first.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--n-samples",
        type=int,
        default=23814,
        metavar="N",
        help="training rows of the make_moa world (the default is lish-moa's size)",
    )
    parser.add_argument(
        "--folds", type=int, default=5, metavar="K", help="drug-grouped CV folds"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=12,
        metavar="E",
        help="epochs of each step of the two-step net (pretrain, fine-tune)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--skip-net",
        action="store_true",
        help="only the prior and the stock model (no torch needed, much faster)",
    )
    args = parser.parse_args()
    # groups reach the splitter and the net's inner split, y_aux the net
    sklearn.set_config(enable_metadata_routing=True)

    world = make_moa(n_samples=args.n_samples, n_test=0, random_state=args.seed)
    X, Y, Y_aux, drugs = world.data, world.target, world.target_aux, world.groups
    print(
        f"make_moa(n_samples={args.n_samples}, random_state={args.seed}): "
        f"X {X.shape}, Y {Y.shape}, Y_aux {Y_aux.shape}, {drugs.nunique()} drugs"
    )
    cv = DrugMultilabelStratifiedKFold(args.folds, random_state=args.seed)
    scoring = neg_mean_columnwise_log_loss

    def features(n_components):
        return make_moa_features(
            n_components={"g": n_components, "c": 20}, random_state=args.seed
        )

    models = {
        "constant prior": Clipped(DummyClassifier(strategy="prior")),
        "RankGauss + PCA(100) + logistic regression": make_pipeline(
            CategoricalEncoder(),
            RankGauss(),
            PCA(100, random_state=args.seed),
            Clipped(OneVsRestClassifier(LogisticRegression(C=0.01))),
        ),
    }
    try:
        if args.skip_net:
            raise ImportError("--skip-net")
        from moa_sklearn.neural import TwoStepNetClassifier

        net = TwoStepNetClassifier(
            hidden_sizes=(1024, 512),
            dropouts=(0.4, 0.3),
            max_epochs_pretrain=args.epochs,
            max_epochs_finetune=args.epochs,
            unfreeze_every=max(1, args.epochs // 3),
            precision="auto",
            random_state=args.seed,
        ).set_fit_request(y_aux=True, groups=True)
        models["features + two-step net (pretrained on y_aux)"] = make_pipeline(
            features(100), net
        )
    except ImportError as exc:
        print(f"(skipping the two-step net: {exc})")

    results = {}
    for name, model in models.items():
        t0 = time.perf_counter()
        params = {"groups": drugs}
        if "y_aux" in str(name):
            params["y_aux"] = Y_aux
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant labels in a fold, etc.
            scores = cross_validate(
                model,
                X,
                Y,
                cv=cv,
                scoring=scoring,
                params=params,
            )["test_score"]
        results[name] = -scores.mean()
        print(
            f"  {name}: {-scores.mean():.5f} (folds {np.round(-scores, 5).tolist()}, "
            f"{time.perf_counter() - t0:.0f} s)"
        )

    bayes = mean_columnwise_log_loss(Y, world.bayes_proba)
    prior = results["constant prior"]
    print(
        f"\nDrug-grouped {args.folds}-fold CV, mean columnwise log loss over all rows"
    )
    print(f"{'model':50s} {'loss':>8s} {'/prior':>7s} {'gap closed':>10s}")
    for name, loss in {**results, "Bayes optimum (truth of the world)": bayes}.items():
        closed = (prior - loss) / (prior - bayes)
        print(f"{name:50s} {loss:8.5f} {loss / prior:7.3f} {closed:10.2f}")


if __name__ == "__main__":
    main()
