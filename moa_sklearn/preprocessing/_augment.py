"""Feature transformers of the lish-moa recipe, as scikit-learn transformers.

The public recipe turns the 875 raw columns of lish-moa (``cp_type``,
``cp_time``, ``cp_dose``, 772 gene columns ``g-*`` and 100 cell columns
``c-*``) into roughly 1,000-1,600 features:

1. :class:`CategoricalEncoder` one-hot encodes ``cp_type``, ``cp_time`` and
   ``cp_dose`` (in place), so that every later step sees numbers only;
2. :class:`RankGauss` maps each gene and cell column to a normal distribution
   by its ranks;
3. :class:`PCAFeatures` appends principal components (or factors) of the genes
   and of the cells;
4. :class:`VarianceSelector` drops the low-variance numeric columns, never the
   encoded ``cp_*`` columns;
5. :class:`KMeansFeatures` appends the KMeans cluster of each row (one-hot, or
   distances to the centres), per group;
6. :class:`RowStatistics` appends the sum, mean, std, skew and kurtosis of
   each row over the genes, the cells and both.

:func:`make_moa_features` returns these steps as one ``Pipeline``.

Column groups
-------------
Every transformer selects its columns with a ``groups`` parameter: a dict
``{group name: selector}`` where a selector is a regular expression searched
in the column names (``"^g-"``), a list of column names, or a list of column
indices (the way to select columns of an array). The group name appears in the
new feature names: ``pca_g_0``, ``kmeans_c_3``, ``stat_gc_mean``.

``groups="auto"`` (the default) means the lish-moa groups ``{"g": "^g-",
"c": "^c-"}``, keeping those that match a column. When ``X`` has no column
names (an array) or no column matches, all columns form one group named
``"all"``. An explicit selector that matches no column raises an error naming
it.

All transformers fit on the data given to ``fit`` only (no transductive
fitting on train + test): inside cross-validation folds nothing leaks.
"""

import numbers
import re
import warnings

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, FactorAnalysis
from sklearn.feature_selection import SelectorMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..utils._validation import (
    _non_numeric_array_columns,
    check_n_samples,
    nonfinite_error,
)

__all__ = [
    "CategoricalEncoder",
    "RankGauss",
    "PCAFeatures",
    "KMeansFeatures",
    "RowStatistics",
    "VarianceSelector",
    "make_moa_features",
]

# The lish-moa column groups used by ``groups="auto"``.
_AUTO_GROUPS = {"g": r"^g-", "c": r"^c-"}
# Name of the single group formed by all columns when "auto" finds no group.
_ALL_GROUP = "all"
# Recipe sizes used by ``n_components="auto"`` / ``n_clusters="auto"``.
_AUTO_N_COMPONENTS = {"g": 600, "c": 50}
_AUTO_N_COMPONENTS_OTHER = 50
_AUTO_N_CLUSTERS = {"g": 22, "c": 4}
_AUTO_N_CLUSTERS_OTHER = 8
# Columns that ``CategoricalEncoder`` encodes and ``VarianceSelector`` keeps.
_AUTO_CATEGORICAL = r"^cp_"
_STATISTICS = ("sum", "mean", "std", "skew", "kurtosis")


# --------------------------------------------------------------------------
# Shared helpers: column selection, validation, feature names
# --------------------------------------------------------------------------


