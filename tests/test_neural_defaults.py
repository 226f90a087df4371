"""Every default of the nets works with any valid value of the other parameters.

A grid over one structural parameter alone (the others at their defaults,
except the number of epochs, which only makes the test short) fits every
candidate: e.g. ``TwoStepNetClassifier(hidden_sizes=(8,))`` with the default
``dropouts='auto'``.
"""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold

from moa_sklearn.metrics import neg_mean_columnwise_log_loss

pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

HIDDEN_SIZES = [(8,), (8, 4), (8, 8, 4), (8, 8, 8, 8, 4)]


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(80, 6)).astype(np.float32)
    Y = (X[:, :3] + rng.normal(size=(80, 3)) > 0.5).astype(int)
    return X, Y


def _grid(net, grid, data):
    X, Y = data
    search = GridSearchCV(
        net,
        grid,
        cv=KFold(2, shuffle=True, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
        error_score="raise",
        refit=False,  # every candidate is fitted on each fold: no refit needed
    ).fit(X, Y)
    scores = search.cv_results_["mean_test_score"]
    assert len(scores) == len(next(iter(grid.values())))
    assert np.isfinite(scores).all()
    return search


def test_two_step_net_grid_over_hidden_sizes_alone(data):
    pytest.importorskip("torch")
    pytest.importorskip("skorch")
    from moa_sklearn.neural import TwoStepNetClassifier

    net = TwoStepNetClassifier(
        max_epochs_pretrain=2, max_epochs_finetune=2, device="cpu", random_state=0
    )
    assert net.dropouts == "auto"
    _grid(net, {"hidden_sizes": HIDDEN_SIZES}, data)
    for hs in HIDDEN_SIZES:  # 'auto' follows the number of layers
        net.set_params(hidden_sizes=hs)._check_params()
        assert len(net._dropouts) == len(hs)


def test_two_step_net_auto_dropouts_keep_the_recipe_for_the_default_layers():
    pytest.importorskip("torch")
    from moa_sklearn.neural import TwoStepNetClassifier

    net = TwoStepNetClassifier()
    net._check_params()
    assert net.hidden_sizes == (2048, 2048)
    assert net._dropouts == [0.5, 0.25]
    net.set_params(hidden_sizes=(8,))._check_params()
    assert net._dropouts == [0.5]
    net.set_params(hidden_sizes=(8, 8, 8, 8))._check_params()
    assert net._dropouts == [0.5, 0.35, 0.3, 0.25]


def test_keras_net_grid_over_hidden_sizes_alone(data):
    pytest.importorskip("keras")
    from moa_sklearn.neural import KerasNetClassifier

    net = KerasNetClassifier(max_epochs=2, device="cpu", random_state=0)
    assert net.dropouts == "auto"
    # one and three layers (each Keras fit costs ~4 s of TensorFlow tracing)
    _grid(net, {"hidden_sizes": [HIDDEN_SIZES[0], HIDDEN_SIZES[2]]}, data)
    net = KerasNetClassifier()
    net._check_params()
    assert net._dropouts == [0.2, 0.5, 0.5]
    net.set_params(hidden_sizes=(8,))._check_params()
    assert net._dropouts == [0.2, 0.5]


@pytest.mark.parametrize(
    "grid",
    [
        {"n_steps": [1, 3]},
        {"batch_size": [16, 4096]},
        {"virtual_batch_size": [8, 4096]},
        {"n_independent": [1, 3]},
        {"n_best_epochs": [1, 50]},  # more than the epochs run: all kept
        {"average_epochs": ["proba", "weights", "per_target"]},
        {"mixup": [0.0, 1.0]},
    ],
    ids=lambda g: next(iter(g)),
)
def test_tabnet_grid_over_one_parameter_alone(data, grid):
    pytest.importorskip("pytorch_tabnet")
    from moa_sklearn.neural import TabNetMultilabelClassifier

    net = TabNetMultilabelClassifier(max_epochs=2, device="cpu", random_state=0)
    _grid(net, grid, data)
