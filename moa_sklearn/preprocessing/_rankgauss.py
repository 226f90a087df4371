"""RankGauss: each selected column mapped to a normal distribution by its ranks."""

from numbers import Integral

import numpy as np
from scipy.special import ndtri
from sklearn.base import OneToOneFeatureMixin, _fit_context
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ._columns import _GroupTransformer, _validate_numeric

# scikit-learn's QuantileTransformer: a value within this of a column's lowest
# (highest) training quantile maps to its lowest (highest) normal score
_BOUNDS_THRESHOLD = 1e-7


def _normal_block(X, qt, start, stop):
    """Columns ``start:stop`` of :func:`_normal_scores`, in place.

    The block is copied to column-major order first: each column's passes
    (bounds, interpolations) then read contiguous memory instead of one value
    per row of ``X``.
    """
    refs = qt.references_
    block = np.asfortranarray(X[:, start:stop])
    with np.errstate(invalid="ignore"):
        for k, j in enumerate(range(start, stop)):
            col, q = block[:, k], qt.quantiles_[:, j]
            lower = col - _BOUNDS_THRESHOLD < q[0]
            upper = col + _BOUNDS_THRESHOLD > q[-1]
            finite = ~np.isnan(col)
            x = col[finite]
            col[finite] = 0.5 * (
                np.interp(x, q, refs) - np.interp(-x, -q[::-1], -refs[::-1])
            )
            col[upper] = 1
            col[lower] = 0
    bound = _BOUNDS_THRESHOLD - np.spacing(1)
    ndtri(block, out=block)
    np.clip(block, ndtri(bound), ndtri(1 - bound), out=block)
    X[:, start:stop] = block


def _normal_scores(qt, X):
    """``qt.transform(X)`` of a fitted ``QuantileTransformer(
    output_distribution="normal")``, the same numbers, in place.

    scikit-learn maps each column through the normal quantile function in
    its own call (``scipy.stats.norm.ppf``, plus two for the clip bounds):
    with lish-moa's 872 columns that was most of the prediction time of the
    features. Here the per-column part is the interpolation only, and the
    quantile function (``ndtri``, what ``norm.ppf`` computes) and the clip
    run once over a block of columns; the blocks are spread over threads
    (NumPy's interpolation and SciPy's ufuncs release the GIL), as many as
    OpenMP would use, as scikit-learn's own threaded code.
    """
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    n_columns = X.shape[1]
    n_threads = min(_openmp_effective_n_threads(), max(1, n_columns // 64))
    if n_threads > 1 and X.shape[0] >= 256:
        from concurrent.futures import ThreadPoolExecutor

        edges = np.linspace(0, n_columns, n_threads + 1).astype(int)
        with ThreadPoolExecutor(n_threads) as pool:
            done = [
                pool.submit(_normal_block, X, qt, a, b)
                for a, b in zip(edges[:-1], edges[1:])
            ]
            for future in done:
                future.result()
    else:
        _normal_block(X, qt, 0, n_columns)
    return X


class RankGauss(OneToOneFeatureMixin, _GroupTransformer):
    """Map the selected columns to a normal distribution by their ranks.

    Each selected column is transformed with its own quantile map to the
    standard normal (scikit-learn's ``QuantileTransformer`` with
    ``output_distribution="normal"``), the "RankGauss" of the lish-moa
    notebooks. The map is rank preserving and learnt on the data given to
    ``fit`` only. The other columns (e.g. encoded ``cp_*`` columns) pass
    through unchanged, so the output has the input's columns, in order.

    Parameters
    ----------
    column_groups : 'auto' or dict, default='auto'
        The columns to transform: the union of the groups. ``'auto'``: the
        ``g-`` and ``c-`` columns of a DataFrame, or all columns of an array
        (or of a DataFrame without such columns). A dict maps group names to a
        column-name pattern, a list of names or a list of indices (arrays).
    n_quantiles : int, default=100
        Number of quantiles of each map (capped by the number of rows used).
    subsample : int or None, default=100_000
        Maximum number of rows used to estimate the quantiles; more rows are
        subsampled at random (``random_state``). ``None``: all rows. The
        default uses all 23,814 rows of lish-moa.
    random_state : int, RandomState instance or None, default=None
        Seed of the subsampling.

    Attributes
    ----------
    columns_ : ndarray of int
        Indices of the transformed columns.
    quantile_transformer_ : QuantileTransformer
        The fitted quantile maps of those columns.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    See Also
    --------
    sklearn.preprocessing.QuantileTransformer : The per-column quantile map.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import RankGauss
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame({"g-0": rng.exponential(size=200),
    ...                   "c-0": rng.uniform(size=200), "cp_time_24": 1.0})
    >>> Xt = RankGauss(random_state=0).set_output(transform="pandas").fit_transform(X)
    >>> Xt.columns.tolist()
    ['g-0', 'c-0', 'cp_time_24']
    >>> bool(abs(Xt["g-0"].mean()) < 0.1), bool(Xt["cp_time_24"].eq(1).all())
    (True, True)
    """

    _parameter_constraints = {
        **_GroupTransformer._parameter_constraints,
        "n_quantiles": [Interval(Integral, 2, None, closed="left")],
        "subsample": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        column_groups="auto",
        n_quantiles=100,
        subsample=100_000,
        random_state=None,
    ):
        self.column_groups = column_groups
        self.n_quantiles = n_quantiles
        self.subsample = subsample
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the quantiles of each selected column.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric input.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted transformer.
        """
        X = _validate_numeric(self, X, reset=True)
        groups = self._fit_groups(X)
        columns = np.unique(np.concatenate(list(groups.values())))
        n_rows = (
            X.shape[0] if self.subsample is None else min(X.shape[0], self.subsample)
        )
        qt = QuantileTransformer(
            n_quantiles=max(1, min(self.n_quantiles, n_rows)),
            output_distribution="normal",
            subsample=self.subsample,
            random_state=self.random_state,
        )
        qt.fit(X[:, columns])
        self.columns_ = columns
        self.quantile_transformer_ = qt
        return self

    def transform(self, X):
        """Map the selected columns to the normal distribution.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric input with the columns seen in ``fit``, in the same order.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self, "quantile_transformer_")
        X = _validate_numeric(self, X, reset=False, copy=True)
        X[:, self.columns_] = _normal_scores(
            self.quantile_transformer_, X[:, self.columns_]
        )
        return X