def _resolve_selector(selector, feature_names, n_features, where):
    """Column indices (in column order of the selector) chosen by ``selector``.

    ``selector`` is a regular expression (str) searched in the column names, a
    list of column names, or a list of column indices. ``where`` names the
    parameter in error messages.
    """
    if isinstance(selector, str):
        if feature_names is None:
            raise ValueError(
                f"{where} is the column-name pattern {selector!r}, but X has no "
                "column names (it is an array): pass a DataFrame, or select the "
                "columns of an array by their indices, e.g. [0, 1, 2]."
            )
        try:
            regex = re.compile(selector)
        except re.error as exc:
            raise ValueError(
                f"{where}: {selector!r} is not a valid regular expression ({exc})."
            ) from None
        idx = [i for i, col in enumerate(feature_names) if regex.search(str(col))]
        if not idx:
            shown = ", ".join(map(repr, list(feature_names)[:5]))
            more = ", ..." if len(feature_names) > 5 else ""
            raise ValueError(
                f"{where}: the pattern {selector!r} matches no column of X "
                f"(columns: {shown}{more})."
            )
        return np.asarray(idx, dtype=np.intp)

    if isinstance(selector, (list, tuple, range, np.ndarray, pd.Index)):
        items = list(selector)
    else:
        raise TypeError(
            f"{where} must be a column-name pattern (str), a list of column names "
            f"or a list of column indices; got {type(selector).__name__}."
        )
    if not items:
        raise ValueError(f"{where} is an empty list: it selects no column.")
    if all(
        isinstance(i, numbers.Integral) and not isinstance(i, (bool, np.bool_))
        for i in items
    ):
        idx = np.asarray(items, dtype=np.intp)
        bad = idx[(idx < 0) | (idx >= n_features)]
        if bad.size:
            raise ValueError(
                f"{where}: column indices {bad.tolist()} are out of range for X "
                f"with {n_features} columns."
            )
    elif all(isinstance(i, str) for i in items):
        if feature_names is None:
            raise ValueError(
                f"{where} lists column names, but X has no column names (it is "
                "an array): select the columns of an array by their indices."
            )
        position = {col: i for i, col in enumerate(feature_names)}
        missing = [i for i in items if i not in position]
        if missing:
            raise ValueError(f"{where}: columns {missing} are not in X.")
        idx = np.asarray([position[i] for i in items], dtype=np.intp)
    else:
        raise TypeError(
            f"{where} must list either column names (str) or column indices "
            f"(int), not a mix or other types: got {items[:5]!r}."
        )
    if np.unique(idx).size != idx.size:
        raise ValueError(f"{where} selects some column more than once.")
    return idx


def _resolve_groups(groups, feature_names, n_features, *, union_name=None):
    """``{group name: column indices}`` from the ``groups`` parameter.

    With ``groups="auto"`` and a ``union_name``, a group of that name holding
    the columns of all the auto groups is added when more than one matched.
    """
    if isinstance(groups, str) and groups == "auto":
        found = {}
        if feature_names is not None:
            for name, pattern in _AUTO_GROUPS.items():
                regex = re.compile(pattern)
                idx = [i for i, c in enumerate(feature_names) if regex.search(str(c))]
                if idx:
                    found[name] = np.asarray(idx, dtype=np.intp)
        if not found:
            return {_ALL_GROUP: np.arange(n_features, dtype=np.intp)}
        if union_name is not None and len(found) > 1:
            found[union_name] = np.unique(np.concatenate(list(found.values())))
        return found
    if not isinstance(groups, dict):
        raise TypeError(
            "groups must be 'auto' or a dict {group name: column pattern, column "
            f"names or column indices}}; got {type(groups).__name__}."
        )
    if not groups:
        raise ValueError("groups is an empty dict: give at least one group.")
    resolved = {}
    for name, selector in groups.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"group names must be non-empty strings; got {name!r}.")
        resolved[name] = _resolve_selector(
            selector, feature_names, n_features, f"groups[{name!r}]"
        )
    return resolved


def _per_group(value, group_names, param, auto_table, auto_other):
    """A positive int per group from an 'auto' / int / dict parameter."""
    if isinstance(value, str) and value == "auto":
        return {g: auto_table.get(g, auto_other) for g in group_names}

    def _check(v, where):
        if (
            not isinstance(v, numbers.Integral)
            or isinstance(v, (bool, np.bool_))
            or v < 1
        ):
            raise ValueError(f"{where} must be a positive integer, got {v!r}.")
        return int(v)

    if isinstance(value, dict):
        missing = [g for g in group_names if g not in value]
        extra = [g for g in value if g not in group_names]
        if missing or extra:
            raise ValueError(
                f"{param} must give a value for each group {list(group_names)}; "
                f"missing {missing}, unknown {extra}."
            )
        return {g: _check(value[g], f"{param}[{g!r}]") for g in group_names}
    return {g: _check(value, param) for g in group_names}


