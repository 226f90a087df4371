"""Blends of multilabel classifiers and the handling of control rows.

- :class:`StackingBlend`: out-of-fold predictions of several classifiers under
  a drug-grouped CV, blend weights chosen on them to minimise the competition
  metric, base classifiers refitted on all rows.
- :class:`ControlVehicleClassifier`: fits its classifier on treated rows only
  and predicts the floor probability for the control (``ctl_vehicle``) rows.
- :class:`SeedAveragingClassifier`: the mean probabilities of one classifier
  fitted with several seeds (any classifier, e.g. a ``Pipeline``).

scikit-learn's ``StackingClassifier`` cannot do the blend's job: with
multilabel targets its ``predict_proba`` returns P(label = 0), its default
final estimator rejects a 2-D ``y``, and ``groups`` never reach its inner CV.
"""

import numbers

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.utils import Bunch, _safe_indexing, check_random_state, get_tags
from sklearn.utils.metadata_routing import (
    UNUSED,
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_consistent_length,
    check_is_fitted,
    has_fit_parameter,
    validate_data,
)

from ..exceptions import _warn_without_groups
from ..metrics import _label_proba
from ..model_selection import DrugMultilabelStratifiedKFold
from ..utils._progress import progress_bar
from ..utils._validation import (
    _as_array,
    check_base_proba,
    check_classifier_target,
    check_n_samples,
    labels_from_proba,
)

__all__ = ["StackingBlend", "ControlVehicleClassifier", "SeedAveragingClassifier"]

# the competition's clipping of probabilities before the log
_EPS = 1e-15


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_target(y, owner):
    """Return ``(y, kind, Y, classes)`` for a classifier target.

    ``kind`` is ``"multilabel"`` (a 2-D 0/1 matrix, ``Y`` is that matrix as
    float) or ``"binary"`` / ``"multiclass"`` (1-D labels, ``Y`` one-hot over
    ``classes``). ``y`` is returned as given (a DataFrame keeps its names)
    unless a column vector of class labels had to be raveled.
    """
    kind, arr, classes, codes = check_classifier_target(y, owner)
    if not isinstance(y, (pd.DataFrame, pd.Series)) or arr.ndim != _as_array(y).ndim:
        y = arr
    if kind == "multilabel":
        return y, kind, arr.astype(np.float64), classes
    return y, kind, np.eye(classes.size)[codes], classes


def _aligned_proba(estimator, X, kind, classes, *, owner, name):
    """Probabilities of a fitted base estimator as (n, n_outputs).

    Multilabel: P(label = 1) per label (:func:`~moa_sklearn.metrics.
    multilabel_proba`). 1-D targets: the columns of the estimator's
    ``classes_`` placed at the meta-estimator's ``classes`` (0 for a class
    the estimator did not see in its training fold).

    This is where every base estimator's output enters a meta-estimator of
    this module: it is checked here, once (shape, NaN/inf, [0, 1]), and an
    error names ``owner`` (the meta-estimator) and ``name`` (the base).
    """
    n_samples = _num_samples(X)
    raw = estimator.predict_proba(X)
    if kind == "multilabel":
        try:
            proba = _label_proba(estimator, raw)
        except (ValueError, TypeError, IndexError):
            proba = raw  # the check below says what is wrong with it
        return check_base_proba(
            proba,
            n_samples=n_samples,
            n_outputs=classes.size,
            owner=owner,
            name=name,
        )
    est_classes = np.asarray(getattr(estimator, "classes_", classes))
    proba = check_base_proba(
        raw, n_samples=n_samples, n_outputs=est_classes.size, owner=owner, name=name
    )
    out = np.zeros((proba.shape[0], classes.size))
    pos = np.searchsorted(classes, est_classes)
    out[:, pos] = proba
    return out


def _check_X(estimator, X, reset):
    """Set or check ``n_features_in_`` / ``feature_names_in_`` of a meta-estimator.

    A DataFrame is passed through untouched (it may hold raw string columns for
    a ``Pipeline`` inside); other input is checked as a 2-D array (sparse
    allowed, any dtype, NaN left to the inner estimators).
    """
    if isinstance(X, pd.DataFrame):
        check_n_samples(X, type(estimator).__name__)
        validate_data(estimator, X, skip_check_array=True, reset=reset)
        return X
    return validate_data(
        estimator,
        X,
        reset=reset,
        accept_sparse=["csr", "csc"],
        dtype=None,
        ensure_all_finite=False,
    )


def _blend(P, W):
    """Blend (M, n, k) predictions with (k, M) weights into (n, k)."""
    return np.einsum("mnk,km->nk", P, W)


