"""The central table of test settings for ``tests/test_common.py``.

As in imbalanced-learn, every estimator of the package is checked with
scikit-learn's ``parametrize_with_checks``. This module says, per estimator
class, which (small, fast) parameters the checks use and which checks are
expected to fail, each with its specific reason. An empty table is the aim.
"""

from sklearn.neighbors import KNeighborsClassifier as _KNN
from sklearn.tree import DecisionTreeClassifier as _Tree

# Parameters used to build the instance that the common checks run on. Keep
# nets tiny (few epochs, small layers) so that the suite stays fast.
INIT_PARAMS = {
    # one hidden block of 16 units and a few epochs: a fit takes ~0.1 s, and
    # still separates the blobs of the classifier checks (accuracy > 0.83)
    "TwoStepNetClassifier": dict(
        hidden_sizes=(16,),
        dropouts=0.1,
        max_epochs_pretrain=3,
        max_epochs_finetune=6,
        unfreeze_every=2,
        batch_size=32,
        learning_rate_finetune=1e-2,
        device="cpu",
        n_threads=1,
    ),
    # one hidden block of 16 units, 20 epochs without early stopping: a fit
    # takes ~1 s of CPU, nearly all of it TensorFlow tracing the training
    # step of a new model (the epochs themselves take a few ms); accuracy on
    # the blobs of the classifier checks >= 0.9 over seeds
    "KerasNetClassifier": dict(
        hidden_sizes=(16,),
        dropouts=0.1,
        max_epochs=20,
        batch_size=32,
        learning_rate=1e-2,
        patience=None,
        device="cpu",
    ),
    # small TabNet (n_d = n_a = 8), 10 epochs of batches of 64 rows in ghost
    # batches of 16: a fit takes ~0.25 s; accuracy on the blobs >= 0.92
    "TabNetMultilabelClassifier": dict(
        n_d=8,
        n_a=8,
        max_epochs=10,
        batch_size=64,
        virtual_batch_size=16,
        patience=None,
        n_seeds=1,
        device="cpu",
        n_threads=1,
    ),
    # a fast, deterministic pair of base classifiers that handle 1-D and 2-D
    # targets natively; 3 inner folds so that the small check datasets split
    "StackingBlend": [
        dict(
            estimators=[
                ("knn", _KNN()),
                ("tree", _Tree(max_depth=4, random_state=0)),
            ],
            cv=3,
            random_state=0,
        ),
        # cv="validation" (the recipe's: one fit per net, weights on the
        # nets' own held-out rows) needs bases that hold rows out: two tiny
        # two-step nets, when torch is installed
        lambda: _validation_blend_params(),
    ],
    # on the plain arrays of the checks there is no control column: without
    # control handling (column=None) the meta-estimator is the classifier;
    # with column=0 and a control value no row has, every row is treated
    # two seeds of a small tree (with max_features < n_features, so that the
    # seeds differ): handles 1-D and 2-D targets natively
    "SeedAveragingClassifier": dict(
        estimator=_Tree(max_depth=4, max_features=0.8), n_seeds=2, random_state=0
    ),
    "ControlVehicleClassifier": [
        dict(estimator=_KNN(), column=None),
        dict(estimator=_KNN(), column=0, control=-1e9),
    ],
}

# {estimator class name: {check name: reason}}
EXPECTED_FAILED_CHECKS = {}


def _validation_blend_params():
    """``StackingBlend(cv="validation")`` of two tiny two-step nets; None
    without torch."""
    try:
        from moa_sklearn.neural import TwoStepNetClassifier
    except ImportError:
        return None
    net = dict(INIT_PARAMS["TwoStepNetClassifier"], validation_fraction=0.2)
    return dict(
        estimators=[
            ("a", TwoStepNetClassifier(**net, random_state=0)),
            (
                "b",
                TwoStepNetClassifier(**{**net, "hidden_sizes": (8,)}, random_state=1),
            ),
        ],
        cv="validation",
        random_state=0,
    )


def _tested_estimators():
    """Yield the configured instances of every public estimator (a callable
    entry gives its parameters when called, or None to skip it)."""
    from moa_sklearn.utils import all_estimators

    for name, cls in all_estimators():
        params = INIT_PARAMS.get(name, {})
        for p in params if isinstance(params, list) else [params]:
            p = p() if callable(p) else p
            if p is not None:
                yield cls(**p)


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})