def _check_choice(value, options, param):
    if not (isinstance(value, str) and value in options):
        raise ValueError(f"{param} must be one of {list(options)}, got {value!r}.")


def _non_numeric_columns(X):
    if not isinstance(X, pd.DataFrame):
        return []
    return [
        col
        for col, dtype in X.dtypes.items()
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype))
    ]


def _not_a_number(value):
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _validate_numeric(estimator, X, *, reset, copy=False):
    """validate_data for numeric, finite, dense X, with a clearer message for
    DataFrames that still hold string columns."""
    try:
        return validate_data(estimator, X, reset=reset, dtype=np.float64, copy=copy)
    except (ValueError, TypeError) as exc:
        named = nonfinite_error(exc, X, type(estimator).__name__)
        if named is not None:
            raise named from None
        non_numeric = _non_numeric_columns(X)
        if non_numeric:
            raise ValueError(
                f"{type(estimator).__name__} needs numeric columns, but "
                f"{non_numeric[:5]} are not numeric: encode them first with "
                "CategoricalEncoder (make_moa_features does), or drop them."
            ) from exc
        if not isinstance(X, pd.DataFrame):
            bad = _non_numeric_array_columns(X)
            if bad:
                raise ValueError(
                    f"{type(estimator).__name__} needs numeric columns, but "
                    f"column(s) {bad[:5]} of X hold non-numeric values (e.g. "
                    f"{np.asarray(X)[0, bad[0]]!r}): encode them first with "
                    "CategoricalEncoder (make_moa_features does), or drop them."
                ) from exc
        raise


def _names_in(estimator, input_features):
    """The input feature names, checked as get_feature_names_out must."""
    check_is_fitted(estimator, "n_features_in_")
    names_fit = getattr(estimator, "feature_names_in_", None)
    if input_features is None:
        if names_fit is not None:
            return np.asarray(names_fit, dtype=object)
        return np.asarray(
            [f"x{i}" for i in range(estimator.n_features_in_)], dtype=object
        )
    input_features = np.asarray(input_features, dtype=object)
    if names_fit is not None and not np.array_equal(input_features, names_fit):
        raise ValueError("input_features is not equal to feature_names_in_")
    if len(input_features) != estimator.n_features_in_:
        raise ValueError(
            "input_features should have length equal to number of features "
            f"({estimator.n_features_in_}), got {len(input_features)}"
        )
    return input_features