def _log_loss_and_grad(w, P, y, eps):
    """Mean binary log loss of ``w @ P`` (P: (M, N), y: (N,)) and its gradient."""
    p = np.clip(w @ P, eps, 1 - eps)
    loss = -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    dp = -(y / p - (1 - y) / (1 - p)) / y.size
    return loss, P @ dp


def _simplex_weights(P, y, eps):
    """Weights on the simplex that minimise the log loss of ``w @ P``.

    SLSQP with ``w >= 0`` and ``sum(w) == 1``, started at uniform weights; the
    objective is scaled by its value there so that the tolerance is relative.
    The result is compared with the uniform weights and with each single
    estimator (the vertices), and the best of them is returned, so the blend
    is never worse out of fold than the best base estimator.
    """
    M = P.shape[0]
    if M == 1:
        return np.ones(1)
    w0 = np.full(M, 1.0 / M)
    scale = max(_log_loss_and_grad(w0, P, y, eps)[0], 1e-12)

    def fun(w):
        loss, grad = _log_loss_and_grad(w, P, y, eps)
        return loss / scale, grad / scale

    result = minimize(
        fun,
        w0,
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * M,
        constraints=[
            {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(M)}
        ],
        options={"ftol": 1e-10, "maxiter": 200},
    )
    candidates = [w0, *np.eye(M)]
    w = np.clip(result.x, 0.0, None)
    if np.isfinite(w).all() and w.sum() > 0:
        candidates.insert(0, w / w.sum())
    # never worse than the uniform start or than any single base estimator
    losses = [fun(c)[0] for c in candidates]
    return candidates[int(np.argmin(losses))]


def _base_name(name, estimator):
    """A base estimator as the error messages name it."""
    return f"{name!r} ({type(estimator).__name__})"


def _fit_fold(estimator, X, y, train, test, params, kind, classes, name):
    """Fit a clone on ``train`` rows, return its probabilities on ``test`` rows."""
    est = clone(estimator)
    est.fit(
        _safe_indexing(X, train),
        _safe_indexing(y, train),
        **_check_method_params(X, params, indices=train),
    )
    return _aligned_proba(
        est,
        _safe_indexing(X, test),
        kind,
        classes,
        owner="StackingBlend",
        name=_base_name(name, est) + " on an inner CV fold",
    )


def _fit_all(estimator, X, y, params):
    return clone(estimator).fit(X, y, **params)


