"""Validation shared by the classifiers of the package (nets, blend, wrappers)."""

from numbers import Real

import numpy as np
import pandas as pd

from ..metrics import PROBA_EPS


def clip_bounds(clip):
    """The bounds of a ``clip`` parameter, always inside ``[PROBA_EPS, 1 - PROBA_EPS]``.

    ``clip`` is None or a pair (low, high) with ``0 <= low < high <= 1`` (a
    ``ValueError`` says so otherwise); the nets and the blend share this rule,
    which ``_parameter_constraints`` cannot say.
    """
    if clip is None:
        return PROBA_EPS, 1 - PROBA_EPS
    if not (
        len(clip) == 2
        and all(isinstance(c, Real) and not isinstance(c, bool) for c in clip)
        and 0 <= clip[0] < clip[1] <= 1
    ):
        raise ValueError(
            f"clip must be None or a pair (low, high) with 0 <= low < high <= 1, "
            f"got {clip!r}."
        )
    return max(clip[0], PROBA_EPS), min(clip[1], 1 - PROBA_EPS)


def _as_array(a):
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return a.to_numpy()
    return np.asarray(a)


def check_n_samples(X, owner):
    """Raise scikit-learn's error for a DataFrame (or array) with no rows.

    ``validate_data`` says "Found array with 0 sample(s)" for arrays; the
    DataFrame paths that skip it (meta-estimators that pass a raw DataFrame
    on, the categorical encoder) call this so that the same words, naming
    ``owner``, come from the estimator the user called.
    """
    if X.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            f"minimum of 1 is required by {owner}."
        )


def _non_numeric_array_columns(X):
    """Indices of the columns of an object / string array that hold strings.

    [] for anything else (a DataFrame, a numeric or sparse array).
    """
    if isinstance(X, (pd.DataFrame, pd.Series)) or not hasattr(X, "__array__"):
        return []
    X = np.asarray(X)
    if X.dtype.kind not in "OUS" or X.ndim != 2:
        return []
    bad = []
    for j in range(X.shape[1]):
        try:
            X[:, j].astype(np.float64)
        except ValueError:  # strings; other objects keep numpy's TypeError
            bad.append(j)
        except TypeError:
            pass
    return bad


def nonfinite_error(exc, X, owner):
    """validate_data's "Input X contains NaN" error, with the columns named.

    Returns a ValueError that names the columns of ``X`` holding NaN or
    infinity (by name for a DataFrame, by index for an array), or None when
    ``exc`` is not about NaN / infinity in X (then re-raise ``exc``).
    """
    message = str(exc)
    if "Input X contains" not in message:
        return None
    try:
        if isinstance(X, pd.DataFrame):
            arr, names = X.to_numpy(dtype=np.float64), list(X.columns)
        else:
            arr = np.asarray(X, dtype=np.float64)
            names = list(range(arr.shape[1])) if arr.ndim == 2 else None
    except (TypeError, ValueError):
        return None
    if names is None:
        return None
    finite = np.isfinite(arr)
    bad = [n for n, ok in zip(names, finite.all(axis=0)) if not ok]
    if not bad:
        return None
    more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
    return ValueError(
        f"Input X contains NaN or infinity in column(s) {bad[:10]}{more} "
        f"({int((~finite).sum())} cell(s)); {owner} does not accept missing or "
        "infinite values: impute or drop them first."
    )


def check_base_proba(proba, *, n_samples, n_outputs, owner, name):
    """Check the probabilities that a base estimator hands to a meta-estimator.

    Every meta-estimator of the package (``StackingBlend``,
    ``SeedAveragingClassifier``, ``ControlVehicleClassifier``) passes the
    ``predict_proba`` output of its base estimators through here once, where
    it enters, so that a broken base estimator is named at once instead of
    turning every blended probability (the good models' included) into NaN.

    Parameters
    ----------
    proba : array-like
        The (already label-aligned) output of the base estimator.
    n_samples, n_outputs : int
        The expected shape.
    owner : str
        The meta-estimator's class name.
    name : str
        The base estimator, as the user knows it (e.g. ``"'knn'
        (KNeighborsClassifier)"``).

    Returns
    -------
    proba : ndarray of shape (n_samples, n_outputs), float64, in [0, 1]

    Raises
    ------
    ValueError
        For another shape, NaN or infinity, or values outside [0, 1]; the
        message names the meta-estimator, the base estimator and the fault.
    """
    where = f"{owner}: the predict_proba of the base estimator {name}"
    expected = f"({n_samples}, {n_outputs})"
    try:
        arr = np.asarray(proba, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} returned a {type(proba).__name__} that is not an array of "
            f"numbers; expected probabilities of shape {expected}."
        ) from None
    if arr.shape != (n_samples, n_outputs):
        raise ValueError(
            f"{where} returned shape {arr.shape}; expected {expected} "
            f"({n_samples} rows, {n_outputs} probabilities per row)."
        )
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{where} returned {n_nan} NaN and {n_inf} infinite value(s) (of "
            f"{arr.size}); probabilities must be finite numbers in [0, 1]."
        )
    low, high = arr.min(initial=0.0), arr.max(initial=1.0)
    # a little float round-off (e.g. 1 + 1e-16 from a softmax) is tolerated
    if low < -1e-9 or high > 1 + 1e-9:
        raise ValueError(
            f"{where} returned values outside [0, 1] (min {low:.6g}, max "
            f"{high:.6g}): probabilities are needed, not scores or logits."
        )
    return np.clip(arr, 0.0, 1.0, out=arr)
