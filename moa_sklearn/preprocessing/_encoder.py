"""One-hot encoding of the categorical columns, in place."""

import re

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ..utils._validation import (
    _non_numeric_array_columns,
    check_n_samples,
    nonfinite_error,
)
from ._columns import (
    _AUTO_CATEGORICAL,
    _check_choice,
    _names_in,
    _non_numeric_columns,
    _not_a_number,
    _resolve_selector,
)


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
                "column indices, and column_groups= as column indices of the encoded "
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
