"""Tests of KerasNetClassifier's own behaviour (Keras 3, TensorFlow backend).

What every net does is tested once, on every engine, in
test_neural_contract.py. The torch backend is checked in a subprocess
(KERAS_BACKEND=torch). A Keras fit costs about a second whatever its size:
nearly all of it is TensorFlow tracing the training step of a new model.
"""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from _neural_engines import engine_keras  # noqa: E402

from moa_sklearn.neural import _keras as keras_engine  # noqa: E402
from moa_sklearn.neural._base import _prior_logits  # noqa: E402

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

tiny = engine_keras().make


@pytest.fixture(scope="module")
def fitted(net_data):
    """One tiny net fitted on the 4 labels (y_aux given, and not used)."""
    X, Y, Y_aux, _ = net_data
    return tiny().fit(X, Y, y_aux=Y_aux)


def _run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
    )


# ---------------------------------------------------------------- backends
def test_runs_on_the_tensorflow_backend(fitted):
    # conftest sets KERAS_BACKEND=tensorflow unless the environment says else
    assert fitted.backend_ == keras.backend.backend()
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        assert fitted.backend_ == "tensorflow"


def test_torch_backend_and_loading_in_a_fresh_process(net_data, fitted, tmp_path):
    # a fresh process on Keras' torch backend loads the net pickled here (on
    # TensorFlow) with identical predictions: the pickle needs no global
    # registration or patching of Keras classes, and no particular backend
    pytest.importorskip("torch")
    X, _, _, _ = net_data
    (tmp_path / "net.pkl").write_bytes(pickle.dumps(fitted))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "expected.npy", fitted.predict_proba(X))
    res = _run_python(
        """
        import os, pickle
        import numpy as np
        import keras
        import torch
        from moa_sklearn.neural import KerasNetClassifier
        assert keras.backend.backend() == "torch"
        threads = torch.get_num_threads()
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
                  device="auto", n_threads=1, random_state=0)
        groups = np.repeat(range(20), 6)
        net = KerasNetClassifier(**kw).fit(X, Y, groups=groups)
        p = net.predict_proba(X)
        assert net.backend_ == "torch" and net.device_ == "cpu"
        assert torch.get_num_threads() == threads  # n_threads is restored
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


# -------------------------------------------------------------- the layers
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


def test_batch_norms_fold_into_the_next_dense_layer():
    """Two affine steps in a row, a dense step after them, one without, and
    a trailing affine step: the folded steps compute the same function."""
    rng = np.random.RandomState(0)
    relu = keras_engine._NUMPY_ACTIVATIONS["relu"]
    linear = keras_engine._NUMPY_ACTIVATIONS["linear"]

    def affine(n):
        return ("affine", rng.uniform(0.5, 2, n), rng.normal(size=n))

    steps = [
        affine(4),
        affine(4),
        ("dense", rng.normal(size=(4, 5)), rng.normal(size=5), relu),
        ("dense", rng.normal(size=(5, 3)), 0.0, linear),
        affine(3),
    ]
    x = rng.normal(size=(7, 4))
    expected = x
    for step in steps:
        if step[0] == "affine":
            expected = expected * step[1] + step[2]
        else:
            expected = step[3](expected @ step[1] + step[2])
    folded = keras_engine._fold_affine(steps)
    assert [kernel is None for kernel, _, _ in folded] == [False, False, True]
    got = x
    for kernel, bias, activation in folded:
        if kernel is None:
            got = got * bias[0] + bias[1]
        else:
            got = activation(got @ kernel + bias)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


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


def test_kernels_of_512_multiples_are_padded_without_changing_the_function():
    assert [keras_engine._stride_pad(u) for u in (8, 206, 512, 1048, 2048)] == [
        0,
        0,
        8,
        0,
        8,
    ]
    layer = keras_engine._WeightNormDense(512, "linear")
    layer.build((None, 4))
    v = layer.v.numpy()
    assert v.shape == (4, 520) and not v[:, 512:].any()
    np.testing.assert_allclose(layer.g.numpy(), np.linalg.norm(v[:, :512], axis=0))
    x = np.random.RandomState(0).normal(size=(3, 4)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (3, 512)
    np.testing.assert_allclose(out, x @ v[:, :512], rtol=1e-5, atol=1e-6)
    # the zero columns get no gradient: a training step leaves them at zero
    model = keras.Sequential([keras.Input((4,)), layer])
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    model.fit(x, np.ones((3, 512), np.float32), epochs=2, verbose=0)
    v = layer.v.numpy()
    assert v[:, :512].any() and not v[:, 512:].any()
    # the NumPy inference drops them too
    np.testing.assert_allclose(
        keras_engine._numpy_forward(model, x),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-5,
        atol=1e-6,
    )
    # a configuration without "pad" (nets pickled by moa-sklearn 0.1) is unpadded
    config = layer.get_config()
    assert config["pad"] == 8
    del config["pad"]
    assert keras_engine._WeightNormDense.from_config(config).pad == 0


def test_training_batches_cover_every_row_once_per_epoch_in_a_seeded_order():
    X = np.arange(10, dtype=np.float32)[:, None] * [1, -1]
    Y = np.arange(10)[:, None] % 2
    data = keras_engine._training_batches(X, Y, 4, seed=3)
    if keras.backend.backend() != "tensorflow":
        assert data["x"] is X and data["shuffle"] and data["batch_size"] == 4
        return
    assert not data["shuffle"]  # the pipeline shuffles; model.fit must not

    def epoch(batches):
        out = [(x.numpy(), y.numpy()) for x, y in batches]
        assert [len(x) for x, _ in out] == [4, 4, 2]
        rows = np.concatenate([x for x, _ in out])
        np.testing.assert_array_equal(
            np.concatenate([y for _, y in out])[:, 0], rows[:, 0] % 2
        )
        assert sorted(rows[:, 0]) == list(range(10))
        return rows[:, 0].tolist()

    first, second = epoch(data["x"]), epoch(data["x"])
    assert first != second  # reshuffled every epoch
    import tensorflow as tf

    tf.random.set_seed(0)
    a = [epoch(keras_engine._training_batches(X, Y, 4, seed=3)["x"]) for _ in "ab"]
    tf.random.set_seed(0)
    b = [epoch(keras_engine._training_batches(X, Y, 4, seed=3)["x"]) for _ in "ab"]
    assert a == b  # the same seeds, the same order


# ------------------------------------------------------ seeds and devices
def test_op_determinism_is_scoped():
    from tensorflow.python.framework import config as tf_config

    if keras.backend.backend() != "tensorflow":
        pytest.skip("TensorFlow backend only")
    assert not tf_config.is_op_determinism_enabled()
    with keras_engine._seeded(0):
        assert tf_config.is_op_determinism_enabled()
    assert not tf_config.is_op_determinism_enabled()


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


# ---------------------------------------------- quiet engine and threads
def test_a_library_fit_prints_no_engine_noise_and_sets_the_threads():
    """As a library (no TF_CPP_MIN_LOG_LEVEL set): no TensorFlow banner at
    import, no use_unbounded_threadpool line per fit; a real warning of the
    user's code still shows. The first fit of the process sizes TensorFlow's
    thread pools to n_threads; a later fit that asks for another number is
    told that it cannot be applied, and still fits."""
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
                import tensorflow as tf  # imported (quietly) by the line above
                rng = np.random.RandomState(0)
                X = rng.normal(size=(60, 4))
                Y = (rng.uniform(size=(60, 2)) < 0.3).astype(int)
                kw = dict(hidden_sizes=(8,), dropouts=0.1, max_epochs=2, device="cpu")
                for seed in range(2):
                    KerasNetClassifier(**kw, n_threads=1, random_state=seed).fit(X, Y)
                threading = tf.config.threading
                assert threading.get_intra_op_parallelism_threads() == 1
                assert threading.get_inter_op_parallelism_threads() == 1
                warnings.warn("a real warning")
                net = KerasNetClassifier(**kw, n_threads=2).fit(X, Y)
                assert net.predict_proba(X).shape == (60, 2)
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
    # said once, for the fit that asked for 2 threads
    assert res.stderr.count("is not applied") == 1, res.stderr
    assert "KerasNetClassifier(n_threads=2) is not applied" in res.stderr


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
