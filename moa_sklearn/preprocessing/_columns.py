"""Column groups and selectors, and the validation shared by the transformers."""

import numbers
import re
from contextlib import contextmanager

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import validate_data

from ..utils._validation import _non_numeric_array_columns, nonfinite_error

# The lish-moa column groups used by ``column_groups="auto"``.
_AUTO_GROUPS = {"g": r"^g-", "c": r"^c-"}
# Name of the single group formed by all columns when "auto" finds no group.
_ALL_GROUP = "all"
# Columns that ``CategoricalEncoder`` encodes and ``VarianceSelector`` keeps.
_AUTO_CATEGORICAL = r"^cp_"


# --------------------------------------------------------------------------
# Parameter constraints
# --------------------------------------------------------------------------


class _Rule(Options):
    """A parameter constraint that scikit-learn's own classes cannot spell.

    ``make_constraint`` (what ``_parameter_constraints`` goes through) takes
    only scikit-learn's constraint classes, so a rule on the contents of a
    dict or a list is an ``Options`` whose test is ``predicate`` and whose
    text in the error message is ``description``.
    """

    def __init__(self, description, predicate):
        super().__init__(object, set())
        self.description = description
        self.predicate = predicate

    def is_satisfied_by(self, val):
        return self.predicate(val)

    def __str__(self):
        return self.description


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(
        value, (bool, np.bool_)
    )


def _is_selector(value):
    """A column-name pattern, or a non-empty list of names or of indices."""
    if isinstance(value, str):
        return True
    if not isinstance(value, (list, tuple, range, np.ndarray, pd.Index)):
        return False
    items = list(value)
    return bool(items) and (
        all(isinstance(i, str) for i in items) or all(_is_int(i) for i in items)
    )


def _is_group_dict(value):
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and k and _is_selector(v) for k, v in value.items())
    )


def _is_count_dict(value):
    return isinstance(value, dict) and all(
        isinstance(k, str) and _is_int(v) and v >= 1 for k, v in value.items()
    )


# a column-name pattern (``'auto'`` is one), a list of names or of indices
_SELECTOR = _Rule(
    "a column-name pattern (str) or a non-empty list of column names or of "
    "column indices",
    _is_selector,
)
_COLUMN_GROUPS = [
    StrOptions({"auto"}),
    _Rule(
        "a non-empty dict {group name: column-name pattern, or non-empty list "
        "of column names or of column indices}",
        _is_group_dict,
    ),
]
# n_components, n_clusters: 'auto', one count for every group, or one a group
_COUNT_PER_GROUP = [
    StrOptions({"auto"}),
    Interval(numbers.Integral, 1, None, closed="left"),
    _Rule("a dict {group name: int >= 1}", _is_count_dict),
]


def _distinct_names(options):
    """The constraint of a non-empty tuple of distinct names among ``options``."""

    def predicate(value):
        return (
            isinstance(value, (list, tuple))
            and bool(value)
            and all(isinstance(v, str) and v in options for v in value)
            and len(set(value)) == len(value)
        )

    return _Rule(
        f"a non-empty tuple of distinct names among {list(options)}", predicate
    )


# --------------------------------------------------------------------------
# Column selection
# --------------------------------------------------------------------------


def _matching(pattern, feature_names):
    """Indices of the column names in which ``pattern`` is found."""
    regex = re.compile(pattern)
    names = [] if feature_names is None else feature_names
    return np.asarray(
        [i for i, col in enumerate(names) if regex.search(str(col))], dtype=np.intp
    )


def _select_by_pattern(pattern, feature_names, where):
    if feature_names is None:
        raise ValueError(
            f"{where} is the column-name pattern {pattern!r}, but X has no "
            "column names (it is an array): pass a DataFrame, or select the "
            "columns of an array by their indices, e.g. [0, 1, 2]."
        )
    try:
        idx = _matching(pattern, feature_names)
    except re.error as exc:
        raise ValueError(
            f"{where}: {pattern!r} is not a valid regular expression ({exc})."
        ) from None
    if not idx.size:
        shown = ", ".join(map(repr, list(feature_names)[:5]))
        more = ", ..." if len(feature_names) > 5 else ""
        raise ValueError(
            f"{where}: the pattern {pattern!r} matches no column of X "
            f"(columns: {shown}{more})."
        )
    return idx


def _select_by_names(names, feature_names, where):
    if feature_names is None:
        raise ValueError(
            f"{where} lists column names, but X has no column names (it is "
            "an array): select the columns of an array by their indices."
        )
    position = {col: i for i, col in enumerate(feature_names)}
    missing = [name for name in names if name not in position]
    if missing:
        raise ValueError(f"{where}: columns {missing} are not in X.")
    return np.asarray([position[name] for name in names], dtype=np.intp)


def _select_by_indices(indices, n_features, where):
    idx = np.asarray(indices, dtype=np.intp)
    bad = idx[(idx < 0) | (idx >= n_features)]
    if bad.size:
        raise ValueError(
            f"{where}: column indices {bad.tolist()} are out of range for X "
            f"with {n_features} columns."
        )
    return idx


