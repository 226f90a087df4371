"""scikit-learn's common estimator checks over every estimator of the package.

The table of small test parameters and of expected failures (each with its
reason) lives in ``moa_sklearn/utils/_test_common.py``.
"""

import pytest
from sklearn.utils.estimator_checks import (
    check_param_validation,
    parametrize_with_checks,
)

from moa_sklearn.utils import all_estimators
from moa_sklearn.utils._test_common import (
    _expected_failed_checks,
    _tested_estimators,
)

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

ESTIMATORS = list(_tested_estimators())


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_parameters_are_declared(estimator):
    """Every parameter has a declared constraint, checked at fit: scikit-learn's
    own check (which parametrize_with_checks runs for sklearn's estimators
    only)."""
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_docstring_example(name, cls):
    assert "Examples" in (cls.__doc__ or ""), f"{name} lacks an Examples section"


def _numeric_frame():
    import numpy as np
    import pandas as pd

    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"f{i}" for i in range(5)])
    Y = (X.to_numpy()[:, :2] + rng.normal(size=(60, 2)) > 0).astype(int)
    return X, Y


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_zero_rows_give_sklearns_error(estimator):
    """fit / transform / predict_proba on 0 rows, as a DataFrame (the
    package's own paths, which skip validate_data) and as an array: the
    estimator called says "Found array with 0 sample(s)", as sklearn's do."""
    from sklearn.base import clone

    X, Y = _numeric_frame()
    is_classifier = hasattr(estimator, "predict_proba")
    fit_args = (Y,) if is_classifier else ()
    name = type(estimator).__name__
    for empty in (X.iloc[:0], X.to_numpy()[:0]):
        empty_y = (Y[:0],) if is_classifier else ()
        with pytest.raises(ValueError, match=rf"0 sample\(s\).*required by {name}"):
            clone(estimator).fit(empty, *empty_y)
    fitted = clone(estimator).fit(X, *fit_args)
    method = fitted.predict_proba if is_classifier else fitted.transform
    for empty in (X.iloc[:0], X.to_numpy()[:0]):
        with pytest.raises(ValueError, match=rf"0 sample\(s\).*required by {name}"):
            method(empty)
