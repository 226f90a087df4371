"""SeedAveragingClassifier: the mean probabilities of one classifier's seeds."""

from numbers import Integral

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ._base import (
    _base_proba,
    _check_X,
    _own_threads,
    _quiet_worker_restarts,
    _sharing_cores,
    _threads_per_fit,
    _WrapsOneEstimator,
)


def _seeded_fit(estimator, keys, seed, X, y, params):
    est = clone(estimator).set_params(**{key: seed for key in keys})
    return est.fit(X, y, **params)


class SeedAveragingClassifier(
    _WrapsOneEstimator, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """Average the probabilities of one classifier fitted with several seeds.

    Every parameter named ``random_state`` in ``estimator`` (nested ones
    too, e.g. ``features__pca__random_state`` and ``net__random_state`` of a
    ``Pipeline``) is set to the seed of each copy, so the whole model, its
    feature steps included, varies with the seed. The package's nets also
    average seeds themselves (``n_seeds``); this wrapper does it for any
    classifier, e.g. a ``Pipeline`` or scikit-learn's ``MLPClassifier``, and
    can be a base estimator of :class:`StackingBlend`.

    Parameters
    ----------
    estimator : classifier
        With ``predict_proba`` and at least one ``random_state`` parameter.
    n_seeds : int, default=3
        Number of copies.
    random_state : int, RandomState instance or None, default=None
        Draws the seeds of the copies.
    n_jobs : int, default=None
        The copies are fitted in parallel with joblib. ``None`` means 1. In
        local processes, ``n_threads`` parameters of ``estimator`` left at
        None are set for the fits to the cores divided by the copies fitted
        at once, as :class:`StackingBlend` does; the fitted copies predict
        with every core.

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted copies.
    seeds_ : ndarray of shape (n_seeds,)
        Their seeds.
    classes_ : ndarray
        The classes (1-D ``y``) or ``arange(n_labels)`` (2-D ``y``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit`` (DataFrame input).

    See Also
    --------
    StackingBlend : Blend of different classifiers.

    Notes
    -----
    Fit metadata: with metadata routing enabled, ``estimator`` receives what
    it requests; otherwise every ``**fit_params`` goes to ``estimator.fit``.

    Examples
    --------
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from moa_sklearn.ensemble import SeedAveragingClassifier
    >>> X, Y = make_multilabel_classification(n_samples=60, n_classes=3,
    ...                                       random_state=0)
    >>> avg = SeedAveragingClassifier(
    ...     DecisionTreeClassifier(max_features=2, max_depth=3), n_seeds=4,
    ...     random_state=0).fit(X, Y)
    >>> avg.predict_proba(X).shape, len(set(avg.seeds_))
    ((60, 3), 4)
    """

    _parameter_constraints = {
        **_WrapsOneEstimator._parameter_constraints,
        "n_seeds": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [Integral, None],
    }

    def __init__(self, estimator, *, n_seeds=3, random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_seeds = n_seeds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _seed_keys(self):
        """The ``random_state`` parameters of ``estimator``, nested ones too."""
        keys = [
            key
            for key in self.estimator.get_params(deep=True)
            if key == "random_state" or key.endswith("__random_state")
        ]
        if not keys:
            raise ValueError(
                f"{type(self.estimator).__name__} has no random_state parameter: "
                "its copies would be identical."
            )
        return keys

    # the estimator validates its own parameters
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, **fit_params):
        """Fit ``n_seeds`` copies of ``estimator``, each with its own seed.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
        **fit_params : dict
            Fit metadata for ``estimator`` (see Notes of the class).

        Returns
        -------
        self : SeedAveragingClassifier
            The fitted meta-estimator.
        """
        keys = self._seed_keys()
        X, y, _ = self._read_fit_data(X, y)
        params = self._routed_fit_params(fit_params)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, np.iinfo(np.int32).max, size=self.n_seeds)
        # copies fitted side by side share the cores (see StackingBlend)
        n_threads = _threads_per_fit(self.n_jobs, len(seeds))
        estimator, thread_keys = _sharing_cores(self.estimator, n_threads)
        with _quiet_worker_restarts():
            fitted = Parallel(n_jobs=self.n_jobs)(
                delayed(_seeded_fit)(estimator, keys, int(seed), X, y, params)
                for seed in seeds
            )
        self.estimators_ = [_own_threads(e, thread_keys) for e in fitted]
        self.seeds_ = seeds
        self.classes_ = self._target.classes
        return self

    def predict_proba(self, X):
        """Mean probabilities of the copies.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            The mean over the copies, kept strictly inside (0, 1). For a 2-D
            ``y``: P(label = 1) of each label. For a 1-D ``y``: the
            probability of each class of ``classes_`` (rows sum to 1).
        """
        check_is_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False)
        proba = np.mean(
            [
                _base_proba(
                    e,
                    X,
                    self._target,
                    owner=type(self).__name__,
                    name=f"({type(e).__name__}) with seed {seed}",
                )
                for e, seed in zip(self.estimators_, self.seeds_)
            ],
            axis=0,
        )
        return self._target.proba(proba)