def _resolve_selector(selector, feature_names, n_features, where):
    """Column indices (in column order of the selector) chosen by ``selector``.

    ``selector`` satisfies ``_SELECTOR``: a regular expression (str) searched
    in the column names, a list of column names, or a list of column indices.
    ``where`` names the parameter in error messages.
    """
    if isinstance(selector, str):
        return _select_by_pattern(selector, feature_names, where)
    items = list(selector)
    if isinstance(items[0], str):
        idx = _select_by_names(items, feature_names, where)
    else:
        idx = _select_by_indices(items, n_features, where)
    if np.unique(idx).size != idx.size:
        raise ValueError(f"{where} selects some column more than once.")
    return idx


def _resolve_columns(columns, feature_names, n_features, where):
    """Sorted column indices of ``columns`` (``CategoricalEncoder.columns``,
    ``VarianceSelector.keep``): ``'auto'`` is the names starting with
    ``cp_`` (none for an array), None is no column."""
    if columns is None:
        return np.empty(0, dtype=np.intp)
    if isinstance(columns, str) and columns == "auto":
        return _matching(_AUTO_CATEGORICAL, feature_names)
    return np.sort(_resolve_selector(columns, feature_names, n_features, where))


def _resolve_groups(column_groups, feature_names, n_features, *, union_name=None):
    """``{group name: column indices}`` from the ``column_groups`` parameter.

    With ``column_groups="auto"`` and a ``union_name``, a group of that name
    holding the columns of all the auto groups is added when more than one
    matched.
    """
    if isinstance(column_groups, dict):
        return {
            name: _resolve_selector(
                selector, feature_names, n_features, f"column_groups[{name!r}]"
            )
            for name, selector in column_groups.items()
        }
    found = {}
    for name, pattern in _AUTO_GROUPS.items():
        idx = _matching(pattern, feature_names)
        if idx.size:
            found[name] = idx
    if not found:
        return {_ALL_GROUP: np.arange(n_features, dtype=np.intp)}
    if union_name is not None and len(found) > 1:
        found[union_name] = np.unique(np.concatenate(list(found.values())))
    return found


def _per_group(value, groups, param, auto):
    """A count per group from a parameter satisfying ``_COUNT_PER_GROUP``;
    ``auto`` is ``({group: count}, count of any other group)``."""
    if isinstance(value, str):  # "auto"
        table, other = auto
        return {g: table.get(g, other) for g in groups}
    if not isinstance(value, dict):
        return dict.fromkeys(groups, int(value))
    missing = [g for g in groups if g not in value]
    extra = [g for g in value if g not in groups]
    if missing or extra:
        raise ValueError(
            f"{param} must give a value for each group {list(groups)}; "
            f"missing {missing}, unknown {extra}."
        )
    return {g: int(value[g]) for g in groups}


# --------------------------------------------------------------------------
# Numeric input
# --------------------------------------------------------------------------


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


def _non_numeric_found(X, positions=None):
    """Which columns of ``X`` hold strings, in words; None when none does.

    By name for a DataFrame; by index for an array, mapped through
    ``positions`` when ``X`` holds those columns of the input.
    """
    names = _non_numeric_columns(X)
    if names:
        return f"{names[:5]} are not numeric"
    bad = _non_numeric_array_columns(X)
    if not bad:
        return None
    values = np.asarray(X)[:, bad[0]]
    example = next((v for v in values if _not_a_number(v)), values[0])
    if positions is not None:
        bad = np.asarray(positions)[bad].tolist()
    return f"column(s) {bad[:5]} of X hold non-numeric values (e.g. {example!r})"


@contextmanager
def _numeric_errors(X, owner, message, positions=None):
    """Clear errors for a float64 validation of ``X`` run in the block.

    NaN or infinity: the columns are named. String values: ``message(found)``
    with ``found`` from :func:`_non_numeric_found`. Anything else as raised.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        named = nonfinite_error(exc, X, owner)
        if named is not None:
            raise named from None
        found = _non_numeric_found(X, positions)
        if found is None:
            raise
        raise ValueError(message(found)) from exc


def _validate_numeric(estimator, X, *, reset, copy=False):
    """validate_data for numeric, finite, dense X, with a clearer message for
    input that still holds string columns."""
    owner = type(estimator).__name__

    def message(found):
        return (
            f"{owner} needs numeric columns, but {found}: encode them first "
            "with CategoricalEncoder (make_moa_features does), or drop them."
        )

    with _numeric_errors(X, owner, message):
        return validate_data(estimator, X, reset=reset, dtype=np.float64, copy=copy)


class _DenseFiniteInputMixin:
    """Tags of the transformers here: no NaN, no sparse input."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags


class _GroupTransformer(_DenseFiniteInputMixin, TransformerMixin, BaseEstimator):
    """Base of the transformers that work on column groups."""

    _parameter_constraints = {"column_groups": _COLUMN_GROUPS}

    def _fit_groups(self, X, *, union_name=None):
        return _resolve_groups(
            self.column_groups,
            getattr(self, "feature_names_in_", None),
            X.shape[1],
            union_name=union_name,
        )
