"""Transformers that append features per column group: PCA, KMeans, row statistics."""

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import _fit_context
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted

from ._columns import (
    _COUNT_PER_GROUP,
    _distinct_names,
    _GroupTransformer,
    _per_group,
    _validate_numeric,
)

# Recipe sizes used by ``n_components="auto"`` / ``n_clusters="auto"``:
# (per lish-moa group, for any other group).
_AUTO_N_COMPONENTS = ({"g": 600, "c": 50}, 50)
_AUTO_N_CLUSTERS = ({"g": 22, "c": 4}, 8)
_STATISTICS = ("sum", "mean", "std", "skew", "kurtosis")


class _AugmentingTransformer(_GroupTransformer):
    """Base of the transformers that append features to their input.

    Subclasses implement ``_fit_group(name, Xg)`` (store what is fitted),
    ``_transform_group(name, Xg)`` (new columns) and ``_new_names(name)``,
    and may implement ``_prepare(X, groups)`` (run once before the groups).
    """

    _union_name = None

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit on ``X`` (per group).

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
        groups = self._fit_groups(X, union_name=self._union_name)
        self._prepare(X, groups)
        for name, idx in groups.items():
            self._fit_group(name, X[:, idx])
        self.column_groups_ = groups
        return self

    def transform(self, X):
        """Append the new features to ``X``.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Numeric input with the columns seen in ``fit``, in the same order.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features + n_new_features)
            ``X`` followed by the new features, named by
            :meth:`get_feature_names_out`.
        """
        check_is_fitted(self, "column_groups_")
        X = _validate_numeric(self, X, reset=False)
        blocks = [X]
        for name, idx in self.column_groups_.items():
            blocks.append(self._transform_group(name, X[:, idx]))
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: the input names, then the new ones.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` (or
            ``x0, x1, ...`` when fitted on an array).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self, "column_groups_")
        names = list(_check_feature_names_in(self, input_features))
        for name in self.column_groups_:
            names.extend(self._new_names(name))
        return np.asarray(names, dtype=object)

    def _prepare(self, X, groups):
        pass


class PCAFeatures(_AugmentingTransformer):
    """Append the principal components (or factors) of each column group.

    For each group, a PCA (or a factor analysis, as in the winning lish-moa
    solution) is fitted on the group's columns and its components are
    appended to the input, named ``pca_<group>_<i>`` (``fa_<group>_<i>`` for
    factor analysis). The input columns pass through unchanged.

    Parameters
    ----------
    column_groups : 'auto' or dict, default='auto'
        The column groups: ``'auto'`` gives ``g`` (``^g-``) and ``c``
        (``^c-``) on a DataFrame, and one group ``all`` of all columns on an
        array (or a DataFrame without such columns). A dict maps group names
        to a column-name pattern, a list of names or a list of indices.
    n_components : 'auto', int or dict, default='auto'
        Components per group: an int for every group, or ``{group: int}``.
        ``'auto'``: the recipe's 600 for ``g`` and 50 for ``c`` (50 for other
        groups). Always capped by the group's number of columns and of rows.
    method : {'pca', 'factor_analysis'}, default='pca'
        ``PCA`` or ``FactorAnalysis`` from ``sklearn.decomposition``.
    random_state : int, RandomState instance or None, default=None
        Seed of the randomized solvers.

    Attributes
    ----------
    column_groups_ : dict of str to ndarray of int
        The column indices of each group.
    n_components_ : dict of str to int
        The number of components appended per group, after capping.
    decompositions_ : dict of str to estimator
        The fitted PCA / FactorAnalysis per group.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    See Also
    --------
    sklearn.decomposition.PCA, sklearn.decomposition.FactorAnalysis

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import PCAFeatures
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame(rng.normal(size=(100, 5)),
    ...                  columns=["g-0", "g-1", "g-2", "c-0", "c-1"])
    >>> pca = PCAFeatures(n_components={"g": 2, "c": 1}, random_state=0).fit(X)
    >>> pca.get_feature_names_out().tolist()
    ['g-0', 'g-1', 'g-2', 'c-0', 'c-1', 'pca_g_0', 'pca_g_1', 'pca_c_0']
    >>> pca.transform(X).shape
    (100, 8)
    """

    _parameter_constraints = {
        **_GroupTransformer._parameter_constraints,
        "n_components": _COUNT_PER_GROUP,
        "method": [StrOptions({"pca", "factor_analysis"})],
        "random_state": ["random_state"],
    }

    def __init__(
        self, column_groups="auto", n_components="auto", method="pca", random_state=None
    ):
        self.column_groups = column_groups
        self.n_components = n_components
        self.method = method
        self.random_state = random_state

    def _prepare(self, X, groups):
        wanted = _per_group(
            self.n_components, groups, "n_components", _AUTO_N_COMPONENTS
        )
        self.n_components_ = {
            g: min(n, X.shape[0], groups[g].size) for g, n in wanted.items()
        }
        self.decompositions_ = {}

    def _fit_group(self, name, Xg):
        n = self.n_components_[name]
        if self.method == "pca":
            est = PCA(n_components=n, random_state=self.random_state)
        else:
            est = FactorAnalysis(n_components=n, random_state=self.random_state)
        self.decompositions_[name] = est.fit(Xg)

    def _transform_group(self, name, Xg):
        return self.decompositions_[name].transform(Xg)

    def _new_names(self, name):
        prefix = "pca" if self.method == "pca" else "fa"
        return [f"{prefix}_{name}_{i}" for i in range(self.n_components_[name])]


class KMeansFeatures(_AugmentingTransformer):
    """Append the KMeans cluster of each row, per column group.

    For each group, KMeans is fitted on the group's columns; the appended
    features are the one-hot encoding of each row's cluster,
    ``kmeans_<group>_<k>`` (the lish-moa recipe), or the distances to the
    cluster centres, ``kmeans_<group>_dist_<k>``. The input columns pass
    through unchanged.

    Parameters
    ----------
    column_groups : 'auto' or dict, default='auto'
        The column groups: ``'auto'`` gives ``g`` (``^g-``) and ``c``
        (``^c-``) on a DataFrame, and one group ``all`` of all columns on an
        array (or a DataFrame without such columns). A dict maps group names
        to a column-name pattern, a list of names or a list of indices.
    n_clusters : 'auto', int or dict, default='auto'
        Clusters per group: an int for every group, or ``{group: int}``.
        ``'auto'``: the recipe's 22 for ``g`` and 4 for ``c`` (8 for other
        groups). Capped by the number of rows.
    output : {'onehot', 'distance'}, default='onehot'
        One-hot of the nearest centre, or the distances to all centres.
    n_init : 'auto' or int, default='auto'
        Number of KMeans initialisations (``KMeans(n_init=...)``).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.

    Attributes
    ----------
    column_groups_ : dict of str to ndarray of int
        The column indices of each group.
    n_clusters_ : dict of str to int
        The number of clusters per group, after capping.
    kmeans_ : dict of str to KMeans
        The fitted KMeans per group.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    See Also
    --------
    sklearn.cluster.KMeans

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import KMeansFeatures
    >>> rng = np.random.RandomState(0)
    >>> X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["g-0", "g-1", "c-0"])
    >>> km = KMeansFeatures(n_clusters={"g": 3, "c": 2}, random_state=0).fit(X)
    >>> km.get_feature_names_out().tolist()
    ['g-0', 'g-1', 'c-0', 'kmeans_g_0', 'kmeans_g_1', 'kmeans_g_2', 'kmeans_c_0', 'kmeans_c_1']
    >>> km.transform(X)[:, 3:].sum(axis=1)[:4]
    array([2., 2., 2., 2.])
    """  # noqa: E501

    _parameter_constraints = {
        **_GroupTransformer._parameter_constraints,
        "n_clusters": _COUNT_PER_GROUP,
        "output": [StrOptions({"onehot", "distance"})],
        "n_init": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        column_groups="auto",
        n_clusters="auto",
        output="onehot",
        n_init="auto",
        random_state=None,
    ):
        self.column_groups = column_groups
        self.n_clusters = n_clusters
        self.output = output
        self.n_init = n_init
        self.random_state = random_state

    def _prepare(self, X, groups):
        wanted = _per_group(self.n_clusters, groups, "n_clusters", _AUTO_N_CLUSTERS)
        self.n_clusters_ = {g: min(n, X.shape[0]) for g, n in wanted.items()}
        self.kmeans_ = {}

    def _fit_group(self, name, Xg):
        km = KMeans(
            n_clusters=self.n_clusters_[name],
            n_init=self.n_init,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            # fewer distinct points than clusters: KMeans warns, still fits
            warnings.filterwarnings("ignore", message="Number of distinct clusters")
            self.kmeans_[name] = km.fit(Xg)

    def _transform_group(self, name, Xg):
        km = self.kmeans_[name]
        if self.output == "distance":
            return km.transform(Xg)
        labels = km.predict(Xg)
        onehot = np.zeros((Xg.shape[0], self.n_clusters_[name]))
        onehot[np.arange(Xg.shape[0]), labels] = 1.0
        return onehot

    def _new_names(self, name):
        kind = "_dist" if self.output == "distance" else ""
        return [f"kmeans_{name}{kind}_{k}" for k in range(self.n_clusters_[name])]


class RowStatistics(_AugmentingTransformer):
    """Append row statistics (sum, mean, std, skew, kurtosis) per column group.

    For each group and each statistic, one column ``stat_<group>_<stat>`` is
    appended, e.g. ``stat_g_mean``, ``stat_gc_kurtosis``. Moments are the
    population ones: ``std`` with ``ddof=0``, ``skew`` the third standardised
    moment, ``kurtosis`` the excess (Fisher) kurtosis; a row that is constant
    over the group has skew and kurtosis 0. The input columns pass through
    unchanged. Nothing is learnt in ``fit`` but the groups.

    Parameters
    ----------
    column_groups : 'auto' or dict, default='auto'
        The column groups. ``'auto'`` gives ``g`` (``^g-``), ``c`` (``^c-``)
        and ``gc`` (both) on a DataFrame, and one group ``all`` of all columns
        on an array (or a DataFrame without such columns). A dict maps group
        names to a column-name pattern, a list of names or a list of indices.
    stats : tuple of str, default=('sum', 'mean', 'std', 'skew', 'kurtosis')
        The statistics, any of those five, in output order.

    Attributes
    ----------
    column_groups_ : dict of str to ndarray of int
        The column indices of each group.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    Examples
    --------
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import RowStatistics
    >>> X = pd.DataFrame({"g-0": [1.0, 0.0], "g-1": [3.0, 0.0], "c-0": [2.0, 5.0]})
    >>> rs = RowStatistics(stats=("sum", "mean")).set_output(transform="pandas")
    >>> Xt = rs.fit_transform(X)
    >>> Xt.columns.tolist()[3:]
    ['stat_g_sum', 'stat_g_mean', 'stat_c_sum', 'stat_c_mean', 'stat_gc_sum', 'stat_gc_mean']
    >>> Xt["stat_gc_mean"].round(3).tolist()
    [2.0, 1.667]
    """  # noqa: E501

    _union_name = "gc"
    _chunk_rows = 2048

    _parameter_constraints = {
        **_GroupTransformer._parameter_constraints,
        "stats": [_distinct_names(_STATISTICS)],
    }

    def __init__(self, column_groups="auto", stats=_STATISTICS):
        self.column_groups = column_groups
        self.stats = stats

    def _fit_group(self, name, Xg):
        pass

    def _transform_group(self, name, Xg):
        out = np.empty((Xg.shape[0], len(self.stats)))
        for start in range(0, Xg.shape[0], self._chunk_rows):
            rows = slice(start, start + self._chunk_rows)
            out[rows] = self._chunk_stats(Xg[rows])
        return out

    def _chunk_stats(self, Xg):
        mean = Xg.mean(axis=1)
        centred = Xg - mean[:, None]
        sq = centred * centred
        m2 = sq.mean(axis=1)
        flat = m2 <= 1e-24 * np.maximum(1.0, mean * mean)
        safe_m2 = np.where(flat, 1.0, m2)
        values = {}
        for stat in self.stats:
            if stat == "sum":
                values[stat] = Xg.sum(axis=1)
            elif stat == "mean":
                values[stat] = mean
            elif stat == "std":
                values[stat] = np.sqrt(m2)
            elif stat == "skew":
                m3 = (sq * centred).mean(axis=1)
                values[stat] = np.where(flat, 0.0, m3 / safe_m2**1.5)
            else:  # kurtosis
                m4 = (sq * sq).mean(axis=1)
                values[stat] = np.where(flat, 0.0, m4 / safe_m2**2 - 3.0)
        return np.column_stack([values[s] for s in self.stats])

    def _new_names(self, name):
        return [f"stat_{name}_{s}" for s in self.stats]
