"""Variance selection that never drops the encoded categorical columns."""

import warnings
from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.feature_selection import SelectorMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._columns import (
    _SELECTOR,
    _DenseFiniteInputMixin,
    _resolve_columns,
    _validate_numeric,
)


class VarianceSelector(_DenseFiniteInputMixin, SelectorMixin, BaseEstimator):
    """Drop the numeric columns of low variance, never the kept columns.

    Like scikit-learn's ``VarianceThreshold`` (a column is kept when its
    variance on the ``fit`` data is greater than ``threshold``), except that
    the columns named by ``keep`` are always kept: by default the encoded
    ``cp_type`` / ``cp_time`` / ``cp_dose`` columns, whose 0/1 variance is
    always below the recipe's 0.8. Column order is preserved.

    Parameters
    ----------
    threshold : float, default=0.8
        Columns with a variance not greater than this are dropped (the
        lish-moa recipe's 0.8; ``0.0`` drops only constant columns).
    keep : 'auto', str, list or None, default='auto'
        Columns never dropped. ``'auto'``: those whose names start with
        ``cp_`` (none for an array, or if none matches). Otherwise a
        column-name pattern, a list of column names, or a list of column
        indices (arrays); ``None`` keeps nothing special.

    Attributes
    ----------
    variances_ : ndarray of shape (n_features,)
        Variance of each column on the ``fit`` data.
    keep_ : ndarray of int
        Indices of the columns kept whatever their variance.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    See Also
    --------
    sklearn.feature_selection.VarianceThreshold

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import VarianceSelector
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"cp_dose_D1": [0, 1] * 50,
    ...                   "g-0": rng.normal(scale=2, size=100),
    ...                   "g-1": rng.normal(scale=0.1, size=100)})
    >>> VarianceSelector(threshold=0.8).fit(X).get_feature_names_out().tolist()
    ['cp_dose_D1', 'g-0']
    """

    _parameter_constraints = {
        "threshold": [Interval(Real, 0, None, closed="left")],
        "keep": [_SELECTOR, None],
    }

    def __init__(self, threshold=0.8, keep="auto"):
        self.threshold = threshold
        self.keep = keep

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the column variances on ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric input.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted selector.
        """
        X = _validate_numeric(self, X, reset=True)
        names = getattr(self, "feature_names_in_", None)
        self.keep_ = _resolve_columns(self.keep, names, X.shape[1], "keep")
        self.variances_ = np.var(X, axis=0)
        return self

    def _get_support_mask(self):
        check_is_fitted(self, "variances_")
        mask = self.variances_ > self.threshold
        mask[self.keep_] = True
        return mask

    def transform(self, X):
        """Keep the selected columns of ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric input with the columns seen in ``fit``, in the same order.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_selected_features)
        """
        check_is_fitted(self, "variances_")
        X = _validate_numeric(self, X, reset=False)
        mask = self._get_support_mask()
        if not mask.any():
            warnings.warn(
                f"VarianceSelector: no column has a variance above threshold="
                f"{self.threshold}; the output has no columns.",
                UserWarning,
                stacklevel=2,
            )
        return X[:, mask]
