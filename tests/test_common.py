"""scikit-learn's common estimator checks over every estimator of the package.

The table of small test parameters and of expected failures (each with its
reason) lives in ``moa_sklearn/utils/_test_common.py``.
"""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from moa_sklearn.utils import all_estimators
from moa_sklearn.utils._test_common import (
    _expected_failed_checks,
    _tested_estimators,
)

ESTIMATORS = list(_tested_estimators())


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("name, cls", all_estimators())
def test_every_estimator_has_docstring_example(name, cls):
    assert "Examples" in (cls.__doc__ or ""), f"{name} lacks an Examples section"