class StackingBlend(ClassifierMixin, MetaEstimatorMixin, _BaseComposition):
    """Blend of multilabel classifiers with weights fitted out of fold.

    ``fit`` computes the out-of-fold (OOF) probabilities of every base
    classifier under ``cv`` (drug-grouped by default, with ``groups`` and
    the other fit metadata, e.g. ``y_aux``, sliced per inner fold), chooses
    the blend weights on those OOF predictions to minimise the mean
    columnwise log loss (the lish-moa metric), then refits every base
    classifier on all the rows given to ``fit``. ``predict_proba`` is the
    weighted average of the refitted classifiers' probabilities.

    The weights are non-negative and sum to 1 (a point of the simplex), so the
    blend's OOF loss is never worse than the best base classifier's. They are
    found with SLSQP (``scipy.optimize``); probabilities are clipped to
    ``[1e-15, 1 - 1e-15]`` before the log, as in the competition.

    Parameters
    ----------
    estimators : list of (str, estimator)
        The base classifiers, each with ``predict_proba``. Any classifier
        works, including a seed-averaged one (e.g. a net with ``n_seeds=3``)
        or a ``Pipeline``. Their parameters are reachable as
        ``<name>__<param>`` (e.g. in ``GridSearchCV``).
    cv : int, cross-validation splitter or None, default=5
        The inner CV of the OOF predictions. An int ``k`` is
        ``DrugMultilabelStratifiedKFold(k, random_state=random_state)``, the
        drug-grouped splitter; without ``groups`` it treats each row as its
        own drug (the rows of one drug land on both sides, which leaks) and
        a :class:`~moa_sklearn.exceptions.DrugLeakageWarning` says how to
        pass them. Another splitter receives ``groups`` (or None) in
        ``split`` as is and must partition the rows (each row in one test
        fold). ``None``: no
        inner CV, with fixed ``weights`` (``'uniform'`` or an array): the
        base classifiers are only fitted once, on all rows, and the ``oof_*``
        attributes are None.
    weights : {'optimize', 'per_target', 'uniform'} or array-like, \
            default='optimize'
        ``'optimize'``: one weight per base classifier, minimising the OOF
        loss. ``'per_target'``: first the global weights, then weights per
        target (label) shrunk towards them by ``shrinkage``. ``'uniform'``:
        equal weights. An array of ``n_estimators`` non-negative numbers:
        fixed weights (normalised to sum to 1).
    shrinkage : float in [0, 1], default=0.5
        With ``weights='per_target'``: the weights of target ``j`` are
        ``shrinkage * global + (1 - shrinkage) * optimal_j`` (1 gives the
        global weights; 0 the unshrunk per-target optimum, which overfits
        rare targets).
    clip : tuple (low, high) or None, default=None
        Clip the blended probabilities (and the OOF predictions on which the
        weights are chosen) to ``[low, high]``. They are always kept in
        ``[1e-15, 1 - 1e-15]``.
    n_jobs : int, default=None
        Fits run in parallel with joblib (every fold of every base
        classifier, and the final refits). ``None`` means 1.
    random_state : int, RandomState instance or None, default=None
        Seed of the inner CV when ``cv`` is an int. The base classifiers keep
        their own ``random_state``.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar of the fits (every base
        classifier on every inner fold, then on all rows) on standard error
        when it is a terminal; 2 or more also passes ``verbose`` to joblib.

    Attributes
    ----------
    estimators_ : list of estimators
        The base classifiers refitted on all rows.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The same, by name.
    weights_ : ndarray of shape (n_estimators,)
        The global blend weights (non-negative, sum 1).
    target_weights_ : ndarray of shape (n_outputs, n_estimators)
        The weights used for each output column (each row is ``weights_``
        unless ``weights='per_target'``).
    oof_predictions_ : ndarray of shape (n_estimators, n_samples, n_outputs) \
            or None
        The OOF probabilities of each base classifier (n_outputs is n_labels
        for a 2-D ``y``, n_classes for a 1-D ``y``).
    oof_proba_ : ndarray of shape (n_samples, n_outputs)
        The OOF probabilities of the blend (with the weights chosen on them,
        so an optimistic estimate).
    oof_scores_ : dict of str to float
        The OOF mean columnwise log loss of each base classifier.
    oof_score_ : float
        The OOF mean columnwise log loss of the blend.
    classes_ : ndarray
        The classes (1-D ``y``) or ``arange(n_labels)`` (2-D ``y``).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit`` (DataFrame input).

    See Also
    --------
    sklearn.ensemble.StackingClassifier : Stacking with a final estimator.
    ControlVehicleClassifier : Treated-only fitting, floor for control rows.

    Notes
    -----
    Metadata: with metadata routing enabled
    (``sklearn.set_config(enable_metadata_routing=True)``), ``fit`` routes
    ``groups`` to the inner splitter (which requests it) and every fit
    parameter to the base classifiers that request it (e.g.
    ``net.set_fit_request(y_aux=True, groups=True)``); row-aligned metadata
    is sliced per inner fold. With routing disabled, ``groups`` goes to the
    splitter, and ``groups`` and every other fit parameter go to the base
    classifiers whose ``fit`` signature names it (a ``TypeError`` says so
    when no base classifier takes a parameter; ``sample_weight`` must be
    taken by all). ``sample_weight`` reaches the base classifiers only: the
    blend weights are chosen on the unweighted OOF loss.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import make_multilabel_classification
    >>> from sklearn.dummy import DummyClassifier
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from moa_sklearn.ensemble import StackingBlend
    >>> X, Y = make_multilabel_classification(n_samples=120, n_classes=3,
    ...                                       random_state=0)
    >>> drugs = np.repeat(np.arange(30), 4)  # the drug id of each row
    >>> blend = StackingBlend(
    ...     [("knn", KNeighborsClassifier(10)),
    ...      ("prior", DummyClassifier(strategy="prior"))],
    ...     cv=3, random_state=0).fit(X, Y, groups=drugs)
    >>> blend.predict_proba(X).shape
    (120, 3)
    >>> bool((blend.weights_ >= 0).all() and abs(blend.weights_.sum() - 1) < 1e-9)
    True
    >>> blend.oof_score_ <= min(blend.oof_scores_.values()) + 1e-9
    True
    """

    # fit's explicit ``groups`` is routed to the splitter, not requested here
    __metadata_request__fit = {"groups": UNUSED}

    def __init__(
        self,
        estimators,
        *,
        cv=5,
        weights="optimize",
        shrinkage=0.5,
        clip=None,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimators = estimators
        self.cv = cv
        self.weights = weights
        self.shrinkage = shrinkage
        self.clip = clip
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------- params
    def get_params(self, deep=True):
        """Get the parameters, with the base classifiers' as ``<name>__<param>``.

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of the base classifiers.

        Returns
        -------
        params : dict
        """
        return self._get_params("estimators", deep=deep)

    def set_params(self, **params):
        """Set the parameters, including ``<name>__<param>`` of a base classifier.

        Parameters
        ----------
        **params : keyword arguments

        Returns
        -------
        self : StackingBlend
        """
        self._set_params("estimators", **params)
        return self

    # ---------------------------------------------------------- validation
    def _check_params(self):
        est = self.estimators
        if (
            not isinstance(est, (list, tuple))
            or len(est) == 0
            or not all(isinstance(e, (list, tuple)) and len(e) == 2 for e in est)
        ):
            raise ValueError(
                "estimators must be a non-empty list of (name, estimator) tuples, "
                f"got {est!r}."
            )
        names = [name for name, _ in est]
        self._validate_names(names)
        for name, e in est:
            if not hasattr(e, "fit") or not hasattr(e, "predict_proba"):
                raise TypeError(
                    f"The estimator {name!r} ({type(e).__name__}) must implement "
                    "fit and predict_proba."
                )
        w = self.weights
        if isinstance(w, str):
            if w not in ("optimize", "per_target", "uniform"):
                raise ValueError(
                    "weights must be 'optimize', 'per_target', 'uniform' or an "
                    f"array of {len(est)} non-negative numbers, got {w!r}."
                )
        else:
            w = np.asarray(w, dtype=np.float64)
            if w.shape != (len(est),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"weights must be an array of {len(est)} non-negative numbers "
                    f"with a positive sum, got {self.weights!r}."
                )
        if not _is_real(self.shrinkage) or not 0 <= self.shrinkage <= 1:
            raise ValueError(
                f"shrinkage must be a float in [0, 1], got {self.shrinkage!r}."
            )
        clip = self.clip
        if clip is not None and not (
            isinstance(clip, (tuple, list))
            and len(clip) == 2
            and all(_is_real(c) for c in clip)
            and 0 <= clip[0] < clip[1] <= 1
        ):
            raise ValueError(
                f"clip must be None or a pair (low, high) with 0 <= low < high <= 1, "
                f"got {clip!r}."
            )

    def _cv(self):
        cv = self.cv
        if cv is None:
            return None
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            return DrugMultilabelStratifiedKFold(
                n_splits=int(cv), random_state=self.random_state
            )
        if not (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
            raise ValueError(
                f"cv must be an int, a cross-validation splitter or None, got {cv!r}."
            )
        return cv

    def _clip_bounds(self):
        low, high = (0.0, 1.0) if self.clip is None else self.clip
        return max(low, _EPS), min(high, 1 - _EPS)

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, groups=None, **fit_params):
        """Fit the blend: OOF predictions, weights, refits on all rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Passed to the base classifiers as is (a ``Pipeline`` may take a
            raw DataFrame).
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            0/1 label matrix or 1-D class labels.
        groups : array-like of shape (n_samples,), default=None
            Drug id of each row, for the inner splitter (see Notes of the
            class).
        **fit_params : dict
            Other fit metadata (e.g. ``y_aux``), routed to the base
            classifiers (see Notes of the class); row-aligned values are
            sliced per inner fold.

        Returns
        -------
        self : StackingBlend
            The fitted blend.
        """
        self._check_params()
        X = _check_X(self, X, reset=True)
        n = _num_samples(X)
        y, kind, Y, classes = _check_target(y, type(self).__name__)
        if Y.shape[0] != n:
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"[{n}, {Y.shape[0]}]"
            )
        names = [name for name, _ in self.estimators]
        estimators = [e for _, e in self.estimators]
        cv = self._cv()
        if cv is None and (isinstance(self.weights, str) and self.weights != "uniform"):
            raise ValueError(
                f"cv=None (no inner CV) needs fixed weights ('uniform' or an "
                f"array), not weights={self.weights!r}, which are chosen on "
                "out-of-fold predictions."
            )
        n_splits = 0 if cv is None else cv.get_n_splits()
        if n < n_splits:
            raise ValueError(
                f"n_samples={n}: {type(self).__name__} needs at least "
                f"n_splits={n_splits} samples for its inner CV."
            )

        if _routing_enabled():
            if groups is not None:
                fit_params["groups"] = groups
            routed = process_routing(self, "fit", **fit_params)
            split_groups = None if cv is None else routed.splitter.split.get("groups")
            est_params = [dict(routed[name].fit) for name in names]
        else:
            split_groups = groups
            est_params = []
            params = dict(fit_params)
            if groups is not None:
                params["groups"] = groups
            for e in estimators:
                est_params.append(
                    {k: v for k, v in params.items() if has_fit_parameter(e, k)}
                )
            lacking = [
                nm for nm, p in zip(names, est_params) if "sample_weight" not in p
            ]
            if "sample_weight" in fit_params and lacking:
                raise TypeError(
                    "sample_weight is passed to every base estimator, but "
                    f"some do not support it in fit: {lacking}."
                )
            unused = set(fit_params) - {k for p in est_params for k in p}
            if unused:
                raise TypeError(
                    f"No base estimator's fit accepts {sorted(unused)}. With "
                    "metadata routing disabled, a fit parameter goes to the base "
                    "estimators whose fit names it; to reach others (e.g. a step "
                    "of a Pipeline), enable routing and use set_fit_request."
                )
        if split_groups is None and isinstance(cv, DrugMultilabelStratifiedKFold):
            _warn_without_groups(type(self).__name__, "inner CV")
            split_groups = np.arange(n)
        split_y = Y.astype(np.int8)
        if cv is None:
            folds = []
        elif isinstance(cv, DrugMultilabelStratifiedKFold):
            folds = list(cv.split(np.zeros((n, 1)), split_y, split_groups))
        else:
            folds = list(cv.split(X, _as_array(y), split_groups))

        jobs = [
            delayed(_fit_fold)(e, X, y, train, test, params, kind, classes, name)
            for name, e, params in zip(names, estimators, est_params)
            for train, test in folds
        ]
        jobs += [
            delayed(_fit_all)(e, X, y, params)
            for e, params in zip(estimators, est_params)
        ]
        labels = [
            f"{name} inner fold {f + 1}/{len(folds)}"
            for name in names
            for f in range(len(folds))
        ] + [f"{name} on all rows" for name in names]
        results = []
        with progress_bar(
            len(jobs), type(self).__name__, self.verbose, unit="fit"
        ) as bar:
            bar.set_postfix_str(labels[0], refresh=False)
            parallel = Parallel(
                n_jobs=self.n_jobs,
                verbose=0 if self.verbose < 2 else self.verbose,
                return_as="generator",
            )
            for i, result in enumerate(parallel(jobs)):
                results.append(result)
                if i + 1 < len(jobs):  # in order: the next fit has started
                    bar.set_postfix_str(labels[i + 1], refresh=False)
                bar.update(1)

        M, k = len(estimators), Y.shape[1]
        oof = np.full((M, n, k), np.nan)
        it = iter(results)
        for m in range(M):
            for _, test in folds:
                oof[m, test] = next(it)
        self.estimators_ = list(it)
        covered = ~np.isnan(oof[0, :, 0])
        if cv is not None and not covered.all():
            raise ValueError(
                f"The inner CV left {int((~covered).sum())} rows out of every test "
                "fold; StackingBlend needs a partition (every row predicted once)."
            )
        low, high = self._clip_bounds()
        oof = np.clip(oof, low, high)

        if isinstance(self.weights, str) and self.weights in ("optimize", "per_target"):
            w = _simplex_weights(oof.reshape(M, -1), Y.ravel(), _EPS)
        elif isinstance(self.weights, str):
            w = np.full(M, 1.0 / M)
        else:
            w = np.asarray(self.weights, dtype=np.float64)
            w = w / w.sum()
        W = np.tile(w, (k, 1))
        if isinstance(self.weights, str) and self.weights == "per_target" and M > 1:
            s = self.shrinkage
            for j in range(k):
                wj = _simplex_weights(oof[:, :, j], Y[:, j], _EPS)
                W[j] = s * w + (1 - s) * wj

        self.named_estimators_ = Bunch(**dict(zip(names, self.estimators_)))
        self.weights_ = w
        self.target_weights_ = W
        if cv is None:
            self.oof_predictions_ = self.oof_proba_ = None
            self.oof_scores_ = self.oof_score_ = None
        else:
            self.oof_predictions_ = oof
            self.oof_proba_ = self._finish(_blend(oof, W), kind)
            self.oof_scores_ = {
                name: _mean_log_loss(Y, oof[m]) for m, name in enumerate(names)
            }
            self.oof_score_ = _mean_log_loss(Y, self.oof_proba_)
        self.classes_ = classes
        self._target_kind = kind
        self._y_dtype = _as_array(y).dtype if kind == "multilabel" else None
        return self

    def _finish(self, proba, kind):
        low, high = self._clip_bounds()
        proba = np.clip(proba, low, high)
        if kind != "multilabel":
            proba /= proba.sum(axis=1, keepdims=True)
        return proba

    # ------------------------------------------------------------- predict
    def predict_proba(self, X):
        """Blended probabilities.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            For a 2-D ``y``: P(label = 1) of each label, strictly inside
            (0, 1). For a 1-D ``y``: the probability of each class of
            ``classes_`` (rows sum to 1).
        """
        check_is_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False)
        P = np.stack(
            [
                _aligned_proba(
                    e,
                    X,
                    self._target_kind,
                    self.classes_,
                    owner=type(self).__name__,
                    name=_base_name(name, e),
                )
                for name, e in self.named_estimators_.items()
            ]
        )
        return self._finish(_blend(P, self.target_weights_), self._target_kind)

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_labels) or (n_samples,)
            For a 2-D ``y``: ``predict_proba(X) > 0.5`` with ``y``'s dtype.
            For a 1-D ``y``: the most probable class.
        """
        return labels_from_proba(self, self.predict_proba(X))

    # ------------------------------------------------------------- routing
    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        The base classifiers receive in ``fit`` what they request (fit ->
        fit); the inner splitter receives ``groups`` (fit -> split).

        Returns
        -------
        routing : MetadataRouter
        """
        router = MetadataRouter(owner=self)
        for name, estimator in self.estimators:
            router.add(
                **{name: estimator},
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        cv = self._cv()
        if cv is not None:
            router.add(
                splitter=cv,
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        return router

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        try:
            tags.input_tags.sparse = all(
                get_tags(e).input_tags.sparse for _, e in self.estimators
            )
        except (TypeError, ValueError):
            tags.input_tags.sparse = False
        return tags


def _mean_log_loss(Y, P):
    p = np.clip(P, _EPS, 1 - _EPS)
    return float(-np.mean(Y * np.log(p) + (1 - Y) * np.log1p(-p)))


class _WrapsOneEstimator:
    """Routing and tags shared by the meta-estimators that wrap one ``estimator``."""

    def get_metadata_routing(self):
        """Get the metadata routing of this object (fit -> the estimator's fit).

        Returns
        -------
        routing : MetadataRouter
        """
        return MetadataRouter(owner=self).add(
            estimator=self.estimator,
            method_mapping=MethodMapping().add(caller="fit", callee="fit"),
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        inner = get_tags(self.estimator)
        tags.input_tags.sparse = inner.input_tags.sparse
        tags.input_tags.allow_nan = inner.input_tags.allow_nan
        return tags


class ControlVehicleClassifier(
    _WrapsOneEstimator, ClassifierMixin, MetaEstimatorMixin, BaseEstimator
):
    """Fit a classifier on treated rows only; predict the floor for control rows.

    In lish-moa the control (``ctl_vehicle``) rows have no MoA: all their
    targets are 0. This meta-estimator drops them before fitting its
    classifier (slicing ``y`` and every row-aligned fit parameter, e.g.
    ``y_aux`` and ``groups``, alike) and predicts ``control_proba`` for every
    label of a control row; the other rows get the classifier's
    probabilities.

    Control rows are those whose ``column`` equals ``control``
    (:meth:`control_mask`); by default the raw lish-moa column,
    ``cp_type == "ctl_vehicle"``, so that the classifier (e.g. a ``Pipeline``
    of feature steps and a blend, as in
    :func:`~moa_sklearn.recipes.make_moa_pipeline`) never sees a control row,
    in ``fit`` or in ``predict``: it works the same whether or not the
    training rows hold controls, and no feature step meets an unseen
    ``cp_type``. Any other column works too, e.g. an encoded indicator
    (``column="cp_type_ctl_vehicle"``, ``control=1``).

    Parameters
    ----------
    estimator : classifier
        Fitted on the treated rows; sees ``X`` unchanged (the control column
        included).
    column : str, int or None, default='cp_type'
        The column that marks the control rows: a DataFrame column name, or a
        column index (for a DataFrame or an array). ``None``: no control
        handling (every row is fitted and predicted by ``estimator``).
    control : object, default='ctl_vehicle'
        The value of ``column`` on the control rows.
    control_proba : float, default=0.0005
        Probability predicted for every label of a control row (the nets'
        clip floor by default). Must be in (0, 0.5).

    Attributes
    ----------
    estimator_ : classifier
        The fitted classifier.
    classes_ : ndarray
        The classes of ``estimator_``.
    n_controls_ : int
        Number of control rows dropped in ``fit``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str
        Feature names seen in ``fit`` (DataFrame input).

    See Also
    --------
    StackingBlend : The blend that usually sits inside.

    Notes
    -----
    A missing ``column`` raises a ``ValueError`` that names it. For a 1-D
    target (binary or multiclass), the control rows get ``control_proba`` for
    every class but the first of ``classes_`` (e.g. 0, "no MoA"), which gets
    the rest. With metadata routing enabled, fit
    parameters reach ``estimator`` as it requests them; with routing
    disabled, every ``**fit_params`` goes to ``estimator.fit``.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from moa_sklearn.ensemble import ControlVehicleClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"cp_type_ctl_vehicle": [1, 0, 0, 0, 1, 0] * 10,
    ...                   "g-0": rng.normal(size=60)})
    >>> Y = (rng.uniform(size=(60, 2)) < 0.3).astype(int)
    >>> Y[X["cp_type_ctl_vehicle"] == 1] = 0
    >>> clf = ControlVehicleClassifier(KNeighborsClassifier(),
    ...                                column="cp_type_ctl_vehicle", control=1)
    >>> proba = clf.fit(X, Y).predict_proba(X)
    >>> proba[0].tolist(), clf.n_controls_
    ([0.0005, 0.0005], 20)
    """

    def __init__(
        self, estimator, *, column="cp_type", control="ctl_vehicle", control_proba=5e-4
    ):
        self.estimator = estimator
        self.column = column
        self.control = control
        self.control_proba = control_proba

    def control_mask(self, X):
        """Boolean mask of the control rows of ``X``.

        The one place where control rows are recognised: ``X[column] ==
        control`` (by default the raw ``cp_type == 'ctl_vehicle'``), whether
        or not the training rows held controls.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        mask : ndarray of bool of shape (n_samples,)
            True on the control rows; all False with ``column=None``.
        """
        mask = self._control_mask(X)
        return np.zeros(_num_samples(X), dtype=bool) if mask is None else mask

    def _control_mask(self, X):
        """Boolean mask of the control rows (None without control handling)."""
        column = self.column
        if column is None:
            return None
        if isinstance(X, pd.DataFrame):
            if isinstance(column, str) or column in X.columns:
                if column not in X.columns:
                    raise ValueError(
                        f"The control column {column!r} is not in X. Its columns "
                        f"start with {list(X.columns[:8])}. Pass column= the name "
                        "of the column that marks control rows (e.g. 'cp_type' "
                        "on the raw data, 'cp_type_ctl_vehicle' after "
                        "make_moa_features), or column=None."
                    )
                values = X[column].to_numpy()
            else:
                values = X.iloc[:, column].to_numpy()
        else:
            if isinstance(column, str):
                raise ValueError(
                    f"The control column {column!r} is a name, but X has no "
                    "column names (it is not a DataFrame). Pass a DataFrame, "
                    "a column index, or column=None."
                )
            if sp.issparse(X):
                X_arr = X.tocsc()[:, [column]].toarray()[:, 0]
                return np.asarray(X_arr == self.control, dtype=bool)
            X_arr = np.asarray(X)
            if X_arr.ndim != 2 or not -X_arr.shape[1] <= column < X_arr.shape[1]:
                raise ValueError(
                    f"The control column index {column} is out of range for X "
                    f"of shape {X_arr.shape}."
                )
            values = X_arr[:, column]
        return np.asarray(values == self.control, dtype=bool)

    def fit(self, X, y, **fit_params):
        """Fit ``estimator`` on the treated rows.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
        **fit_params : dict
            Fit metadata (e.g. ``groups``, ``y_aux``); row-aligned values are
            restricted to the treated rows.

        Returns
        -------
        self : ControlVehicleClassifier
            The fitted meta-estimator.
        """
        if not _is_real(self.control_proba) or not 0 < self.control_proba < 0.5:
            raise ValueError(
                f"control_proba must be a float in (0, 0.5), got "
                f"{self.control_proba!r}."
            )
        X = _check_X(self, X, reset=True)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y "
                "is None."
            )
        if _routing_enabled():
            params = process_routing(self, "fit", **fit_params).estimator.fit
        else:
            params = fit_params
        if not isinstance(y, (pd.DataFrame, pd.Series)):
            y = np.asarray(y)
        check_consistent_length(X, y)
        self._multilabel = (
            y.ndim == 2
            and y.shape[1] > 1
            or (y.ndim == 2 and np.isin(_as_array(y), (0, 1)).all())
        )
        mask = self._control_mask(X)
        if mask is None:
            self.n_controls_ = 0
            self.estimator_ = clone(self.estimator).fit(X, y, **params)
        else:
            treated = np.flatnonzero(~mask)
            if treated.size == 0:
                raise ValueError(
                    f"Every row is a control row ({self.column!r} == "
                    f"{self.control!r}); there is nothing to fit."
                )
            self.n_controls_ = int(mask.sum())
            self.estimator_ = clone(self.estimator).fit(
                _safe_indexing(X, treated),
                _safe_indexing(y, treated),
                **_check_method_params(X, params, indices=treated),
            )
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        elif not self._multilabel:
            self.classes_ = np.unique(_as_array(y))
        self._y_dtype = _as_array(y).dtype
        self._n_outputs = (
            _as_array(y).shape[1] if self._multilabel else len(self.classes_)
        )
        return self

    def predict_proba(self, X):
        """Probabilities; ``control_proba`` for every label of a control row.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            The probabilities of ``estimator_`` on the treated rows (a list
            of per-label arrays is turned into one (n_samples, n_labels)
            array, kept inside (0, 1)); ``control_proba`` for every label of
            the control rows, which ``estimator_`` never sees. For a 1-D
            target see the Notes of the class.
        """
        check_is_fitted(self, "estimator_")
        X = _check_X(self, X, reset=False)
        mask = self._control_mask(X)
        if mask is None or not mask.any():
            return self._inner_proba(X)
        c = self.control_proba
        if self._multilabel:
            row = np.full(self._n_outputs, c)
        else:
            row = np.full(self._n_outputs, c)
            row[0] = 1 - c * (self._n_outputs - 1)
        proba = np.tile(row, (mask.size, 1))
        treated = np.flatnonzero(~mask)
        if treated.size:
            proba[treated] = self._inner_proba(_safe_indexing(X, treated))
        return proba

    def _inner_proba(self, X):
        kind = "multilabel" if self._multilabel else "classes"
        classes = np.arange(self._n_outputs) if self._multilabel else self.classes_
        proba = _aligned_proba(
            self.estimator_,
            X,
            kind,
            classes,
            owner=type(self).__name__,
            name=f"({type(self.estimator_).__name__})",
        )
        if self._multilabel:
            return np.clip(proba, _EPS, 1 - _EPS)
        return proba

    def predict(self, X):
        """Predicted labels (0 for every label of a control row).

        The classifier predicts the treated rows only (so that a feature
        step inside it never sees a control row, e.g. an unseen category).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_labels) or (n_samples,)
        """
        check_is_fitted(self, "estimator_")
        X = _check_X(self, X, reset=False)
        mask = self._control_mask(X)
        if mask is None or not mask.any():
            return self.estimator_.predict(X)
        treated = np.flatnonzero(~mask)
        pred = None
        if treated.size:
            pred = np.asarray(self.estimator_.predict(_safe_indexing(X, treated)))
        if self._multilabel:
            dtype = self._y_dtype if pred is None else pred.dtype
            y_pred = np.zeros((mask.size, self._n_outputs), dtype=dtype)
        else:
            dtype = self.classes_.dtype if pred is None else pred.dtype
            y_pred = np.full(mask.size, self.classes_[0], dtype=dtype)
        if pred is not None:
            y_pred[treated] = pred
        return y_pred


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
        The copies are fitted in parallel with joblib. ``None`` means 1.

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

    def __init__(self, estimator, *, n_seeds=3, random_state=None, n_jobs=None):
        self.estimator = estimator
        self.n_seeds = n_seeds
        self.random_state = random_state
        self.n_jobs = n_jobs

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
        if (
            not isinstance(self.n_seeds, numbers.Integral)
            or isinstance(self.n_seeds, bool)
            or self.n_seeds < 1
        ):
            raise ValueError(
                f"n_seeds must be a positive integer, got {self.n_seeds!r}."
            )
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
        X = _check_X(self, X, reset=True)
        y, kind, Y, classes = _check_target(y, type(self).__name__)
        check_consistent_length(X, Y)
        if _routing_enabled():
            params = process_routing(self, "fit", **fit_params).estimator.fit
        else:
            params = fit_params
        rng = check_random_state(self.random_state)
        seeds = rng.randint(0, np.iinfo(np.int32).max, size=self.n_seeds)
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_seeded_fit)(self.estimator, keys, int(seed), X, y, params)
            for seed in seeds
        )
        self.seeds_ = seeds
        self.classes_ = classes
        self._target_kind = kind
        self._y_dtype = _as_array(y).dtype if kind == "multilabel" else None
        return self

    def predict_proba(self, X):
        """Mean probabilities of the copies.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            For a 2-D ``y``: P(label = 1) of each label, strictly inside
            (0, 1). For a 1-D ``y``: the probability of each class of
            ``classes_``.
        """
        check_is_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False)
        proba = np.mean(
            [
                _aligned_proba(
                    e,
                    X,
                    self._target_kind,
                    self.classes_,
                    owner=type(self).__name__,
                    name=f"({type(e).__name__}) with seed {seed}",
                )
                for e, seed in zip(self.estimators_, self.seeds_)
            ],
            axis=0,
        )
        if self._target_kind == "multilabel":
            return np.clip(proba, _EPS, 1 - _EPS)
        return proba

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_labels) or (n_samples,)
            For a 2-D ``y``: ``predict_proba(X) > 0.5`` with ``y``'s dtype.
            For a 1-D ``y``: the most probable class.
        """
        return labels_from_proba(self, self.predict_proba(X))
