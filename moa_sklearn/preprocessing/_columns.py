"""Column groups and selectors, and the validation shared by the transformers."""

import numbers
import re

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils._validation import _non_numeric_array_columns, nonfinite_error

# The lish-moa column groups used by ``column_groups="auto"``.
_AUTO_GROUPS = {"g": r"^g-", "c": r"^c-"}
# Name of the single group formed by all columns when "auto" finds no group.
_ALL_GROUP = "all"
# Columns that ``CategoricalEncoder`` encodes and ``VarianceSelector`` keeps.
_AUTO_CATEGORICAL = r"^cp_"


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
    """``{group name: column indices}`` from the ``column_groups`` parameter.

    With ``column_groups="auto"`` and a ``union_name``, a group of that name holding
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
            "column_groups must be 'auto' or a dict {group name: column pattern, "
            f"column names or column indices}}; got {type(groups).__name__}."
        )
    if not groups:
        raise ValueError("column_groups is an empty dict: give at least one group.")
    resolved = {}
    for name, selector in groups.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"group names must be non-empty strings; got {name!r}.")
        resolved[name] = _resolve_selector(
            selector, feature_names, n_features, f"column_groups[{name!r}]"
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
            self.column_groups,
            getattr(self, "feature_names_in_", None),
            X.shape[1],
            union_name=union_name,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags
