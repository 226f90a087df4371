"""Tests of KerasNetClassifier (Keras 3, TensorFlow backend by default).

The torch backend is checked in a subprocess (KERAS_BACKEND=torch).

Nets are tiny (one hidden layer of 16 units, a few epochs); most tests share
one fitted net. A Keras fit costs about a second whatever its size: nearly
all of it is TensorFlow tracing the training step of a new model.
"""

import os
import pickle
import random
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

keras = pytest.importorskip("keras")

from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold  # noqa: E402
from moa_sklearn.neural import KerasNetClassifier  # noqa: E402
from moa_sklearn.neural import _keras as keras_engine  # noqa: E402
from moa_sklearn.neural._base import (  # noqa: E402
    _inner_validation_split,
    _prior_logits,
)

TINY = dict(
    hidden_sizes=(16,),
    dropouts=0.1,
    max_epochs=3,
    batch_size=32,
    learning_rate=1e-2,
    device="cpu",
    random_state=0,
)


# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)


def tiny(**params):
    return KerasNetClassifier(**{**TINY, **params})


@pytest.fixture(scope="module")
def data():
    """120 rows of 20 drugs x 6 replicates; 4 labels (the last never positive)."""
    rng = np.random.RandomState(0)
    n_drugs, reps = 20, 6
    groups = np.repeat(np.arange(n_drugs), reps)
    drug_y = (rng.uniform(size=(n_drugs, 4)) < 0.3).astype(np.int64)
    drug_y[:, 3] = 0
    drug_aux = (rng.uniform(size=(n_drugs, 3)) < 0.3).astype(np.int64)
    Y, Y_aux = drug_y[groups], drug_aux[groups]
    X = rng.normal(size=(n_drugs * reps, 6)) + 1.5 * np.hstack([Y[:, :3], Y_aux])
    return X, Y, Y_aux, groups


@pytest.fixture(scope="module")
def fitted(data):
    """One tiny net fitted on the 4 labels (y_aux given, and not used)."""
    X, Y, Y_aux, _ = data
    return tiny().fit(X, Y, y_aux=Y_aux)


def _run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )


# ----------------------------------------------------------------- imports
def test_import_does_not_import_keras():
    res = _run_python(
        """
        import sys
        import moa_sklearn, moa_sklearn.neural
        assert "keras" not in sys.modules, "keras imported"
        assert "tensorflow" not in sys.modules, "tensorflow imported"
        print("ok")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_missing_keras_gives_clear_import_error():
    res = _run_python(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("keras", "tensorflow"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        import moa_sklearn
        import moa_sklearn.neural as neural
        try:
            neural.KerasNetClassifier
        except ImportError as exc:
            print("ERR", exc)
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ERR" in res.stdout
    assert 'pip install "moa-sklearn[keras]"' in res.stdout
    assert "KerasNetClassifier" in res.stdout


def test_runs_on_the_tensorflow_backend(fitted):
    # conftest sets KERAS_BACKEND=tensorflow unless the environment says else
    assert fitted.backend_ == keras.backend.backend()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        assert fitted.backend_ == "tensorflow"


def test_torch_backend_and_loading_in_a_fresh_process(data, fitted, tmp_path):
    # a fresh process on Keras' torch backend loads the net pickled here (on
    # TensorFlow) with identical predictions: the pickle needs no global
    # registration or patching of Keras classes, and no particular backend
    pytest.importorskip("torch")
    X, _, _, _ = data
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(fitted))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", fitted.predict_proba(X))
    res = _run_python(
        """
        import os, pickle
        import numpy as np
        import keras
        from moa_sklearn.neural import KerasNetClassifier
        assert keras.backend.backend() == "torch"
        folder = os.environ["MOA_TEST_DIR"]
        with open(os.path.join(folder, "net.pkl"), "rb") as f:
            loaded = pickle.load(f)
        X = np.load(os.path.join(folder, "X.npy"))
        assert np.array_equal(
            loaded.predict_proba(X), np.load(os.path.join(folder, "expected.npy"))
        )
        # and it trains there: same seed, same predictions; pickles
        Y = (X[:, :3] > 0.5).astype(int)
        kw = dict(hidden_sizes=(8,), dropouts=0.1, max_epochs=2, batch_size=32,
                  device="auto", random_state=0)
        groups = np.repeat(range(20), 6)
        net = KerasNetClassifier(**kw).fit(X, Y, groups=groups)
        p = net.predict_proba(X)
        assert net.backend_ == "torch" and net.device_ == "cpu"
        again = KerasNetClassifier(**kw).fit(X, Y, groups=groups)
        assert np.array_equal(again.predict_proba(X), p)
        assert np.array_equal(pickle.loads(pickle.dumps(net)).predict_proba(X), p)
        print("ok")
        """,
        KERAS_BACKEND="torch",
        MOA_TEST_DIR=str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


# ------------------------------------------------------------ the contract
def test_multilabel_fit_predict(data, fitted):
    X, Y, _, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == Y.shape and proba.dtype == np.float64
    assert proba.min() >= 0.001 and proba.max() <= 0.999  # the default clip
    pred = fitted.predict(X)
    assert pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(Y.dtype))
    np.testing.assert_array_equal(fitted.classes_, np.arange(4))
    assert fitted.n_labels_ == 4 and fitted.n_features_in_ == X.shape[1]
    assert fitted.n_aux_ == 3  # y_aux is validated, then not used
    assert isinstance(fitted.model_, keras.Model)
    assert fitted.model_ is fitted.models_[0]
    assert fitted.model_.output_shape == (None, 4)


def test_single_label_matrix(data):
    X, Y, _, _ = data
    net = tiny().fit(X, Y[:, :1])
    assert net.predict_proba(X).shape == (len(X), 1)
    assert net.predict(X).shape == (len(X), 1)


def test_one_d_binary_and_multiclass_targets(data):
    X, Y, _, _ = data
    y = np.where(Y[:, 0] == 1, "active", "inactive")
    net = tiny().fit(X, y)
    np.testing.assert_array_equal(net.classes_, ["active", "inactive"])
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(
        net.predict(X), net.classes_[np.argmax(proba, axis=1)]
    )
    y = Y[:, 0] + 2 * Y[:, 1]  # classes 0..3
    net = tiny().fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), np.unique(y).size)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(net.predict(X)) <= set(np.unique(y))


def test_probabilities_clipped_and_strictly_inside(data, fitted):
    X, Y, _, _ = data
    net = pickle.loads(pickle.dumps(fitted)).set_params(clip=(0.01, 0.99))
    proba = net.predict_proba(X)
    assert proba.min() >= 0.01 and proba.max() <= 0.99
    # clip=None: still strictly inside (0, 1), even for saturated outputs
    net = tiny(clip=None, learning_rate=0.5, max_epochs=5).fit(X * 50, Y)
    proba = net.predict_proba(X * 50)
    assert np.all(proba > 0) and np.all(proba < 1)


def test_predictions_do_not_depend_on_the_batch(data, fitted):
    X, _, _, _ = data
    full = fitted.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba(X[:7]), full[:7], rtol=1e-12)
    order = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), full[order], rtol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "gelu", "selu", "silu"])
@pytest.mark.parametrize("weight_norm", ["all", "none"])
def test_numpy_inference_is_the_keras_forward(activation, weight_norm):
    rng = np.random.RandomState(0)
    model = keras_engine._build_model(
        5,
        3,
        hidden_sizes=[8, 4],
        dropouts=[0.1, 0.2, 0.3],
        activation=activation,
        batch_norm=True,
        weight_norm=weight_norm,
        seed=0,
    )
    for layer in model.layers:  # non-trivial batch-norm statistics
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(size=n))
            layer.moving_variance.assign(rng.uniform(0.5, 2, size=n))
            layer.gamma.assign(rng.uniform(0.5, 2, size=n))
            layer.beta.assign(rng.normal(size=n))
    X = rng.normal(size=(50, 5)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(model(X, training=False))
    np.testing.assert_allclose(
        keras_engine._numpy_forward(model, X), expected, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("weight_norm", ["all", "none"])
def test_head_starts_at_the_prior(weight_norm):
    prior = np.array([0.5, 0.01, 0.0])
    model = keras_engine._build_model(
        5,
        3,
        hidden_sizes=[8],
        dropouts=[0.0, 0.0],
        activation="relu",
        batch_norm=True,
        weight_norm=weight_norm,
        seed=0,
        output_bias=_prior_logits(prior[None, :]),
    )
    bias = model.layers[-1].bias.numpy()
    np.testing.assert_allclose(
        bias, [0.0, np.log(0.01 / 0.99), np.log(1e-4 / (1 - 1e-4))], rtol=1e-5
    )


def test_weight_norm_layer():
    layer = keras_engine._WeightNormDense(3, "relu")
    layer.build((None, 4))
    v = layer.v.numpy()
    g = layer.g.numpy()
    np.testing.assert_allclose(g, np.linalg.norm(v, axis=0), rtol=1e-6)
    x = np.ones((2, 4), dtype=np.float32)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), np.maximum(x @ v, 0), rtol=1e-5
    )
    layer.g.assign(2 * g)  # the norm of the kernel follows g
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), np.maximum(2 * x @ v, 0), rtol=1e-5
    )
    config = layer.get_config()
    assert config["units"] == 3 and config["activation"] == "relu"


def test_dataframes_keep_names(data):
    X, Y, _, _ = data
    Xf = pd.DataFrame(X, columns=[f"g-{i}" for i in range(X.shape[1])])
    Yf = pd.DataFrame(Y, columns=["a", "b", "c", "d"])
    net = tiny().fit(Xf, Yf)
    np.testing.assert_array_equal(net.feature_names_in_, Xf.columns)
    np.testing.assert_array_equal(net.target_names_, Yf.columns)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(net.predict_proba(Xf), net.predict_proba(X))


# ------------------------------------------------------------ determinism
def test_same_random_state_same_predictions(data, fitted):
    X, Y, Y_aux, _ = data
    # the legacy global generators, which keras.utils.set_random_seed reseeds
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    expected = (random.random(), np.random.rand())  # noqa: NPY002
    random.seed(5)
    np.random.seed(5)  # noqa: NPY002
    again = tiny().fit(X, Y, y_aux=Y_aux).predict_proba(X)
    # fit leaves Python's and NumPy's global random states alone
    assert (random.random(), np.random.rand()) == expected  # noqa: NPY002
    np.testing.assert_array_equal(again, fitted.predict_proba(X))
    other = tiny(random_state=1).fit(X, Y).predict_proba(X)
    assert not np.allclose(other, again)


def test_op_determinism_is_scoped(data, fitted):
    from tensorflow.python.framework import config as tf_config

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow backend only")
    assert not tf_config.is_op_determinism_enabled()
    with keras_engine._seeded(0):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()


def test_n_seeds_averages_the_seed_models(data):
    X, Y, _, _ = data
    net = tiny(clip=None, n_seeds=2).fit(X, Y)
    assert len(net.models_) == 2 and len(net.seeds_) == 2
    per_model = [net._predict_proba_one(m, X.astype(np.float32)) for m in net.models_]
    assert not np.allclose(per_model[0], per_model[1])
    np.testing.assert_allclose(net.predict_proba(X), np.mean(per_model, axis=0))
    hist = pd.DataFrame(net.history_)
    assert set(hist["seed"]) == {0, 1}
    assert hist.groupby("seed")["best"].sum().eq(1).all()


# ------------------------------------------------------------ persistence
def test_pickle_and_joblib_round_trip(data, fitted, tmp_path):
    X, _, _, _ = data
    expected = fitted.predict_proba(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    assert isinstance(again.models_[0], keras.Model)
    path = tmp_path / "net.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)
    # the pickle holds the Keras config and NumPy weights, no Keras object
    state = fitted.__getstate__()
    payload = state["models_"][0]
    assert isinstance(payload["config"], str)
    assert all(isinstance(w, np.ndarray) for w in payload["weights"])
    assert isinstance(fitted.models_[0], keras.Model)  # unchanged by pickling


def test_gpu_trained_model_loads_on_cpu(data, fitted):
    X, _, _, _ = data
    state = pickle.dumps(fitted)
    net = pickle.loads(state)
    net.device_ = "gpu:0"  # as if trained on a GPU
    again = pickle.loads(pickle.dumps(net))
    assert keras_engine._usable_device(again.device_) == "cpu"
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


# ------------------------------------------------------------------ devices
def test_device_resolution(monkeypatch):
    monkeypatch.setattr(keras_engine, "_gpu_count", lambda: 0)
    assert keras_engine.resolve_keras_device("auto") == "cpu"
    assert keras_engine.resolve_keras_device("cpu") == "cpu"
    for bad in ("cuda", "gpu:0"):
        with pytest.raises(ValueError, match="sees no GPU"):
            keras_engine.resolve_keras_device(bad)
    with pytest.raises(ValueError, match="device must be"):
        keras_engine.resolve_keras_device("tpu")
    monkeypatch.setattr(keras_engine, "_gpu_count", lambda: 2)
    assert keras_engine.resolve_keras_device("auto") == "gpu:0"
    assert keras_engine.resolve_keras_device("cuda") == "gpu:0"
    assert keras_engine.resolve_keras_device("cuda:1") == "gpu:1"
    assert keras_engine._usable_device("gpu:1") == "gpu:1"
    with pytest.raises(ValueError, match="2 GPU"):
        keras_engine.resolve_keras_device("gpu:2")


def test_cuda_without_gpu_is_a_clear_error(data, monkeypatch):
    X, Y, _, _ = data
    monkeypatch.setattr(keras_engine, "_gpu_count", lambda: 0)
    with pytest.raises(ValueError, match="sees no GPU"):
        tiny(device="cuda").fit(X, Y)


def test_device_of_the_fit(fitted):
    assert fitted.device_ == "cpu"


# ------------------------------------------------- training: stop, schedule
def test_early_stopping_stops_and_restores_the_best_epoch(data):
    X, Y, _, _ = data
    # no epoch improves the validation loss by min_delta=1: a plateau from
    # the first epoch on, so training stops after 1 + patience epochs
    net = tiny(
        max_epochs=30,
        patience=3,
        min_delta=1.0,
        lr_patience=1,
        lr_factor=0.5,
        validation_fraction=0.3,
        label_smoothing=0.0,
        clip=None,
    ).fit(X, Y)
    hist = pd.DataFrame(net.history_)
    assert len(hist) == 4 < 30
    assert hist["best"].tolist() == [True, False, False, False]
    # ReduceLROnPlateau halved the learning rate on the plateau
    assert hist["lr"].iloc[0] == pytest.approx(1e-2)
    assert hist["lr"].iloc[-1] < hist["lr"].iloc[0]
    assert (np.diff(hist["lr"]) <= 0).all()
    # the kept weights are the first epoch's: its validation loss
    _, valid = _inner_validation_split(
        Y.astype(np.float32), None, 0.3, int(net.seeds_[0])
    )
    proba = net.predict_proba(X[valid])
    loss = -np.mean(Y[valid] * np.log(proba) + (1 - Y[valid]) * np.log1p(-proba))
    assert loss == pytest.approx(hist["valid_loss"].iloc[0], rel=1e-4)
    assert loss != pytest.approx(hist["valid_loss"].iloc[-1], rel=1e-4)


def test_history_without_validation(data):
    X, Y, _, _ = data
    hist = pd.DataFrame(tiny(validation_fraction=None, patience=1).fit(X, Y).history_)
    assert len(hist) == TINY["max_epochs"]  # no early stopping without validation
    assert hist["valid_loss"].isna().all()
    assert hist["best"].tolist() == [False, False, True]  # the last epoch
    for col in ("seed", "epoch", "train_loss", "lr", "dur"):
        assert hist[col].notna().all()


class _SpyKeras(KerasNetClassifier):
    """Records what _fit_one receives (in a class-level list)."""

    calls = []

    def _fit_one(self, X, Y, X_valid, Y_valid, **kwargs):
        type(self).calls.append(
            {
                "n": len(X),
                "Y_range": (float(Y.min()), float(Y.max())),
                "train_x0": X[:, 0].copy(),
                "valid_x0": None if X_valid is None else X_valid[:, 0].copy(),
            }
        )
        return super()._fit_one(X, Y, X_valid, Y_valid, **kwargs)


@pytest.fixture
def spy():
    _SpyKeras.calls = []
    return _SpyKeras


def _row_ids(call, scaler=None):
    """(train, valid) row ids of a spied fit whose X column 0 is the row id."""

    def ids(x0):
        if scaler is not None:  # undo a StandardScaler before the net
            x0 = x0 * scaler.scale_[0] + scaler.mean_[0]
        return np.round(x0).astype(int)

    return ids(call["train_x0"]), ids(call["valid_x0"])


def test_label_smoothing_changes_the_training_target(data, spy):
    X, Y, _, _ = data
    params = dict(TINY, max_epochs=25, learning_rate=3e-2, clip=None, patience=None)
    sharp = spy(**params, label_smoothing=0.0).fit(X, Y).predict_proba(X)
    smooth = spy(**params, label_smoothing=0.5).fit(X, Y).predict_proba(X)
    assert spy.calls[0]["Y_range"] == (0.0, 1.0)
    assert spy.calls[1]["Y_range"] == (0.25, 0.75)  # y * (1 - s) + 0.5 * s
    # trained towards 0.25 / 0.75 instead of 0 / 1, the probabilities
    # saturate less (on average: |p - 0.5| is at most 0.25 at the optimum)
    spread_sharp, spread_smooth = np.abs(sharp - 0.5), np.abs(smooth - 0.5)
    assert spread_smooth.mean() < 0.75 * spread_sharp.mean()
    assert spread_smooth.mean() < 0.25


# ------------------------------------------------------ inner validation
def test_fit_uses_grouped_inner_validation(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])  # column 0: the row id
    spy(**TINY, validation_fraction=0.2).fit(Xid, Y, groups=groups)
    train, valid = _row_ids(spy.calls[-1])
    assert valid.size > 0 and train.size + valid.size == len(X)
    assert not set(groups[valid]) & set(groups[train])


# ------------------------------------------------------ metadata routing
def test_routing_on_cross_validate_passes_groups_per_fold(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])
    with sklearn.config_context(enable_metadata_routing=True):
        net = spy(**TINY).set_fit_request(groups=True)
        cv = DrugMultilabelStratifiedKFold(3, random_state=0)
        res = cross_validate(net, Xid, Y, params={"groups": groups}, cv=cv)
        folds = list(cv.split(Xid, Y, groups))
    assert len(res["test_score"]) == 3
    assert len(spy.calls) == 3
    for call, (fold_train, _) in zip(spy.calls, folds):
        train, valid = _row_ids(call)
        np.testing.assert_array_equal(np.sort(np.r_[train, valid]), fold_train)
        # the inner split of each fold is drug-grouped: groups were routed
        assert not set(groups[valid]) & set(groups[train])


def test_routing_off_pipeline_step_params(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])
    pipe = make_pipeline(StandardScaler(), spy(**TINY, validation_fraction=0.2))
    pipe.fit(Xid, Y, _spykeras__groups=groups)
    train, valid = _row_ids(spy.calls[-1], pipe[0])
    assert valid.size > 0 and train.size + valid.size == len(X)
    assert not set(groups[valid]) & set(groups[train])
    # without groups the inner split is by row: drugs straddle it
    pipe.fit(Xid, Y)
    train, valid = _row_ids(spy.calls[-1], pipe[0])
    assert set(groups[valid]) & set(groups[train])


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_in_X(data, fitted, bad):
    X, Y, _, _ = data
    Xb = X.copy()
    Xb[3, 2] = bad
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        tiny().fit(Xb, Y)
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        fitted.predict_proba(Xb)


def test_wrong_width_at_predict(data, fitted):
    X, _, _, _ = data
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :-1])


def test_bad_targets_and_one_sample(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match="0/1 label indicator matrix"):
        tiny().fit(X, Y * 2)
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="n_samples=1"):
        tiny().fit(X[:1], np.array([[1, 0]]))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(dropouts=(0.1,)), "dropouts"),
        (dict(dropouts=1.0), "dropouts"),
        (dict(activation="sigmoid"), "activation"),
        (dict(weight_norm=True), "weight_norm"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(patience=0), "patience"),
        (dict(learning_rate=0), "learning_rate"),
        (dict(lr_factor=1.0), "lr_factor"),
        (dict(min_delta=-1), "min_delta"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(clip=(0.9, 0.1)), "clip"),
        (dict(device="tpu"), "device"),
    ],
)
def test_bad_params(data, params, match):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X, Y)


def test_clone_params_and_tags(data, fitted):
    params = fitted.get_params()
    assert params == tiny().get_params()
    fresh = clone(fitted)
    assert not hasattr(fresh, "models_") and not hasattr(fresh, "model_")
    with pytest.raises(NotFittedError):
        fresh.predict_proba(data[0])
    tags = fitted.__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags.multi_label and tags.target_tags.multi_output
    assert not tags.input_tags.allow_nan


def test_ctrl_c_during_fit_propagates(data, ctrl_c_at_epoch):
    """Ctrl-C during Keras' fit reaches the caller; nothing looks fitted."""
    X, Y, _, _ = data
    ctrl_c_at_epoch(
        keras_engine._EpochLog, lambda cb, epoch, logs=None: epoch + 1, at=2
    )
    net = tiny(max_epochs=50)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y)
    assert not hasattr(net, "models_")