class _GroupTransformer(TransformerMixin, BaseEstimator):
    """Base of the numeric transformers: validation and column groups."""

    def _fit_groups(self, X, *, union_name=None):
        return _resolve_groups(
            self.groups,
            getattr(self, "feature_names_in_", None),
            X.shape[1],
            union_name=union_name,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class _AugmentingTransformer(_GroupTransformer):
    """Base of the transformers that append features to their input.

    Subclasses implement ``_fit_group(name, Xg)`` (store what is fitted),
    ``_transform_group(name, Xg)`` (new columns) and ``_new_names(name)``.
    """

    _union_name = None

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
        self._check_params()
        X = _validate_numeric(self, X, reset=True)
        groups = self._fit_groups(X, union_name=self._union_name)
        self._prepare(X, groups)
        for name, idx in groups.items():
            self._fit_group(name, X[:, idx])
        self.groups_ = groups
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
        check_is_fitted(self, "groups_")
        X = _validate_numeric(self, X, reset=False)
        blocks = [X]
        for name, idx in self.groups_.items():
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
        names = list(_names_in(self, input_features))
        check_is_fitted(self, "groups_")
        for name in self.groups_:
            names.extend(self._new_names(name))
        return np.asarray(names, dtype=object)

    def _check_params(self):
        pass

    def _prepare(self, X, groups):
        pass


# --------------------------------------------------------------------------
# Categorical encoding
# --------------------------------------------------------------------------


class CategoricalEncoder(TransformerMixin, BaseEstimator):
    """One-hot encode the categorical columns in place, pass the others through.

    The raw lish-moa frame holds three categorical columns: ``cp_type``
    (``trt_cp`` / ``ctl_vehicle``), ``cp_time`` (24, 48, 72) and ``cp_dose``
    (``D1`` / ``D2``). Each is replaced, at its position, by one 0/1 column per
    category seen in ``fit`` (sorted), named ``<column>_<category>``:
    ``cp_type_ctl_vehicle``, ``cp_type_trt_cp``, ``cp_time_24``, ``cp_time_48``,
    ``cp_time_72``, ``cp_dose_D1``, ``cp_dose_D2`` (only the categories seen
    in ``fit``: ``cp_type_ctl_vehicle`` exists only if a control row was
    seen; :class:`~moa_sklearn.ensemble.ControlVehicleClassifier` recognises
    control rows on the raw ``cp_type``). The other columns must be numeric and
    are passed through unchanged, so the output is all numeric (float64).

    A category not seen in ``fit`` raises an error at transform time that
    names the column and the category.

    Parameters
    ----------
    columns : 'auto', str or list, default='auto'
        The columns to encode. ``'auto'``: the columns whose names start with
        ``cp_`` (none for an array). Otherwise a column-name pattern, a list
        of column names, or a list of column indices (for arrays).
    drop : {None, 'if_binary'}, default=None
        ``None`` keeps one column per category. ``'if_binary'`` keeps a single
        indicator for a column with two categories: the column of the second
        category in sorted order (``cp_type_trt_cp``, ``cp_dose_D2``).

    Attributes
    ----------
    columns_ : ndarray of int
        Indices of the encoded columns.
    categories_ : list of ndarray
        The sorted categories of each encoded column, seen in ``fit``.
    n_features_in_ : int
        Number of columns seen in ``fit``.
    feature_names_in_ : ndarray of str
        Column names seen in ``fit`` (DataFrame input with string names).

    See Also
    --------
    sklearn.preprocessing.OneHotEncoder : General one-hot encoding.

    Examples
    --------
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import CategoricalEncoder
    >>> X = pd.DataFrame({"cp_type": ["trt_cp", "ctl_vehicle", "trt_cp"],
    ...                   "cp_time": [24, 48, 24], "g-0": [0.5, -1.0, 2.0]})
    >>> enc = CategoricalEncoder().fit(X)
    >>> enc.get_feature_names_out().tolist()
    ['cp_type_ctl_vehicle', 'cp_type_trt_cp', 'cp_time_24', 'cp_time_48', 'g-0']
    >>> enc.transform(X)
    array([[ 0. ,  1. ,  1. ,  0. ,  0.5],
           [ 1. ,  0. ,  0. ,  1. , -1. ],
           [ 0. ,  1. ,  1. ,  0. ,  2. ]])
    """

    def __init__(self, columns="auto", drop=None):
        self.columns = columns
        self.drop = drop

    def _validate(self, X, reset):
        """``(get_column, numeric passthrough array)`` of a checked X."""
        if isinstance(X, pd.DataFrame):
            check_n_samples(X, type(self).__name__)
            validate_data(self, X, skip_check_array=True, reset=reset)

            def get(j):
                return X.iloc[:, j].to_numpy()

            frame = X
        else:
            X = validate_data(self, X, dtype=None, ensure_all_finite=False, reset=reset)

            def get(j):
                return X[:, j]

            frame = None
        return X, frame, get

    def _numeric_rest(self, X, frame, rest):
        part = frame.iloc[:, rest] if frame is not None else X[:, rest]
        try:
            return check_array(
                part,
                dtype=np.float64,
                ensure_min_features=0,
                input_name="X",
                estimator=self,
            )
        except (ValueError, TypeError) as exc:
            named = nonfinite_error(exc, part, "CategoricalEncoder")
            if named is not None:
                raise named from None
            non_numeric = _non_numeric_columns(part)
            if non_numeric:
                raise ValueError(
                    f"CategoricalEncoder encodes the columns {self._encoded_names()}"
                    f" and needs the others numeric, but {non_numeric[:5]} are not:"
                    " add them to `columns`, or drop them (e.g. set sig_id as the "
                    "index)."
                ) from exc
            if frame is None:
                bad = _non_numeric_array_columns(part)
                if bad:
                    raise self._array_error(rest[bad], part[:, bad[0]]) from exc
            raise

    def _array_error(self, columns, values):
        """The error for string values in an array (no column names)."""
        example = next(
            (v for v in values if _not_a_number(v)), values[0] if len(values) else ""
        )
        found = (
            f"column(s) {columns[:5].tolist()} of X hold non-numeric values "
            f"(e.g. {example!r})"
        )
        if isinstance(self.columns, str) and self.columns == "auto":
            return ValueError(
                f"CategoricalEncoder (the 'encode' step of make_moa_features): "
                f"{found}, but X is an array, which has no column names, so "
                "the categorical columns (cp_type, cp_time, cp_dose) and the "
                "g-/c- groups cannot be found by name. Pass a DataFrame with "
                "lish-moa's column names (as load_moa and make_moa return, or "
                "pd.DataFrame(X, columns=feature_names)), or give the columns "
                "explicitly: columns= (categorical= in make_moa_features) as "
                "column indices, and groups= as column indices of the encoded "
                "output."
            )
        return ValueError(
            f"CategoricalEncoder encodes the columns {self._encoded_names()} and "
            f"needs the others numeric, but {found}: add them to `columns`."
        )

    def _encoded_names(self):
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [int(j) for j in self.columns_]
        return [str(names[j]) for j in self.columns_]

    @staticmethod
    def _check_missing(values, where):
        if pd.isna(values).any():
            raise ValueError(
                f"CategoricalEncoder: column {where} contains missing values "
                "(NaN/None); fill or drop them first."
            )

    def fit(self, X, y=None):
        """Learn the categories of each categorical column.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The raw features; categorical columns may hold strings.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted encoder.
        """
        if self.drop is not None:
            _check_choice(self.drop, ["if_binary"], "drop")
        X, frame, get = self._validate(X, reset=True)
        names = getattr(self, "feature_names_in_", None)
        n_features = X.shape[1]
        if isinstance(self.columns, str) and self.columns == "auto":
            if names is None:
                columns = np.empty(0, dtype=np.intp)
            else:
                regex = re.compile(_AUTO_CATEGORICAL)
                columns = np.asarray(
                    [i for i, c in enumerate(names) if regex.search(str(c))],
                    dtype=np.intp,
                )
        else:
            columns = np.sort(
                _resolve_selector(self.columns, names, n_features, "columns")
            )
        self.columns_ = columns
        rest = np.setdiff1d(np.arange(n_features), columns)
        self._numeric_rest(X, frame, rest)  # checks numeric and finite
        categories = []
        for j, where in zip(columns, self._encoded_names()):
            values = get(j)
            self._check_missing(values, repr(where))
            try:
                cats = np.unique(values)
            except TypeError:  # mixed types: sort by their text
                cats = np.asarray(sorted(set(values), key=str), dtype=object)
            categories.append(cats)
        self.categories_ = categories
        return self

    def transform(self, X):
        """One-hot encode the categorical columns, pass the others through.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The raw features with the columns seen in ``fit``.

        Returns
        -------
        X_out : ndarray of shape (n_samples, n_features_out)
            Float64 array; columns named by :meth:`get_feature_names_out`.
        """
        check_is_fitted(self, "categories_")
        X, frame, get = self._validate(X, reset=False)
        rest = np.setdiff1d(np.arange(self.n_features_in_), self.columns_)
        numeric = self._numeric_rest(X, frame, rest)
        blocks = {}
        encoded_names = self._encoded_names()
        for j, cats, where in zip(self.columns_, self.categories_, encoded_names):
            values = get(j)
            self._check_missing(values, repr(where))
            codes = pd.Index(cats).get_indexer(values)
            if (codes < 0).any():
                unseen = pd.unique(np.asarray(values, dtype=object)[codes < 0])
                raise ValueError(
                    f"CategoricalEncoder: column {where!r} has categories "
                    f"{list(unseen)[:5]} that were not seen in fit (known: "
                    f"{list(cats)})."
                )
            onehot = np.zeros((len(codes), len(cats)), dtype=np.float64)
            onehot[np.arange(len(codes)), codes] = 1.0
            blocks[j] = onehot[:, self._kept(cats)]
        for k, j in enumerate(rest):
            blocks[j] = numeric[:, k : k + 1]
        n_samples = numeric.shape[0]
        out = [blocks[j] for j in range(self.n_features_in_)]
        if not out:
            return np.empty((n_samples, 0))
        return np.hstack(out)

    def _kept(self, cats):
        if self.drop == "if_binary" and len(cats) == 2:
            return slice(1, 2)
        return slice(None)

    def get_feature_names_out(self, input_features=None):
        """Output names: ``<column>_<category>`` for encoded columns.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; by default ``feature_names_in_`` (or
            ``x0, x1, ...`` when fitted on an array).

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        names = _names_in(self, input_features)
        check_is_fitted(self, "categories_")
        cats_of = dict(zip(self.columns_.tolist(), self.categories_))
        out = []
        for j, name in enumerate(names):
            if j in cats_of:
                cats = cats_of[j][self._kept(cats_of[j])]
                out.extend(f"{name}_{c}" for c in cats)
            else:
                out.append(str(name))
        return np.asarray(out, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


# --------------------------------------------------------------------------
# RankGauss
# --------------------------------------------------------------------------


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
    groups : 'auto' or dict, default='auto'
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

    def __init__(
        self, groups="auto", n_quantiles=100, subsample=100_000, random_state=None
    ):
        self.groups = groups
        self.n_quantiles = n_quantiles
        self.subsample = subsample
        self.random_state = random_state

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
        if (
            not isinstance(self.n_quantiles, numbers.Integral)
            or isinstance(self.n_quantiles, bool)
            or self.n_quantiles < 2
        ):
            raise ValueError(
                f"n_quantiles must be an integer >= 2, got {self.n_quantiles!r}."
            )
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
        X[:, self.columns_] = self.quantile_transformer_.transform(X[:, self.columns_])
        return X


# --------------------------------------------------------------------------
# Augmenting transformers
# --------------------------------------------------------------------------


class PCAFeatures(_AugmentingTransformer):
    """Append the principal components (or factors) of each column group.

    For each group, a PCA (or a factor analysis, as in the winning lish-moa
    solution) is fitted on the group's columns and its components are
    appended to the input, named ``pca_<group>_<i>`` (``fa_<group>_<i>`` for
    factor analysis). The input columns pass through unchanged.

    Parameters
    ----------
    groups : 'auto' or dict, default='auto'
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
    groups_ : dict of str to ndarray of int
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

    def __init__(
        self, groups="auto", n_components="auto", method="pca", random_state=None
    ):
        self.groups = groups
        self.n_components = n_components
        self.method = method
        self.random_state = random_state

    def _check_params(self):
        _check_choice(self.method, ["pca", "factor_analysis"], "method")

    def _prepare(self, X, groups):
        wanted = _per_group(
            self.n_components,
            list(groups),
            "n_components",
            _AUTO_N_COMPONENTS,
            _AUTO_N_COMPONENTS_OTHER,
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
    groups : 'auto' or dict, default='auto'
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
    groups_ : dict of str to ndarray of int
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

    def __init__(
        self,
        groups="auto",
        n_clusters="auto",
        output="onehot",
        n_init="auto",
        random_state=None,
    ):
        self.groups = groups
        self.n_clusters = n_clusters
        self.output = output
        self.n_init = n_init
        self.random_state = random_state

    def _check_params(self):
        _check_choice(self.output, ["onehot", "distance"], "output")

    def _prepare(self, X, groups):
        wanted = _per_group(
            self.n_clusters,
            list(groups),
            "n_clusters",
            _AUTO_N_CLUSTERS,
            _AUTO_N_CLUSTERS_OTHER,
        )
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
    groups : 'auto' or dict, default='auto'
        The column groups. ``'auto'`` gives ``g`` (``^g-``), ``c`` (``^c-``)
        and ``gc`` (both) on a DataFrame, and one group ``all`` of all columns
        on an array (or a DataFrame without such columns). A dict maps group
        names to a column-name pattern, a list of names or a list of indices.
    stats : tuple of str, default=('sum', 'mean', 'std', 'skew', 'kurtosis')
        The statistics, any of those five, in output order.

    Attributes
    ----------
    groups_ : dict of str to ndarray of int
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

    def __init__(self, groups="auto", stats=_STATISTICS):
        self.groups = groups
        self.stats = stats

    def _check_params(self):
        stats = self.stats
        if isinstance(stats, str) or not isinstance(stats, (list, tuple)):
            raise TypeError(
                f"stats must be a tuple of names among {list(_STATISTICS)}; got "
                f"{stats!r}."
            )
        unknown = [s for s in stats if s not in _STATISTICS]
        if unknown or not stats or len(set(stats)) != len(stats):
            raise ValueError(
                f"stats must be distinct names among {list(_STATISTICS)}; got "
                f"{list(stats)}."
            )

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


# --------------------------------------------------------------------------
# Variance selection
# --------------------------------------------------------------------------


class VarianceSelector(SelectorMixin, BaseEstimator):
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

    def __init__(self, threshold=0.8, keep="auto"):
        self.threshold = threshold
        self.keep = keep

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
        if (
            not isinstance(self.threshold, numbers.Real)
            or isinstance(self.threshold, bool)
            or not self.threshold >= 0
        ):
            raise ValueError(
                f"threshold must be a non-negative number, got {self.threshold!r}."
            )
        X = _validate_numeric(self, X, reset=True)
        names = getattr(self, "feature_names_in_", None)
        if self.keep is None:
            keep = np.empty(0, dtype=np.intp)
        elif isinstance(self.keep, str) and self.keep == "auto":
            regex = re.compile(_AUTO_CATEGORICAL)
            names_or_none = [] if names is None else names
            keep = np.asarray(
                [i for i, c in enumerate(names_or_none) if regex.search(str(c))],
                dtype=np.intp,
            )
        else:
            keep = np.sort(_resolve_selector(self.keep, names, X.shape[1], "keep"))
        self.variances_ = np.var(X, axis=0)
        self.keep_ = keep
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


# --------------------------------------------------------------------------
# The recipe as one Pipeline
# --------------------------------------------------------------------------


def make_moa_features(
    *,
    groups="auto",
    n_quantiles=100,
    n_components="auto",
    decomposition="pca",
    variance_threshold=0.8,
    n_clusters="auto",
    cluster_output="onehot",
    stats=_STATISTICS,
    categorical="auto",
    drop=None,
    keep="auto",
    random_state=None,
):
    """The lish-moa public feature recipe as one scikit-learn ``Pipeline``.

    The steps, by name::

        encode    CategoricalEncoder    cp_type/cp_time/cp_dose -> 0/1 columns
        rankgauss RankGauss             g- and c- columns -> normal by rank
        pca       PCAFeatures           + pca_g_* (600), pca_c_* (50)
        variance  VarianceSelector      drop variance <= 0.8, keep cp_* columns
        kmeans    KMeansFeatures        + kmeans_g_* (22), kmeans_c_* (4)
        stats     RowStatistics         + stat_{g,c,gc}_{sum,mean,std,skew,kurtosis}

    The categorical columns are encoded first so that every later step works
    on numbers; the variance selection comes before the KMeans and row
    statistics features, as in the public notebooks, so that those (0/1 and
    small-variance) features are not dropped. On the lish-moa training data
    the 875 input columns become roughly 1,000-1,600. Control rows are best
    kept away from these steps: :func:`~moa_sklearn.recipes.make_moa_pipeline`
    puts them inside a :class:`~moa_sklearn.ensemble.ControlVehicleClassifier`,
    which recognises the control rows on the raw ``cp_type``.

    The pipeline's output is a pandas DataFrame (``set_output(transform=
    "pandas")``), which carries the column names from step to step: the
    steps find their groups by name. Each step's parameters can be tuned, e.g.
    ``GridSearchCV(..., {"features__pca__n_components": [{"g": 300, "c": 30},
    {"g": 600, "c": 50}], "features__kmeans__n_clusters": [8, 22]})``, and any
    step can be switched off with ``set_params(kmeans="passthrough")``.

    Everything is fitted on the data given to ``fit`` only (no transductive
    train + test fitting), so the pipeline is safe inside CV folds.

    Parameters
    ----------
    groups : 'auto' or dict, default='auto'
        Column groups of the RankGauss, PCA, KMeans and row-statistics steps
        (see :class:`PCAFeatures`). ``'auto'``: ``g`` (``^g-``), ``c``
        (``^c-``), and for row statistics also ``gc``. The input must be a
        DataFrame with column names.
    n_quantiles : int, default=100
        Quantiles of the RankGauss maps.
    n_components : 'auto', int or dict, default='auto'
        Components per group (``'auto'``: 600 genes, 50 cells).
    decomposition : {'pca', 'factor_analysis'}, default='pca'
        Method of the ``pca`` step.
    variance_threshold : float, default=0.8
        Threshold of the ``variance`` step.
    n_clusters : 'auto', int or dict, default='auto'
        Clusters per group (``'auto'``: 22 genes, 4 cells).
    cluster_output : {'onehot', 'distance'}, default='onehot'
        Output of the ``kmeans`` step.
    stats : tuple of str, default=('sum', 'mean', 'std', 'skew', 'kurtosis')
        Statistics of the ``stats`` step.
    categorical : 'auto', str or list, default='auto'
        Columns of the ``encode`` step, in the raw input (``'auto'``: names
        starting with ``cp_``).
    drop : {None, 'if_binary'}, default=None
        ``drop`` of the ``encode`` step.
    keep : 'auto', str, list or None, default='auto'
        Columns the ``variance`` step never drops, named as in its input,
        i.e. after encoding (``'auto'``: names starting with ``cp_``, which
        covers the encoded ``cp_type_*``, ``cp_time_*``, ``cp_dose_*``).
    random_state : int, RandomState instance or None, default=None
        Seed of every random step (RankGauss subsampling, PCA, KMeans).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Unfitted, with pandas output.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from moa_sklearn.preprocessing import make_moa_features
    >>> rng = np.random.RandomState(0)
    >>> n = 120
    >>> X = pd.concat([
    ...     pd.DataFrame({"cp_type": rng.choice(["trt_cp", "ctl_vehicle"], n),
    ...                   "cp_time": rng.choice([24, 48, 72], n),
    ...                   "cp_dose": rng.choice(["D1", "D2"], n)}),
    ...     pd.DataFrame(rng.normal(size=(n, 20)),
    ...                  columns=[f"g-{i}" for i in range(20)]),
    ...     pd.DataFrame(rng.normal(size=(n, 5)),
    ...                  columns=[f"c-{i}" for i in range(5)])], axis=1)
    >>> features = make_moa_features(n_components={"g": 4, "c": 2},
    ...                              n_clusters={"g": 3, "c": 2}, random_state=0)
    >>> Xt = features.fit_transform(X)
    >>> [c for c in Xt.columns if c.startswith("cp_type")]
    ['cp_type_ctl_vehicle', 'cp_type_trt_cp']
    >>> Xt.shape[1] > X.shape[1]
    True
    """
    pipeline = Pipeline(
        [
            ("encode", CategoricalEncoder(columns=categorical, drop=drop)),
            (
                "rankgauss",
                RankGauss(
                    groups=groups, n_quantiles=n_quantiles, random_state=random_state
                ),
            ),
            (
                "pca",
                PCAFeatures(
                    groups=groups,
                    n_components=n_components,
                    method=decomposition,
                    random_state=random_state,
                ),
            ),
            ("variance", VarianceSelector(threshold=variance_threshold, keep=keep)),
            (
                "kmeans",
                KMeansFeatures(
                    groups=groups,
                    n_clusters=n_clusters,
                    output=cluster_output,
                    random_state=random_state,
                ),
            ),
            ("stats", RowStatistics(groups=groups, stats=stats)),
        ]
    )
    return pipeline.set_output(transform="pandas")
