"""What the meta-estimators of :mod:`moa_sklearn.ensemble` share.

- :func:`_check_X`: ``n_features_in_`` / ``feature_names_in_`` of a
  meta-estimator, a DataFrame passed on untouched;
- :func:`_base_proba`: where a base estimator's probabilities enter a
  meta-estimator, aligned on its outputs and checked once;
- :class:`_MetaClassifierMixin`: ``y`` read by one
  :class:`~moa_sklearn.utils._target.TargetReader` (the private fitted
  attribute ``_target``), ``predict`` from ``predict_proba``, the tags;
- :class:`_WrapsOneEstimator`: the same for the meta-estimators around one
  ``estimator``, with its parameter constraint and its metadata routing;
- :func:`_quiet_worker_restarts`: the parallel fits without loky's warning
  when it replaces a worker whose memory grew;
- :func:`_threads_per_fit`, :func:`_sharing_cores`, :func:`_own_threads`:
  the base estimators' ``n_threads`` during parallel fits, so that they
  share the cores.
"""

import contextlib
import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods
from sklearn.utils.metadata_routing import (
    MetadataRouter,
    MethodMapping,
    _routing_enabled,
    process_routing,
)
from sklearn.utils.validation import (
    _num_samples,
    check_consistent_length,
    validate_data,
)

from ..metrics import _label_proba
from ..utils._target import TargetReader
from ..utils._validation import check_base_proba, check_n_samples

# loky (joblib's default backend) replaces a worker whose memory grew by more
# than 300 MB since its first task (a net's training does) and warns with this
# when jobs are waiting: the new worker takes them, nothing is lost
_WORKER_RESTART = "A worker stopped while some jobs were given to the executor"


@contextlib.contextmanager
def _quiet_worker_restarts():
    """Ignore loky's warning that it replaced a worker, in this block.

    The warning comes from the executor's management thread: the filter is
    the process's, for the time of the block.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_WORKER_RESTART, category=UserWarning)
        yield


def _threads_per_fit(n_jobs, n_fits):
    """CPU threads for each of ``n_fits`` fits that ``n_jobs`` local worker
    processes run at once: the cores divided by the fits at once, at least
    1; None when they run in this process, or on another backend than
    joblib's local processes (a cluster's workers have their own cores)."""
    from joblib import cpu_count, effective_n_jobs
    from joblib.parallel import LokyBackend, MultiprocessingBackend, get_active_backend

    workers = min(effective_n_jobs(n_jobs), n_fits)
    if workers <= 1:
        return None
    backend, _ = get_active_backend()
    if not isinstance(backend, (LokyBackend, MultiprocessingBackend)):
        return None
    return max(1, cpu_count() // workers)


def _thread_params(estimator):
    """The ``n_threads`` parameters of ``estimator`` (its own, its steps',
    its inner estimators') left at None: the engine's own setting."""
    return [
        key
        for key, value in estimator.get_params(deep=True).items()
        if value is None and (key == "n_threads" or key.endswith("__n_threads"))
    ]


def _sharing_cores(estimator, n_threads):
    """``(a clone of estimator whose n_threads left at None are n_threads,
    those parameters)``; ``(estimator, [])`` when ``n_threads`` is None.

    So that fits run side by side do not each start a thread per core; the
    fitted estimators get their None back (:func:`_own_threads`), so that
    they predict with the cores there are then.
    """
    if n_threads is not None:
        _warn_oversubscribed(estimator, n_threads)
    keys = _thread_params(estimator) if n_threads is not None else []
    if not keys:
        return estimator, []
    return clone(estimator).set_params(**dict.fromkeys(keys, n_threads)), keys


def _warn_oversubscribed(estimator, n_threads):
    """Warn when ``estimator`` sets more ``n_threads`` than the ``n_threads``
    each of the fits run side by side gets: together they start more
    threads than there are cores."""
    explicit = [
        f"{key}={value}"
        for key, value in estimator.get_params(deep=True).items()
        if (key == "n_threads" or key.endswith("__n_threads"))
        and isinstance(value, numbers.Integral)
        and value > n_threads
    ]
    if explicit:
        warnings.warn(
            f"{type(estimator).__name__} is fitted side by side with other fits "
            f"in local processes, with {', '.join(explicit)}: together they "
            "start more threads than there are cores, which slows every fit "
            f"several times. Leave n_threads=None (each fit then gets "
            f"{n_threads}), or fit one at a time (n_jobs=1).",
            UserWarning,
            stacklevel=4,
        )


def _own_threads(fitted, keys):
    """Give the ``keys`` of a fitted estimator (from :func:`_sharing_cores`)
    back their None."""
    if keys and fitted is not None:
        fitted.set_params(**dict.fromkeys(keys))
    return fitted


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


def _base_name(name, estimator):
    """A base estimator as the error messages name it."""
    return f"{name!r} ({type(estimator).__name__})"


def _base_proba(estimator, X, target, *, owner, name):
    """Probabilities of a fitted base estimator as (n, n_outputs).

    Multilabel: P(label = 1) per label (:func:`~moa_sklearn.metrics.
    multilabel_proba`). 1-D targets: the columns of the estimator's
    ``classes_`` placed at the ``target.classes`` of the meta-estimator (0
    for a class the estimator did not see in its training rows).

    This is where every base estimator's output enters a meta-estimator of
    this package: it is checked here, once (shape, NaN/inf, [0, 1]), and an
    error names ``owner`` (the meta-estimator) and ``name`` (the base).
    """
    n_samples = _num_samples(X)
    raw = estimator.predict_proba(X)
    classes = target.classes
    if target.kind == "multilabel":
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
    out[:, np.searchsorted(classes, est_classes)] = proba
    return out


class _MetaClassifierMixin:
    """Target reading, ``predict`` and tags of the package's meta-classifiers.

    ``fit`` calls :meth:`_read_fit_data`, which stores the fitted
    :class:`~moa_sklearn.utils._target.TargetReader` as ``_target``;
    ``predict_proba`` ends with ``self._target.proba(...)``. Subclasses say
    what input they take in :meth:`_input_support`.
    """

    def _read_fit_data(self, X, y):
        """Check ``X`` and ``y`` for ``fit``: ``(X, y, Y)``.

        ``y`` is what the base estimators are given (see
        :meth:`~moa_sklearn.utils._target.TargetReader.as_given`), ``Y`` its
        0/1 float matrix, one column per output.
        """
        X = _check_X(self, X, reset=True)
        self._target = TargetReader(type(self).__name__)
        Y = self._target.fit_transform(y)
        check_consistent_length(X, Y)
        return X, self._target.as_given(y), Y

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
        proba = self.predict_proba(X)  # first: it checks that self is fitted
        return self._target.labels(proba)

    def _input_support(self):
        """``(sparse, allow_nan)``: the input the meta-estimator takes."""
        return False, False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse, tags.input_tags.allow_nan = self._input_support()
        return tags


class _WrapsOneEstimator(_MetaClassifierMixin):
    """Constraint, routing and tags of the meta-estimators around one ``estimator``."""

    _parameter_constraints = {"estimator": [HasMethods(["fit", "predict_proba"])]}

    def _routed_fit_params(self, fit_params):
        """The fit parameters for ``estimator.fit`` (see Notes of the class)."""
        if _routing_enabled():
            return process_routing(self, "fit", **fit_params).estimator.fit
        return fit_params

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

    def _input_support(self):
        inner = get_tags(self.estimator).input_tags
        return inner.sparse, inner.allow_nan
