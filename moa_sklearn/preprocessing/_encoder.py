"""One-hot encoding of the categorical columns, in place."""

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_array,
    check_is_fitted,
    validate_data,
)

from ..utils._validation import check_n_samples
from ._columns import (
    _SELECTOR,
    _DenseFiniteInputMixin,
    _numeric_errors,
    _resolve_columns,
)

# The error for strings in an array with columns="auto": most likely the raw
# lish-moa columns without their names.
_NO_COLUMN_NAMES = (
    "CategoricalEncoder (the 'encode' step of make_moa_features): {found}, but "
    "X is an array, which has no column names, so the categorical columns "
    "(cp_type, cp_time, cp_dose) and the g-/c- groups cannot be found by name. "
    "Pass a DataFrame with lish-moa's column names (as load_moa and make_moa "
    "return, or pd.DataFrame(X, columns=feature_names)), or give the columns "
    "explicitly: columns= (categorical= in make_moa_features) as column "
    "indices, and column_groups= as column indices of the encoded output."
)


def _column(X, j):
    return X.iloc[:, j].to_numpy() if isinstance(X, pd.DataFrame) else X[:, j]


def _categories(values):
    """The sorted distinct values of a column."""
    try:
        return np.unique(values)
    except TypeError:  # mixed types: sort by their text
        return np.asarray(sorted(set(values), key=str), dtype=object)


class CategoricalEncoder(_DenseFiniteInputMixin, TransformerMixin, BaseEstimator):
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

    # Not a OneHotEncoder(drop="if_binary") in a ColumnTransformer, which
    # would put the encoded columns first and the others after them (here
    # each column is encoded at its place), take NaN / None for one more
    # category (here an error), name the column of an unseen category by its
    # position in the encoder instead of its name, and reject a column that
    # mixes strings and numbers.

    _parameter_constraints = {
        "columns": [_SELECTOR],
        "drop": [StrOptions({"if_binary"}), None],
    }

    def __init__(self, columns="auto", drop=None):
        self.columns = columns
        self.drop = drop

    def _validate(self, X, reset):
        """X checked against ``fit`` (columns, names); a DataFrame stays one."""
        if isinstance(X, pd.DataFrame):
            check_n_samples(X, type(self).__name__)
            validate_data(self, X, skip_check_array=True, reset=reset)
            return X
        return validate_data(self, X, dtype=None, ensure_all_finite=False, reset=reset)

    def _rest(self):
        """Indices of the columns passed through."""
        return np.setdiff1d(np.arange(self.n_features_in_), self.columns_)

    def _numeric_rest(self, X):
        """The columns passed through, as float64, checked numeric and finite."""
        rest = self._rest()
        frame = isinstance(X, pd.DataFrame)
        part = X.iloc[:, rest] if frame else X[:, rest]
        with _numeric_errors(
            part,
            "CategoricalEncoder",
            lambda found: self._not_numeric_message(found, frame),
            positions=rest,
        ):
            return check_array(
                part,
                dtype=np.float64,
                ensure_min_features=0,
                input_name="X",
                estimator=self,
            )

    def _not_numeric_message(self, found, frame):
        """The error for strings in a column that is not encoded."""
        if not frame and isinstance(self.columns, str) and self.columns == "auto":
            return _NO_COLUMN_NAMES.format(found=found)
        hint = " (e.g. set sig_id as the index)" if frame else ""
        return (
            f"CategoricalEncoder encodes the columns {self._encoded_names()} "
            f"and needs the others numeric, but {found}: add them to "
            f"`columns`, or drop them{hint}."
        )

    def _encoded_names(self):
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return [int(j) for j in self.columns_]
        return [str(names[j]) for j in self.columns_]

    def _encoded_values(self, X):
        """``(index, name, values)`` of each encoded column, without missing
        values."""
        for j, where in zip(self.columns_, self._encoded_names()):
            values = _column(X, j)
            if pd.isna(values).any():
                raise ValueError(
                    f"CategoricalEncoder: column {where!r} contains missing values "
                    "(NaN/None); fill or drop them first."
                )
            yield j, where, values

    @_fit_context(prefer_skip_nested_validation=True)
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
        X = self._validate(X, reset=True)
        names = getattr(self, "feature_names_in_", None)
        self.columns_ = _resolve_columns(self.columns, names, X.shape[1], "columns")
        self._numeric_rest(X)  # checks numeric and finite
        self.categories_ = [
            _categories(values) for _, _, values in self._encoded_values(X)
        ]
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
        X = self._validate(X, reset=False)
        numeric = self._numeric_rest(X)
        blocks = {j: numeric[:, [k]] for k, j in enumerate(self._rest())}
        for (j, where, values), cats in zip(self._encoded_values(X), self.categories_):
            blocks[j] = self._one_hot(values, cats, where)
        if not blocks:
            return np.empty((numeric.shape[0], 0))
        return np.hstack([blocks[j] for j in range(self.n_features_in_)])

    def _one_hot(self, values, cats, where):
        codes = pd.Index(cats).get_indexer(values)
        if (codes < 0).any():
            unseen = pd.unique(np.asarray(values, dtype=object)[codes < 0])
            raise ValueError(
                f"CategoricalEncoder: column {where!r} has categories "
                f"{list(unseen)[:5]} that were not seen in fit (known: "
                f"{list(cats)})."
            )
        one_hot = np.zeros((len(codes), len(cats)), dtype=np.float64)
        one_hot[np.arange(len(codes)), codes] = 1.0
        return one_hot[:, self._kept(cats)]

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
        check_is_fitted(self, "categories_")
        names = _check_feature_names_in(self, input_features)
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
        return tags