# ------------------------------------------------------------ quiet engine
def test_a_library_fit_prints_no_engine_noise():
    """As a library (no TF_CPP_MIN_LOG_LEVEL set): no TensorFlow banner at
    import, no use_unbounded_threadpool line per fit; a real warning of the
    user's code still shows."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, warnings
                import numpy as np
                from moa_sklearn.neural import KerasNetClassifier
                rng = np.random.RandomState(0)
                X = rng.normal(size=(60, 4))
                Y = (rng.uniform(size=(60, 2)) < 0.3).astype(int)
                for seed in range(2):
                    KerasNetClassifier(hidden_sizes=(8,), dropouts=0.1, max_epochs=2,
                                       device="cpu", random_state=seed).fit(X, Y)
                warnings.warn("a real warning")
                print("ok")
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout
    for noise in ("use_unbounded_threadpool", "oneDNN", "absl::InitializeLog"):
        assert noise not in res.stderr, res.stderr
    assert "a real warning" in res.stderr


def test_quiet_engine_logs_drops_only_the_noise(capfd, monkeypatch):
    from moa_sklearn.neural._quiet import quiet_engine_logs

    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    lines = [
        b"WARNING: All log messages before absl::InitializeLog() is called are "
        b"written to STDERR\n",
        b"I0000 00:00:1796192161.259106    6479 port.cc:153] oneDNN custom "
        b"operations are on.\n",
        b"To enable the following instructions: AVX2 FMA, in other operations\n",
        b"E0000 00:00:1796193015.019186    4371 node_def_util.cc:682] NodeDef "
        b"mentions attribute use_unbounded_threadpool which is not in the op\n",
    ]
    real = [
        b"W0000 00:00:1796193015.0 4371 gpu.cc:12] a real warning\n",
        b"E0000 00:00:1796193015.0 4371 op.cc:12] a real error\n",
    ]
    with pytest.raises(KeyboardInterrupt):
        with quiet_engine_logs():
            with quiet_engine_logs():  # nested: the outer one filters
                for line in lines + real:
                    os.write(2, line)
            raise KeyboardInterrupt
    err = capfd.readouterr().err
    assert err.encode() == b"".join(real)
    os.write(2, lines[0])  # fd 2 is restored, unfiltered outside the block
    assert capfd.readouterr().err.encode() == lines[0]
    # TF_CPP_MIN_LOG_LEVEL=0 asks for every line
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with quiet_engine_logs():
        os.write(2, lines[3])
    assert capfd.readouterr().err.encode() == lines[3]


def test_verbose_progress_bar_counts_the_epochs(data, terminal, progress_bars):
    X, Y, _, _ = data
    stream = terminal()
    tiny(max_epochs=3, n_seeds=2, patience=None, verbose=1).fit(X, Y)
    (bar,) = progress_bars
    assert (bar.total, bar.n) == (6, 6)
    assert "seed 2/2, train " in bar.postfix and "valid " in bar.postfix
    assert "KerasNetClassifier" in stream.getvalue()
