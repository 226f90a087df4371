"""StackingBlend: out-of-fold predictions, blend weights, refits on all rows.

``StackingBlend.fit`` reads top-down, as scikit-learn's stacking does: check
the parameters and the data, route the metadata, split the inner folds, fit
every base classifier on every fold and on all rows (keyed by (name, fold)),
assemble the out-of-fold predictions, choose the weights
(:mod:`._weights`), set the fitted attributes.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    ClassifierMixin,
    MetaEstimatorMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch, _safe_indexing, check_random_state, get_tags
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
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
    _check_feature_names_in,
    _check_method_params,
    _num_samples,
    check_is_fitted,
    has_fit_parameter,
)

from ..exceptions import _warn_without_groups
from ..metrics import mean_columnwise_log_loss
from ..model_selection import DrugMultilabelStratifiedKFold
from ..utils._progress import progress_bar
from ..utils._validation import _as_array, clip_bounds
from ._base import (
    _base_name,
    _base_proba,
    _check_X,
    _MetaClassifierMixin,
    _own_threads,
    _quiet_worker_restarts,
    _sharing_cores,
    _threads_per_fit,
)
from ._weights import PerTargetLogit, _blend, blend_weights

#: The fold of the refit of a base classifier on all rows, in the keys
#: (name, fold) of the fits.
_ALL_ROWS = "all rows"


def _fit_fold(estimator, X, y, train, test, params, target, name, keep):
    """Fit a clone on ``train`` rows: ``(its probabilities on test rows, the
    fitted clone if keep else None)``."""
    est = clone(estimator)
    est.fit(
        _safe_indexing(X, train),
        _safe_indexing(y, train),
        **_check_method_params(X, params, indices=train),
    )
    proba = _base_proba(
        est,
        _safe_indexing(X, test),
        target,
        owner="StackingBlend",
        name=_base_name(name, est) + " on an inner CV fold",
    )
    return proba, (est if keep else None)


class _FoldModels:
    """The inner-fold models of one base classifier, predicting as their mean.

    What ``StackingBlend(refit=False)`` keeps in ``estimators_`` for each base
    classifier instead of a refit on all rows (the Kaggle practice: the fits
    of the out-of-fold predictions are already paid for). ``predict_proba``
    is the mean of the fold models' probabilities, aligned on the blend's
    outputs (a fold model that missed a class gives it 0).

    Attributes
    ----------
    estimators_ : list of estimators
        The base classifier fitted on each inner training fold.
    classes_ : ndarray
        The blend's classes (1-D ``y``) or ``arange(n_labels)`` (2-D ``y``).
    """

    def __init__(self, estimators, target, name):
        self.estimators_ = estimators
        self.classes_ = target.classes
        self._target = target
        self._name = name

    def predict_proba(self, X):
        """Mean probabilities of the fold models: (n_samples, n_outputs)."""
        return np.mean(
            [
                _base_proba(
                    e,
                    X,
                    self._target,
                    owner="StackingBlend",
                    name=f"{_base_name(self._name, e)} of inner fold {f + 1}",
                )
                for f, e in enumerate(self.estimators_)
            ],
            axis=0,
        )

    def __repr__(self):
        inner = type(self.estimators_[0]).__name__
        return f"_FoldModels({len(self.estimators_)} x {inner})"


def _fit_all(estimator, X, y, params):
    return clone(estimator).fit(X, y, **params)


def _validation_net(estimator):
    """``(the estimator that holds the validation predictions, the name of
    its random_state parameter in estimator)``: the estimator itself, or
    the last step of a ``Pipeline`` (its transformers keep the rows)."""
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        return last, f"{name}__random_state"
    return estimator, "random_state"


class _Held:
    """A base classifier's predictions on its validation rows, as an object
    with ``predict_proba`` (for :func:`_base_proba`, which aligns them)."""

    def __init__(self, proba, classes):
        self._proba = proba
        if classes is not None:
            self.classes_ = classes

    def predict_proba(self, X):
        return self._proba


def _run_fits(tasks, *, n_jobs, verbose, desc):
    """Run joblib ``tasks`` ({key: (label, delayed call)}) with a progress bar.

    The bar shows the label of the fit in progress (results come back in
    order, so when one is in the next has started). Returns {key: result}.
    """
    labels = [label for label, _ in tasks.values()]
    results = []
    with progress_bar(len(tasks), desc, verbose, unit="fit") as bar:
        bar.set_postfix_str(labels[0], refresh=False)
        parallel = Parallel(
            n_jobs=n_jobs,
            verbose=0 if verbose < 2 else verbose,
            return_as="generator",
        )
        with _quiet_worker_restarts():
            for i, result in enumerate(parallel(job for _, job in tasks.values())):
                results.append(result)
                if i + 1 < len(tasks):
                    bar.set_postfix_str(labels[i + 1], refresh=False)
                bar.update(1)
    return dict(zip(tasks, results))


def _params_by_signature(estimators, groups, fit_params):
    """Routing disabled: each fit parameter to the base classifiers that name it.

    ``groups`` goes to those whose ``fit`` takes it; ``sample_weight`` must be
    taken by all, and every other parameter by one at least.
    """
    params = dict(fit_params)
    if groups is not None:
        params["groups"] = groups
    per_estimator = {
        name: {k: v for k, v in params.items() if has_fit_parameter(e, k)}
        for name, e in estimators
    }
    lacking = [nm for nm, p in per_estimator.items() if "sample_weight" not in p]
    if "sample_weight" in fit_params and lacking:
        raise TypeError(
            "sample_weight is passed to every base estimator, but "
            f"some do not support it in fit: {lacking}."
        )
    unused = set(fit_params) - {k for p in per_estimator.values() for k in p}
    if unused:
        raise TypeError(
            f"No base estimator's fit accepts {sorted(unused)}. With "
            "metadata routing disabled, a fit parameter goes to the base "
            "estimators whose fit names it; to reach others (e.g. a step "
            "of a Pipeline), enable routing and use set_fit_request."
        )
    return per_estimator


class StackingBlend(
    _MetaClassifierMixin,
    ClassifierMixin,
    TransformerMixin,
    MetaEstimatorMixin,
    _BaseComposition,
):
    """Blend of multilabel classifiers with weights fitted out of fold.

    ``fit`` computes the out-of-fold (OOF) probabilities of every base
    classifier under ``cv`` (drug-grouped by default, with ``groups`` and
    the other fit metadata, e.g. ``y_aux``, sliced per inner fold), chooses
    the blend weights on those OOF predictions to minimise the mean
    columnwise log loss (the lish-moa metric), then refits every base
    classifier on all the rows given to ``fit`` (or, with ``refit=False``,
    keeps the inner-fold models instead). ``predict_proba`` is the
    weighted average of the base classifiers' probabilities;
    ``transform`` gives each one's, side by side (the per-model output, as
    ``StackingClassifier.transform``).

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
    cv : int, cross-validation splitter, 'validation' or None, default=5
        The inner CV of the OOF predictions. An int ``k`` is
        ``DrugMultilabelStratifiedKFold(k, random_state=random_state)``, the
        drug-grouped splitter; without ``groups`` it treats each row as its
        own drug (the rows of one drug land on both sides, which leaks) and
        a :class:`~moa_sklearn.exceptions.DrugLeakageWarning` says how to
        pass them. Another splitter receives ``groups`` (or None) in
        ``split`` as is and must partition the rows (each row in one test
        fold). ``'validation'``: no inner CV; each base classifier is fitted
        once, on all rows, and the weights (or ``final_estimator``) are
        chosen on its predictions on its own validation rows, those it held
        out to choose its best epoch (``validation_indices_`` and
        ``validation_proba_`` of the nets of :mod:`moa_sklearn.neural`, or of
        the last step of a ``Pipeline``); with ``groups``, drugs it did not
        train on. A fit then costs one fit per base classifier instead of
        ``n_splits + 1``. So that every base classifier holds out the same
        rows, each gets as ``random_state`` one seed drawn from the blend's
        ``random_state`` (as ``BaggingClassifier`` seeds its estimators;
        their ``validation_fraction`` must then agree); the weights are
        chosen on the rows that all of them held out (``oof_indices_``).
        Those rows are fewer (``validation_fraction`` of the rows, 0.1 for
        the nets) and also chose each net's best epoch, which makes the
        OOF figures optimistic. ``None``: no
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
    final_estimator : estimator, 'per_target' or None, default=None
        None: ``predict_proba`` is the weighted average of the base
        classifiers' probabilities. ``'per_target'``: a learned second stage
        made for the blend, one logistic regression per output on the logits
        of the base classifiers' probabilities of that output (a coefficient
        per base classifier and an intercept, fitted on the out-of-fold
        predictions; an L2 penalty, ``C=1`` on the summed log loss as in
        ``LogisticRegression``, pulls them towards the plain mean of the
        logits, so that rare outputs stay close to it); it can sharpen or
        soften each output's blend, which weights cannot. ``final_estimator_``
        holds its ``coef_`` (n_outputs, n_estimators) and ``intercept_``. An
        estimator with ``predict_proba``: a
        learned second stage (as the 1st-place lish-moa solution stacked), fitted
        on the out-of-fold probabilities of the base classifiers only, laid
        side by side as :meth:`transform` lays them out (column ``m *
        n_outputs + j`` is output ``j`` of base classifier ``m``), against
        ``y``; it then predicts from :meth:`transform`. For a 2-D ``y`` it
        must be a multilabel classifier, e.g.
        ``MultiOutputClassifier(LogisticRegression())``. Needs an inner CV.
        The weights are still chosen (``weights_``), for comparison.
    clip : tuple (low, high) or None, default=None
        Clip the blended probabilities (and the OOF predictions on which the
        weights are chosen) to ``[low, high]``. They are always kept in
        ``[1e-15, 1 - 1e-15]``.
    refit : bool, default=True
        True: refit every base classifier on all rows after the inner CV, and
        predict with the refits. False: predict with the mean of each base
        classifier's inner-fold models (the Kaggle practice), which saves the
        refits (a fit costs ``n_splits`` fits instead of ``n_splits + 1``);
        each fold model saw ``(n_splits - 1) / n_splits`` of the rows, and
        predicting costs ``n_splits`` times more. Needs an inner CV
        (``cv`` an int or a splitter).
    keep_fold_models : bool, default=False
        With ``refit=True``, also keep every base classifier's inner-fold
        models in ``fold_models_`` (``n_splits`` more fitted models per base
        classifier), so that the refits and the fold models can be compared
        on one fit (``moa-sklearn cv`` does, for the benchmarks). With
        ``refit=False`` the fold models are ``estimators_`` themselves.
        Needs an inner CV (``cv`` an int or a splitter).
    n_jobs : int, default=None
        Fits run in parallel with joblib (every fold of every base
        classifier, and the final refits). ``None`` means 1. When they run
        in local processes (joblib's default backend), a base classifier's
        ``n_threads`` parameters left at None (its own, or a step's or an
        inner estimator's, e.g. the nets of :mod:`moa_sklearn.neural`) are
        set for its fits to the cores divided by the fits that run at once
        (at least 1), so that they do not oversubscribe the machine; the
        fitted classifiers in ``estimators_`` get their None back and
        predict with every core.
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
        The base classifiers refitted on all rows; with ``refit=False``, for
        each, an object holding its inner-fold models (``.estimators_``)
        whose ``predict_proba`` is their mean.
    named_estimators_ : :class:`~sklearn.utils.Bunch`
        The same, by name.
    weights_ : ndarray of shape (n_estimators,)
        The global blend weights (non-negative, sum 1).
    target_weights_ : ndarray of shape (n_outputs, n_estimators)
        The weights used for each output column (each row is ``weights_``
        unless ``weights='per_target'``).
    oof_predictions_ : ndarray of shape (n_estimators, n_oof, n_outputs) \
            or None
        The OOF probabilities of each base classifier on the rows
        ``oof_indices_`` (n_outputs is n_labels for a 2-D ``y``, n_classes
        for a 1-D ``y``); None with ``cv=None``.
    oof_indices_ : ndarray of int or None
        The rows of ``fit``'s ``X`` that the OOF arrays hold, in order: all
        of them with an inner CV, the validation rows of every base
        classifier with ``cv='validation'``; None with ``cv=None``.
    oof_proba_ : ndarray of shape (n_oof, n_outputs)
        The OOF probabilities of the blend (with the weights, or the final
        estimator, fitted on them, so an optimistic estimate).
    oof_scores_ : dict of str to float
        The OOF mean columnwise log loss of each base classifier.
    oof_score_ : float
        The OOF mean columnwise log loss of the blend.
    final_estimator_ : estimator or None
        The fitted second stage (``final_estimator`` given; for
        ``'per_target'`` an object with ``coef_`` and ``intercept_``), else
        None.
    fold_models_ : :class:`~sklearn.utils.Bunch` or None
        By name, an object holding each base classifier's inner-fold models
        (``.estimators_``) whose ``predict_proba`` is their mean: with
        ``refit=False`` or ``keep_fold_models=True``; else None.
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
    >>> per_model = blend.transform(X).reshape(120, 2, 3)  # knn, prior
    >>> bool(np.allclose(per_model[:, 1], Y.mean(axis=0)))
    True
    """

    _parameter_constraints = {
        "estimators": [list, tuple],
        "cv": [
            Interval(Integral, 2, None, closed="left"),
            HasMethods(["split", "get_n_splits"]),
            StrOptions({"validation"}),
            None,
        ],
        "weights": [StrOptions({"optimize", "per_target", "uniform"}), "array-like"],
        "shrinkage": [Interval(Real, 0, 1, closed="both")],
        "final_estimator": [
            HasMethods(["fit", "predict_proba"]),
            StrOptions({"per_target"}),
            None,
        ],
        "clip": ["array-like", None],
        "refit": ["boolean"],
        "keep_fold_models": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # fit's explicit ``groups`` is routed to the splitter, not requested here
    __metadata_request__fit = {"groups": UNUSED}

    def __init__(
        self,
        estimators,
        *,
        cv=5,
        weights="optimize",
        shrinkage=0.5,
        final_estimator=None,
        clip=None,
        refit=True,
        keep_fold_models=False,
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.estimators = estimators
        self.cv = cv
        self.weights = weights
        self.shrinkage = shrinkage
        self.final_estimator = final_estimator
        self.clip = clip
        self.refit = refit
        self.keep_fold_models = keep_fold_models
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
    def _check_param_values(self):
        """What ``_parameter_constraints`` cannot say: the (name, estimator)
        pairs of ``estimators``, an array of ``weights`` against them, and the
        pair of ``clip``."""
        est = self.estimators
        if len(est) == 0 or not all(
            isinstance(e, (list, tuple)) and len(e) == 2 for e in est
        ):
            raise ValueError(
                "estimators must be a non-empty list of (name, estimator) tuples, "
                f"got {est!r}."
            )
        self._validate_names([name for name, _ in est])
        for name, e in est:
            if not hasattr(e, "fit") or not hasattr(e, "predict_proba"):
                raise TypeError(
                    f"The estimator {name!r} ({type(e).__name__}) must implement "
                    "fit and predict_proba."
                )
        if not isinstance(self.weights, str):
            w = np.asarray(self.weights, dtype=np.float64)
            if w.shape != (len(est),) or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    f"weights must be an array of {len(est)} non-negative numbers "
                    f"with a positive sum, got {self.weights!r}."
                )
        self._clip_bounds()

    def _clip_bounds(self):
        """``clip`` inside ``[PROBA_EPS, 1 - PROBA_EPS]`` (``clip`` checked)."""
        return clip_bounds(self.clip)

    def _cv(self):
        """The inner splitter: an int is a :class:`DrugMultilabelStratifiedKFold`."""
        if isinstance(self.cv, Integral) and not isinstance(self.cv, bool):
            return DrugMultilabelStratifiedKFold(
                n_splits=int(self.cv), random_state=self.random_state
            )
        return self.cv

    def _check_cv(self, n_samples):
        """The inner splitter, checked against ``weights`` and the data."""
        cv = self._cv()
        if isinstance(cv, str):  # "validation": the bases' own held-out rows
            for flag, what in (
                (not self.refit, "refit=False predicts with inner-fold models"),
                (self.keep_fold_models, "keep_fold_models=True keeps them"),
            ):
                if flag:
                    raise ValueError(
                        f"{what}, so it needs an inner CV: cv='validation' has "
                        "none (each base classifier is fitted once, on all rows)."
                    )
            return cv
        if cv is None and (isinstance(self.weights, str) and self.weights != "uniform"):
            raise ValueError(
                f"cv=None (no inner CV) needs fixed weights ('uniform' or an "
                f"array), not weights={self.weights!r}, which are chosen on "
                "out-of-fold predictions."
            )
        if cv is None and not self.refit:
            raise ValueError(
                "refit=False predicts with the inner-fold models, so it needs an "
                "inner CV: cv=None has none."
            )
        if cv is None and self.keep_fold_models:
            raise ValueError(
                "keep_fold_models=True keeps the inner-fold models, so it needs "
                "an inner CV: cv=None has none."
            )
        if cv is None and self.final_estimator is not None:
            raise ValueError(
                "final_estimator is fitted on the out-of-fold predictions, so it "
                "needs an inner CV: cv=None has none."
            )
        n_splits = 0 if cv is None else cv.get_n_splits()
        if n_samples < n_splits:
            raise ValueError(
                f"n_samples={n_samples}: {type(self).__name__} needs at least "
                f"n_splits={n_splits} samples for its inner CV."
            )
        return cv

    # ----------------------------------------------------------------- fit
    # the base classifiers and the splitter validate their own parameters
    @_fit_context(prefer_skip_nested_validation=False)
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
        self._check_param_values()
        X, y, Y = self._read_fit_data(X, y)
        cv = self._check_cv(_num_samples(X))
        split_groups, params = self._route_metadata(cv, groups, fit_params)
        folds = self._inner_folds(cv, X, y, Y, split_groups)
        fits = self._fit_base_estimators(X, y, folds, params)
        if isinstance(cv, str):  # "validation"
            rows, oof = self._held_out([fits[n, _ALL_ROWS] for n, _ in self.estimators])
        else:
            rows, oof = self._out_of_fold(fits, folds, Y)
        if rows is not None:  # the targets of the OOF rows
            y, Y = _safe_indexing(y, rows), Y[rows]
        self.weights_, self.target_weights_ = blend_weights(
            self.weights,
            oof,
            Y,
            n_estimators=len(self.estimators),
            shrinkage=self.shrinkage,
        )
        self.final_estimator_ = self._fit_final_estimator(oof, y, Y)
        self._set_fitted_attributes(fits, rows, oof, Y)
        return self

    def _fit_final_estimator(self, oof, y, Y):
        """The second stage on the OOF probabilities (None without one)."""
        if self.final_estimator is None:
            return None
        if isinstance(self.final_estimator, str):  # "per_target"
            return PerTargetLogit().fit(oof, Y)
        features = np.concatenate(list(oof), axis=1)  # as transform lays them
        return clone(self.final_estimator).fit(features, y)

    def _combine(self, P):
        """(n_estimators, n, k) base probabilities to the blend's, clipped."""
        if self.final_estimator_ is None:
            return self._finish(_blend(P, self.target_weights_))
        if isinstance(self.final_estimator_, PerTargetLogit):
            return self._finish(self.final_estimator_.predict_proba(P))
        proba = _base_proba(
            self.final_estimator_,
            np.concatenate(list(P), axis=1),
            self._target,
            owner=type(self).__name__,
            name=f"final_estimator ({type(self.final_estimator_).__name__})",
        )
        return self._finish(proba)

    def _route_metadata(self, cv, groups, fit_params):
        """``groups`` for the inner splitter and {name: fit params} of the bases.

        With routing enabled, as the splitter and the base classifiers
        request; otherwise ``groups`` goes to the splitter and every parameter
        to the base classifiers whose ``fit`` names it.
        """
        if not _routing_enabled():
            return groups, _params_by_signature(self.estimators, groups, fit_params)
        if groups is not None:
            fit_params["groups"] = groups
        routed = process_routing(self, "fit", **fit_params)
        if cv is None or isinstance(cv, str):  # no inner splitter
            split_groups = None
        else:
            split_groups = routed.splitter.split.get("groups")
        return split_groups, {
            name: dict(routed[name].fit) for name, _ in self.estimators
        }

    def _inner_folds(self, cv, X, y, Y, groups):
        """The (train, test) row indices of the inner CV ([] without one).

        The drug-grouped splitter stratifies on ``Y``; without drug ids it
        treats each row as its own drug, with a ``DrugLeakageWarning``.
        Another splitter gets ``X``, ``y`` and ``groups`` as given.
        """
        if cv is None or isinstance(cv, str):
            return []
        if not isinstance(cv, DrugMultilabelStratifiedKFold):
            return list(cv.split(X, _as_array(y), groups))
        n = Y.shape[0]
        if groups is None:
            _warn_without_groups(type(self).__name__, "inner CV", stacklevel=5)
            groups = np.arange(n)
        return list(cv.split(np.zeros((n, 1)), Y.astype(np.int8), groups))

    def _fit_base_estimators(self, X, y, folds, params):
        """Every base classifier on every inner fold, then on all rows.

        Returns {(name, fold): result}: for ``fold`` an index of ``folds``,
        the probabilities of the classifier fitted without that fold on its
        test rows and (``refit=False``) that fitted classifier; for ``fold ==
        _ALL_ROWS`` (``refit=True``), the classifier fitted on all rows.
        The fits run in parallel (``n_jobs``) under one progress bar.
        """
        tasks = {}
        estimators = self.estimators
        if isinstance(self.cv, str):  # "validation": one seed, the same splits
            seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
            estimators = []
            for name, estimator in self.estimators:
                estimator = clone(estimator)
                key = _validation_net(estimator)[1]
                if key in estimator.get_params():
                    estimator.set_params(**{key: seed})
                estimators.append((name, estimator))
        # fits side by side in local processes share the cores: n_threads
        # left at None get the cores divided by the fits at once
        n_fits = len(estimators) * (len(folds) + bool(self.refit))
        n_threads = _threads_per_fit(self.n_jobs, n_fits)
        shared = [(name, *_sharing_cores(e, n_threads)) for name, e in estimators]
        thread_keys = {name: keys for name, _, keys in shared}
        estimators = [(name, e) for name, e, _ in shared]
        for name, estimator in estimators:
            for f, (train, test) in enumerate(folds):
                tasks[name, f] = (
                    f"{name} inner fold {f + 1}/{len(folds)}",
                    delayed(_fit_fold)(
                        estimator,
                        X,
                        y,
                        train,
                        test,
                        params[name],
                        self._target,
                        name,
                        not self.refit or self.keep_fold_models,
                    ),
                )
        for name, estimator in estimators if self.refit else ():
            tasks[name, _ALL_ROWS] = (
                f"{name} on all rows",
                delayed(_fit_all)(estimator, X, y, params[name]),
            )
        fits = _run_fits(
            tasks, n_jobs=self.n_jobs, verbose=self.verbose, desc=type(self).__name__
        )
        for (name, f), result in fits.items():  # they predict with every core
            fitted = result if f == _ALL_ROWS else result[1]
            _own_threads(fitted, thread_keys[name])
        return fits

    def _held_out(self, fitted):
        """``cv='validation'``: (rows, their probabilities (n_estimators,
        n_rows, n_outputs), clipped) from the validation predictions of the
        ``fitted`` base classifiers, on the rows that all of them held out."""
        held = []
        for (name, _), est in zip(self.estimators, fitted):
            net = _validation_net(est)[0]
            rows = getattr(net, "validation_indices_", None)
            proba = getattr(net, "validation_proba_", None)
            if rows is None or proba is None:
                raise ValueError(
                    "cv='validation' chooses the weights on each base "
                    "classifier's predictions on its own validation rows, but "
                    f"{_base_name(name, est)} has none (validation_indices_ and "
                    "validation_proba_, as the nets of moa_sklearn.neural have "
                    "with a validation_fraction > 0): use an inner CV (cv=5)."
                )
            held.append((np.asarray(rows), proba, getattr(net, "classes_", None)))
        common = held[0][0]
        for rows, _, _ in held[1:]:
            common = np.intersect1d(common, rows)
        if common.size == 0:
            raise ValueError(
                "cv='validation': the base classifiers held out no row in "
                "common, so there is nothing to choose the weights on; give "
                "them the same validation_fraction (and n_seeds)."
            )
        oof = np.stack(
            [
                _base_proba(
                    _Held(proba[np.searchsorted(rows, common)], classes),
                    np.empty((common.size, 0)),
                    self._target,
                    owner=type(self).__name__,
                    name=_base_name(name, est) + " on its validation rows",
                )
                for (name, _), est, (rows, proba, classes) in zip(
                    self.estimators, fitted, held
                )
            ]
        )
        return common, np.clip(oof, *self._clip_bounds())

    def _out_of_fold(self, fits, folds, Y):
        """(rows, the OOF probabilities (n_estimators, n_samples, n_outputs),
        clipped).

        ``(None, None)`` without an inner CV; a ``ValueError`` when the inner
        CV is not a partition of the rows.
        """
        if not folds:
            return None, None
        oof = np.full((len(self.estimators), *Y.shape), np.nan)
        for m, (name, _) in enumerate(self.estimators):
            for f, (_, test) in enumerate(folds):
                oof[m, test] = fits[name, f][0]
        covered = ~np.isnan(oof[0, :, 0])
        if not covered.all():
            raise ValueError(
                f"The inner CV left {int((~covered).sum())} rows out of every test "
                "fold; StackingBlend needs a partition (every row predicted once)."
            )
        return np.arange(Y.shape[0]), np.clip(oof, *self._clip_bounds())

    def _set_fitted_attributes(self, fits, rows, oof, Y):
        """The refitted classifiers, the classes and the OOF figures (``Y``:
        the targets of the OOF ``rows``)."""
        names = [name for name, _ in self.estimators]
        n_folds = sum(f != _ALL_ROWS for _, f in fits) // len(names)
        self.fold_models_ = None
        if n_folds and (not self.refit or self.keep_fold_models):
            self.fold_models_ = Bunch(
                **{
                    name: _FoldModels(
                        [fits[name, f][1] for f in range(n_folds)], self._target, name
                    )
                    for name in names
                }
            )
        if self.refit:
            self.estimators_ = [fits[name, _ALL_ROWS] for name in names]
        else:
            self.estimators_ = list(self.fold_models_.values())
        self.named_estimators_ = Bunch(**dict(zip(names, self.estimators_)))
        self.classes_ = self._target.classes
        self.oof_indices_ = rows
        if oof is None:
            self.oof_predictions_ = self.oof_proba_ = None
            self.oof_scores_ = self.oof_score_ = None
            return
        self.oof_predictions_ = oof
        self.oof_proba_ = self._combine(oof)
        self.oof_scores_ = {
            name: mean_columnwise_log_loss(Y, oof[m]) for m, name in enumerate(names)
        }
        self.oof_score_ = mean_columnwise_log_loss(Y, self.oof_proba_)

    def _finish(self, proba):
        """Blended probabilities to ``predict_proba``: clipped (classes: rows sum 1)."""
        low, high = self._clip_bounds()
        return self._target.proba(proba, low=low, high=high)

    # ------------------------------------------------------------- predict
    def _fold_models_probas(self, X):
        """With ``fold_models_``: the blend's probabilities and each base
        classifier's as its fold models predict, (n_estimators + 1, n, k)
        (the blend first); the weights (or final estimator) are the fit's."""
        check_is_fitted(self, "fold_models_")
        if self.fold_models_ is None:
            raise AttributeError(
                "fold_models_ is None: fit with refit=False or keep_fold_models=True"
            )
        X = _check_X(self, X, reset=False)
        P = np.stack([m.predict_proba(X) for m in self.fold_models_.values()])
        return np.concatenate([self._combine(P)[None], P])

    def _base_probas(self, X):
        """The base classifiers' probabilities: (n_estimators, n, k)."""
        check_is_fitted(self, "estimators_")
        X = _check_X(self, X, reset=False)
        return np.stack(
            [
                _base_proba(
                    e,
                    X,
                    self._target,
                    owner=type(self).__name__,
                    name=_base_name(name, e),
                )
                for name, e in self.named_estimators_.items()
            ]
        )

    def predict_proba(self, X):
        """Blended probabilities: the weighted mean of :meth:`transform`'s.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            Weighted by ``target_weights_`` (or, with a ``final_estimator``,
            its probabilities on :meth:`transform`), then clipped to ``clip`` (and
            always strictly inside (0, 1)). For a 2-D ``y``: P(label = 1) of
            each label. For a 1-D ``y``: the probability of each class of
            ``classes_``, renormalised after the clip (rows sum to 1).
        """
        return self._combine(self._base_probas(X))

    def transform(self, X):
        """The probabilities of each base classifier, side by side.

        Each base classifier is its refit on all rows (or, with
        ``refit=False``, the mean of its inner-fold models).

        As ``StackingClassifier.transform``: the blend's input. Column
        ``m * n_outputs + j`` is the probability of output ``j`` (label, or
        class of ``classes_``) by the ``m``-th base classifier of
        ``estimators_``; ``transform(X).reshape(n_samples, n_estimators,
        n_outputs)`` gives them per classifier. They are the classifiers' own
        probabilities (in [0, 1], not clipped), which ``predict_proba``
        weights, blends and clips. For a binary 1-D ``y`` both classes'
        columns are kept.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_estimators * n_outputs)
            n_outputs is n_labels for a 2-D ``y``, n_classes for a 1-D ``y``.
        """
        P = self._base_probas(X)
        return np.concatenate(list(P), axis=1)

    def get_feature_names_out(self, input_features=None):
        """The names of the columns of :meth:`transform`.

        As ``StackingClassifier``'s: ``stackingblend_<name><j>`` for output
        ``j`` of the base classifier ``<name>`` (``stackingblend_<name>``
        when there is one output).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Unused but checked against ``feature_names_in_``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "estimators_")
        _check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        k = self._target.n_outputs
        names = []
        for name in self.named_estimators_:
            names += (
                [f"{prefix}_{name}"]
                if k == 1
                else [f"{prefix}_{name}{j}" for j in range(k)]
            )
        return np.asarray(names, dtype=object)

    # ------------------------------------------------------------- routing
    def get_metadata_routing(self):
        """Get the metadata routing of this object.

        The base classifiers receive in ``fit`` what they request (fit ->
        fit); the inner splitter receives ``groups`` (fit -> split).

        Returns
        -------
        routing : MetadataRouter
        """
        # an outer meta-estimator may ask before fit: a bad cv is named here
        self._validate_params()
        router = MetadataRouter(owner=self)
        for name, estimator in self.estimators:
            router.add(
                **{name: estimator},
                method_mapping=MethodMapping().add(caller="fit", callee="fit"),
            )
        cv = self._cv()
        if cv is not None and not isinstance(cv, str):
            router.add(
                splitter=cv,
                method_mapping=MethodMapping().add(caller="fit", callee="split"),
            )
        return router

    def _input_support(self):
        try:
            sparse = all(get_tags(e).input_tags.sparse for _, e in self.estimators)
        except (TypeError, ValueError):
            sparse = False
        return sparse, False
