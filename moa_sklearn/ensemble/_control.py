"""ControlVehicleClassifier: the one place where control rows are handled.

How a control row is recognised (:meth:`ControlVehicleClassifier.control_mask`)
and what it is predicted (``ControlVehicleClassifier._control_row``, used by
``predict_proba``, ``predict`` and ``transform``) is written here only.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MetaEstimatorMixin,
    _fit_context,
    clone,
)
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import (
    _check_method_params,
    _num_samples,
    check_is_fitted,
)

from ._base import _base_proba, _check_X, _WrapsOneEstimator


def _estimator_has(attr):
    """For ``available_if``: the (fitted, else given) estimator has ``attr``."""

    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), attr)

    return check


def _frame_column(X, column):
    """The values of ``column`` (a name, or an index) of the DataFrame ``X``."""
    if not isinstance(column, str) and column not in X.columns:
        return X.iloc[:, column].to_numpy()
    if column not in X.columns:
        raise ValueError(
            f"The control column {column!r} is not in X. Its columns "
            f"start with {list(X.columns[:8])}. Pass column= the name "
            "of the column that marks control rows (e.g. 'cp_type' "
            "on the raw data, 'cp_type_ctl_vehicle' after "
            "make_moa_features), or column=None."
        )
    return X[column].to_numpy()


def _array_column(X, column):
    """The values of column ``column`` (an index) of an array or sparse ``X``."""
    if isinstance(column, str):
        raise ValueError(
            f"The control column {column!r} is a name, but X has no "
            "column names (it is not a DataFrame). Pass a DataFrame, "
            "a column index, or column=None."
        )
    if not sp.issparse(X):
        X = np.asarray(X)
    if X.ndim != 2 or not -X.shape[1] <= column < X.shape[1]:
        raise ValueError(
            f"The control column index {column} is out of range for X "
            f"of shape {X.shape}."
        )
    if sp.issparse(X):
        return X.tocsc()[:, [column]].toarray()[:, 0]
    return X[:, column]


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
        The classes (1-D ``y``) or ``arange(n_labels)`` (2-D ``y``).
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
    the rest (so ``control_proba`` must be below ``1 / n_classes``). For an
    ``estimator`` with per-model probabilities (:meth:`transform`, e.g. a
    :class:`StackingBlend` or a ``Pipeline`` ending in one), the control
    rows get the same in every model's block. With metadata routing enabled, fit
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

    _parameter_constraints = {
        **_WrapsOneEstimator._parameter_constraints,
        "column": [str, Integral, None],
        "control": "no_validation",
        "control_proba": [Interval(Real, 0, 0.5, closed="neither")],
    }

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
        if self.column is None:
            return np.zeros(_num_samples(X), dtype=bool)
        if isinstance(X, pd.DataFrame):
            values = _frame_column(X, self.column)
        else:
            values = _array_column(X, self.column)
        return np.asarray(values == self.control, dtype=bool)

    def _control_row(self):
        """What a control row is predicted: the one rule.

        ``control_proba`` for every output; for a 1-D ``y``, the first class
        of ``classes_`` gets the rest (it stays the most probable: fit checks
        that ``control_proba < 1 / n_classes``).
        """
        row = np.full(self._target.n_outputs, float(self.control_proba))
        if self._target.kind != "multilabel":
            row[0] = 1.0 - row[1:].sum()
        return row

    def _check_control_proba(self):
        """``control_proba`` against the classes of a 1-D ``y``."""
        n_classes = self._target.n_outputs
        if self._target.kind != "multilabel" and self.control_proba * n_classes >= 1:
            raise ValueError(
                f"control_proba={self.control_proba!r} is too large for "
                f"{n_classes} classes: a control row gets it for every class but "
                "the first, which must stay the most probable; it must be below "
                f"1 / {n_classes}."
            )

    def _treated_and_controls(self, X, method, control_value):
        """``method`` of the treated rows, ``control_value`` on the control rows.

        ``method`` (a method of ``estimator_``) never sees a control row.
        """
        mask = self.control_mask(X)
        if not mask.any():
            return method(X)
        out = np.repeat(np.asarray(control_value)[None], mask.size, axis=0)
        treated = np.flatnonzero(~mask)
        if treated.size:
            inner = np.asarray(method(_safe_indexing(X, treated)))
            out = out.astype(np.result_type(out, inner), copy=False)
            out[treated] = inner
        return out

    # the estimator validates its own parameters
    @_fit_context(prefer_skip_nested_validation=False)
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
        X, y, _ = self._read_fit_data(X, y)
        self._check_control_proba()
        params = self._routed_fit_params(fit_params)
        mask = self.control_mask(X)
        if mask.all():
            raise ValueError(
                f"Every row is a control row ({self.column!r} == "
                f"{self.control!r}); there is nothing to fit."
            )
        if mask.any():
            treated = np.flatnonzero(~mask)
            X, y, params = (
                _safe_indexing(X, treated),
                _safe_indexing(y, treated),
                _check_method_params(X, params, indices=treated),
            )
        self.n_controls_ = int(mask.sum())
        self.estimator_ = clone(self.estimator).fit(X, y, **params)
        self.classes_ = self._target.classes
        return self

    def _inner_proba(self, X):
        return _base_proba(
            self.estimator_,
            X,
            self._target,
            owner=type(self).__name__,
            name=f"({type(self.estimator_).__name__})",
        )

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
            array), kept inside (0, 1); ``control_proba`` for every label of
            the control rows, which ``estimator_`` never sees. For a 1-D
            target see the Notes of the class.
        """
        check_is_fitted(self, "estimator_")
        X = _check_X(self, X, reset=False)
        proba = self._treated_and_controls(X, self._inner_proba, self._control_row())
        return self._target.proba(proba)

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
            For a control row: the labels of its probabilities (every label
            0; for a 1-D ``y`` the first class of ``classes_``).
        """
        check_is_fitted(self, "estimator_")
        X = _check_X(self, X, reset=False)
        control_labels = self._target.labels(self._control_row()[None])[0]
        return self._treated_and_controls(X, self.estimator_.predict, control_labels)

    @available_if(_estimator_has("transform"))
    def transform(self, X):
        """The estimator's per-model probabilities, the control rule applied.

        For an ``estimator`` whose ``transform`` gives probabilities in blocks
        of ``n_outputs`` columns, one block per model: a
        :class:`StackingBlend`, or a ``Pipeline`` that ends in one (as in
        :func:`~moa_sklearn.recipes.make_moa_pipeline`). The treated rows
        get ``estimator_.transform``; a control row gets, in every block,
        what :meth:`predict_proba` gives it. Only available when
        ``estimator`` has ``transform`` and ``get_feature_names_out``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_models * n_outputs)
            E.g. ``transform(X).reshape(n_samples, n_models, n_outputs)``
            for a blend of ``n_models`` classifiers.
        """
        check_is_fitted(self, "estimator_")
        X = _check_X(self, X, reset=False)
        row = self._control_row()
        n_models, rest = divmod(len(self.get_feature_names_out()), row.size)
        if rest:
            raise ValueError(
                f"{type(self).__name__}.transform: the transform of "
                f"{type(self.estimator_).__name__} has "
                f"{n_models * row.size + rest} columns, not blocks of "
                f"n_outputs={row.size} probabilities (one per model)."
            )
        return self._treated_and_controls(
            X, self.estimator_.transform, np.tile(row, n_models)
        )

    @available_if(_estimator_has("get_feature_names_out"))
    def get_feature_names_out(self, input_features=None):
        """The names of the columns of :meth:`transform` (the estimator's).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Passed to ``estimator_.get_feature_names_out``.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "estimator_")
        return self.estimator_.get_feature_names_out(input_features)
