"""Find the public estimators of moa_sklearn (as sklearn.utils.all_estimators)."""

import importlib
import inspect

from sklearn.base import BaseEstimator

# Modules that hold public estimators. Optional engines are skipped when their
# dependency is not installed.
_ESTIMATOR_MODULES = [
    "moa_sklearn.preprocessing",
    "moa_sklearn.neural",
    "moa_sklearn.ensemble",
]


def all_estimators():
    """Return ``(name, class)`` for every public estimator of the package.

    Estimators whose optional dependency is missing are left out.

    Returns
    -------
    estimators : list of (str, type)
        Sorted by name.

    Examples
    --------
    >>> from moa_sklearn.utils import all_estimators
    >>> names = [name for name, _ in all_estimators()]
    >>> names == sorted(names)
    True
    """
    found = {}
    for module_name in _ESTIMATOR_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and exc.name.startswith("moa_sklearn"):
                continue  # the family does not exist yet
            raise
        for name in getattr(module, "__all__", []):
            try:
                obj = getattr(module, name)
            except ImportError:
                continue  # optional engine not installed
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseEstimator)
                and not name.startswith("_")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
