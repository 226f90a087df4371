"""The Keras multilabel MLP of the lish-moa public notebooks (Keras 3).

Imported on first access to ``moa_sklearn.neural.KerasNetClassifier``: this
module imports Keras and its backend (TensorFlow unless ``KERAS_BACKEND`` says
otherwise).
"""

import contextlib
import random
import time
import warnings

import numpy as np
from scipy.special import erf, expit
from sklearn.utils._param_validation import StrOptions
from threadpoolctl import threadpool_limits

from ..utils._engines import KERAS_INSTALL
from ._base import (
    _EVAL_BATCH,
    _MLP_CONSTRAINTS,
    _NON_NEGATIVE_REAL,
    _PLATEAU_CONSTRAINTS,
    BaseMultilabelNet,
    _check_hidden_sizes,
    _per_layer_dropouts,
    _prior_logits,
)
from ._docs import shared_docs
from ._quiet import quiet_engine_logs

_KERAS_EXTRA = KERAS_INSTALL  # what the import errors say to run

try:
    # TensorFlow's start-up banner (C++ logs) is dropped, its warnings kept
    with quiet_engine_logs():
        import keras
except ImportError as exc:  # Keras, or the backend it is set to, is missing
    raise ImportError(
        "KerasNetClassifier needs Keras 3 and a backend for it (TensorFlow by "
        f"default, or the one named by KERAS_BACKEND): {_KERAS_EXTRA}"
    ) from exc

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - old Keras
    raise ImportError(
        f"KerasNetClassifier needs Keras 3, found Keras {keras.__version__}: "
        f"{_KERAS_EXTRA}"
    )

from keras import ops  # noqa: E402

__all__ = ["KerasNetClassifier"]

_ACTIVATIONS = ("relu", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "tanh")

# dropouts='auto': the recipe's dropouts for the default hidden_sizes, stretched
# over other depths (see _auto_dropouts)
_DROPOUT_PROFILE = (0.2, 0.5, 0.5)


# ---------------------------------------------------------------------- layers
def _stride_pad(units):
    """Zero columns to append to a kernel of ``units`` columns: 8 or 0.

    TensorFlow's CPU matrix product (Eigen) runs at half speed when the
    kernel's row stride is a multiple of 512 floats (measured on a batch of
    128 rows and 1,239 inputs, one AVX2 core: 39 GFLOP/s for 1,024, 2,048,
    3,072 or 4,096 units, 78-82 for 8 more; 54 at 512, 61 at 1,536). The
    Keras notebooks' first layer has 2,048 units. Eight zero columns cost
    under 1% of a product of 512 or more columns.
    """
    return 8 if units % 512 == 0 else 0


class _WeightNormDense(keras.layers.Layer):
    """A dense layer with weight normalisation (Salimans & Kingma, 2016).

    The kernel is ``w = g * v / ||v||`` (norm over the inputs, one ``g`` per
    unit), as ``tfa.layers.WeightNormalization(Dense(...))`` of the public
    notebooks (TensorFlow Addons has no Keras 3 version) and PyTorch's
    ``weight_norm(..., dim=0)``. ``g`` starts at ``||v||``, so the initial
    kernel is ``v`` (no data-dependent initialisation). Written with
    ``keras.ops``, so it runs on every Keras backend.

    ``pad`` zero columns follow the ``units`` columns of ``v`` (default: 8
    where ``units`` is a multiple of 512, else none; see :func:`_stride_pad`).
    They have no ``g``, their outputs are dropped, so they get no gradient
    and stay zero: the layer computes the same function.
    """

    def __init__(
        self,
        units,
        activation=None,
        kernel_initializer="glorot_uniform",
        pad=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.pad = _stride_pad(self.units) if pad is None else int(pad)

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        v = self.kernel_initializer(shape=shape)
        self.v = self.add_weight(
            name="v", shape=(shape[0], self.units + self.pad), initializer="zeros"
        )
        self.v.assign(ops.pad(v, [[0, 0], [0, self.pad]]) if self.pad else v)
        self.g = self.add_weight(name="g", shape=(self.units,), initializer="ones")
        self.g.assign(ops.sqrt(ops.sum(ops.square(v), axis=0)))
        self.bias = self.add_weight(
            name="bias", shape=(self.units,), initializer="zeros"
        )

    def call(self, inputs):
        # x @ (v * s) == (x @ v) * s for a scale s per unit: scaling the
        # product's columns spares a kernel-sized temporary and its gradient
        # at every step (a quarter of an epoch of the default net on CPU)
        norm = ops.sqrt(ops.sum(ops.square(self.v), axis=0))
        out = ops.matmul(inputs, self.v)
        if self.pad:
            norm, out = norm[: self.units], out[..., : self.units]
        scale = self.g / ops.maximum(norm, 1e-12)
        return self.activation(out * scale + self.bias)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation),
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            pad=self.pad,
        )
        return config

    @classmethod
    def from_config(cls, config):
        # nets pickled before the padding (moa-sklearn 0.1) have no "pad"
        return cls(**{"pad": 0, **config})


_CUSTOM_OBJECTS = {"_WeightNormDense": _WeightNormDense}


class _EpochLog(keras.callbacks.Callback):
    """Validation loss and learning curve of one fit.

    At the end of each epoch, computes the binary cross-entropy of the inner
    validation split (a forward pass per batch of rows, no Keras
    ``evaluate``, which would trace a second graph per fit), puts it in the
    epoch's logs as ``val_loss`` for the callbacks after this one
    (``ReduceLROnPlateau``, ``EarlyStopping``), and records the epoch.
    """

    def __init__(self, X_valid=None, Y_valid=None, on_epoch=None):
        super().__init__()
        self.on_epoch = on_epoch
        self.X_valid = X_valid
        self.Y_valid = None if Y_valid is None else Y_valid.astype(np.float64)

    def on_train_begin(self, logs=None):
        self.records = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        valid_loss = None
        if self.X_valid is not None:
            proba = _forward(self.model, self.X_valid)
            valid_loss = _binary_cross_entropy(self.Y_valid, proba)
            logs["val_loss"] = valid_loss
        lr = _to_numpy(self.model.optimizer.learning_rate)
        self.records.append(
            {
                "epoch": epoch + 1,
                "train_loss": float(logs["loss"]),
                "valid_loss": valid_loss,
                "lr": float(lr),
                "dur": time.perf_counter() - self._start,
            }
        )
        if self.on_epoch is not None:
            self.on_epoch(self.records[-1])


def _to_numpy(variable):
    """The value of a Keras variable as a NumPy array."""
    if hasattr(variable, "numpy"):
        # (np.asarray of a variable warns on the TensorFlow backend, NumPy 2)
        return np.asarray(variable.numpy())
    return np.asarray(variable)


def _forward(model, X):
    """Probabilities of ``model`` on ``X`` (inference mode), as float64."""
    out = np.empty((X.shape[0], model.output_shape[-1]), dtype=np.float64)
    for start in range(0, X.shape[0], _EVAL_BATCH):
        batch = X[start : start + _EVAL_BATCH]
        out[start : start + len(batch)] = ops.convert_to_numpy(
            model(batch, training=False)
        )
    return out


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


def _elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0)))


# Keras' activations (with their Keras defaults) in NumPy, by function name
_NUMPY_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),
    "elu": _elu,
    "selu": lambda x: _SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * _elu(x)),
    "gelu": lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2))),
    "silu": lambda x: x * expit(x),
    "tanh": np.tanh,
    "sigmoid": expit,
}


def _numpy_layers(model):
    """The inference pass of a fitted net as a list of NumPy float64 steps."""

    def value(variable):
        return _to_numpy(variable).astype(np.float64)

    steps = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            scale = 1 / np.sqrt(value(layer.moving_variance) + layer.epsilon)
            if layer.scale:
                scale = scale * value(layer.gamma)
            shift = -value(layer.moving_mean) * scale
            if layer.center:
                shift = shift + value(layer.beta)
            steps.append(("affine", scale, shift))
        elif isinstance(layer, (_WeightNormDense, keras.layers.Dense)):
            if isinstance(layer, _WeightNormDense):
                v, g = value(layer.v)[:, : layer.units], value(layer.g)
                kernel = v * (g / np.maximum(np.sqrt(np.sum(v**2, axis=0)), 1e-12))
            else:
                kernel = value(layer.kernel)
            bias = value(layer.bias) if layer.bias is not None else 0.0
            activation = _NUMPY_ACTIVATIONS[layer.activation.__name__]
            steps.append(("dense", kernel, bias, activation))
        else:  # pragma: no cover - the nets are built by _build_model
            raise TypeError(f"Unexpected layer in a KerasNetClassifier net: {layer}")
    return steps


def _fold_affine(steps):
    """``_numpy_layers``' steps as ``(kernel, bias, activation)`` triples,
    each affine step (an inference-mode batch norm) folded into the dense
    step after it: ``(x * scale + shift) @ K + b = x @ (scale[:, None] * K)
    + (shift @ K + b)``, one pass over the rows fewer. An affine step with no
    dense step after it stays a step of its own (kernel None)."""
    folded, pending = [], None
    for step in steps:
        if step[0] == "affine":
            scale, shift = step[1], step[2]
            if pending is not None:  # two in a row: one affine map
                scale, shift = pending[0] * scale, pending[1] * scale + shift
            pending = (scale, shift)
            continue
        _, kernel, bias, activation = step
        bias = np.broadcast_to(bias, kernel.shape[1:]).astype(np.float64)
        if pending is not None:
            kernel, bias = pending[0][:, None] * kernel, pending[1] @ kernel + bias
            pending = None
        folded.append((kernel, bias, activation))
    if pending is not None:
        folded.append((None, pending, None))
    return folded


def _numpy_forward(model, X):
    """P(label = 1) of a fitted net, computed in float64 with NumPy.

    The same function as ``model(X, training=False)`` without float32
    round-off, whose last bits depend on how many rows a batch has: a row's
    prediction does not depend on the other rows passed with it. The batch
    norms are folded into the dense layers after them, and the bias and
    ReLU are applied in place (at lish-moa's size these passes over the
    rows were a fifth of the time).
    """
    steps = _fold_affine(_numpy_layers(model))
    relu = _NUMPY_ACTIVATIONS["relu"]
    out = np.empty((X.shape[0], model.output_shape[-1]), dtype=np.float64)
    for start in range(0, X.shape[0], _EVAL_BATCH):
        x = X[start : start + _EVAL_BATCH].astype(np.float64)
        for kernel, bias, activation in steps:
            if kernel is None:  # a trailing batch norm
                x = x * bias[0] + bias[1]
                continue
            x = x @ kernel
            x += bias
            if activation is relu:
                np.maximum(x, 0, out=x)
            else:
                x = activation(x)
        out[start : start + len(x)] = x
    return out


def _training_batches(X, Y, batch_size, seed):
    """The data arguments of ``model.fit``: the rows in shuffled batches.

    On TensorFlow, a ``tf.data`` pipeline of its own: the row indices
    reshuffled every epoch (seeded by ``seed`` and TensorFlow's global seed),
    cut into batches, each gathered from ``X`` and ``Y``, in order, on one
    thread. What ``model.fit(X, Y, shuffle=True)`` builds instead adds an
    autotuned parallel map and prefetching whose threads take a share of the
    core the training step runs on, for a gather that costs little. On one
    core (AVX2), an epoch of the default net on 21,433 rows took 20.6 s
    that way and 19.3 s this way; 15.6 s with the kernel padding of
    :func:`_stride_pad` as well (20.6 s with the padding alone). Other
    backends get the arrays and ``shuffle=True``.
    """
    if keras.backend.backend() != "tensorflow":
        return dict(x=X, y=Y, batch_size=batch_size, shuffle=True)
    import tensorflow as tf

    with tf.device("CPU:0"):  # tf.data's ops run there, whatever the net's device
        X, Y = tf.constant(X, dtype="float32"), tf.constant(Y, dtype="float32")
    n = int(X.shape[0])
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    batches = (
        tf.data.Dataset.range(n)
        .shuffle(n, seed=int(seed), reshuffle_each_iteration=True)
        .batch(batch_size)
        .map(lambda rows: (tf.gather(X, rows), tf.gather(Y, rows)))
        .with_options(options)
    )
    return dict(x=batches, shuffle=False)  # (model.fit warns on shuffle=True)


def _binary_cross_entropy(Y, proba, eps=1e-7):
    """Mean binary cross-entropy, clipped as Keras' loss (``epsilon`` 1e-7)."""
    proba = np.clip(proba, eps, 1 - eps)
    return float(-np.mean(Y * np.log(proba) + (1 - Y) * np.log1p(-proba)))


def _build_model(
    n_features,
    n_outputs,
    *,
    hidden_sizes,
    dropouts,
    activation,
    batch_norm,
    weight_norm,
    seed,
    output_bias=None,
):
    """The notebooks' net: [BN, Dropout, Dense] blocks and a sigmoid head.

    ``dropouts[i]`` acts on the input of the i-th dense layer (the first on
    the features, the last on the input of the head). Every initialiser and
    dropout layer gets its own seed drawn from ``seed``. The head's bias
    starts at ``output_bias`` (the logits of the targets' prevalence), where
    given.
    """
    rng = np.random.RandomState(seed)

    def draw():
        return int(rng.randint(1, np.iinfo(np.int32).max))

    sizes = [*hidden_sizes, n_outputs]
    layers = [keras.Input(shape=(n_features,))]
    for i, units in enumerate(sizes):
        head = i == len(sizes) - 1
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        if dropouts[i] > 0:
            layers.append(keras.layers.Dropout(dropouts[i], seed=draw()))
        act = "sigmoid" if head else activation
        init = keras.initializers.GlorotUniform(seed=draw())
        if weight_norm == "all" or (weight_norm == "head" and head):
            layers.append(_WeightNormDense(units, act, kernel_initializer=init))
        else:
            layers.append(keras.layers.Dense(units, act, kernel_initializer=init))
    model = keras.Sequential(layers)
    if output_bias is not None:
        model.layers[-1].bias.assign(np.asarray(output_bias, dtype=np.float32))
    return model


# ------------------------------------------------------- seeds and devices
@contextlib.contextmanager
def _seeded(seed):
    """Seed Keras and its backend for one fit.

    ``keras.utils.set_random_seed`` seeds Python's ``random``, NumPy's global
    generator, TensorFlow's global seed (the shuffling of the batches) and,
    on the torch backend, torch's generator. The Python, NumPy and torch
    states are restored on exit; TensorFlow's global seed cannot be read back
    and stays at ``seed``. On TensorFlow, op determinism is switched on
    inside (and off again on exit, if it was off).
    """
    with contextlib.ExitStack() as stack:
        # the global generators that keras.utils.set_random_seed reseeds
        py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
        stack.callback(np.random.set_state, np_state)
        stack.callback(random.setstate, py_state)
        backend = keras.backend.backend()
        if backend == "torch":
            import torch

            stack.enter_context(torch.random.fork_rng(devices=[]))
        keras.utils.set_random_seed(int(seed))
        if backend == "tensorflow":
            from tensorflow.python.framework import config as tf_config

            if not tf_config.is_op_determinism_enabled():
                tf_config.enable_op_determinism()
                stack.callback(tf_config.disable_op_determinism)
        yield


def _set_tensorflow_threads(n):
    """Size TensorFlow's thread pools to ``n`` threads, where it still can.

    TensorFlow creates its intra-op and inter-op thread pools when its
    runtime starts (its first operation in the process) and cannot resize
    them after: ``tf.config.threading`` then raises. Asking again for the
    size they have is fine; asking for another size warns that ``n_threads``
    is not applied, and training goes on with the pools as they are.
    """
    import tensorflow as tf

    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(n)
        threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:
        warnings.warn(
            f"KerasNetClassifier(n_threads={n}) is not applied: TensorFlow "
            "sizes its thread pools once, when its runtime starts in the "
            "process, and they are already set. Give the same n_threads to "
            "every Keras fit of the process (the first one sets it), or set "
            "TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS before Python "
            "starts.",
            UserWarning,
            stacklevel=2,
        )


@contextlib.contextmanager
def _fit_threads(n):
    """``n`` CPU threads for the Keras backend inside (None: unchanged).

    On TensorFlow, its thread pools (:func:`_set_tensorflow_threads`; they
    cannot be restored); on torch, ``torch.set_num_threads``, restored on
    exit; other backends are left as they are.
    """
    backend = keras.backend.backend()
    if n is not None and backend == "tensorflow":
        _set_tensorflow_threads(n)
    if n is not None and backend == "torch":
        from ._torch_utils import num_threads

        with num_threads(n):
            yield
        return
    yield


def _gpu_count():
    """Number of GPUs that the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if backend == "jax":  # pragma: no cover - jax is not a test dependency
        import jax

        try:
            return len(jax.devices("gpu"))
        except RuntimeError:
            return 0
    return 0  # pragma: no cover - numpy / openvino backends run on CPU


def resolve_keras_device(device):
    """Map ``device`` to a Keras device name, ``"cpu"`` or ``"gpu:N"``.

    ``"auto"`` (or None) is the first GPU when the Keras backend sees one,
    else the CPU; ``"cuda"`` / ``"gpu"`` (``":N"`` for another one) is an
    error on a machine where the backend sees no GPU.
    """
    if device is None or device == "auto":
        return "gpu:0" if _gpu_count() else "cpu"
    if not isinstance(device, str):
        raise ValueError(
            'device must be "auto", "cpu", "cuda", "cuda:N", "gpu" or "gpu:N", '
            f"got {device!r}."
        )
    name = device.lower()
    if name in ("cpu", "cpu:0"):
        # "cpu", not "cpu:0": Keras 3.15's torch backend cannot create the
        # integer state of a seeded dropout layer under keras.device("cpu:0")
        return "cpu"
    kind, _, index = name.partition(":")
    if kind in ("cuda", "gpu") and (index == "" or index.isdigit()):
        index = int(index or 0)
        n_gpus = _gpu_count()
        if n_gpus == 0:
            raise ValueError(
                f"device={device!r} but the Keras backend "
                f"({keras.backend.backend()}) sees no GPU on this machine. Use "
                'device="cpu" or device="auto".'
            )
        if index >= n_gpus:
            raise ValueError(f"device={device!r}: this machine has {n_gpus} GPU(s).")
        return f"gpu:{index}"
    raise ValueError(
        'device must be "auto", "cpu", "cuda", "cuda:N", "gpu" or "gpu:N", '
        f"got {device!r}."
    )


def _usable_device(device):
    """The device a model trained on ``device`` runs on here (GPU or CPU)."""
    if device is not None and str(device).startswith("gpu"):
        index = int(str(device).partition(":")[2] or 0)
        if index < _gpu_count():
            return device
    return "cpu"


# ------------------------------------------------------------------ estimator
@shared_docs(
    hidden_sizes="The notebooks': 2048 and 1048.",
    weight_norm="The notebooks: all.",
    weight_decay="Decoupled from the gradient, as in AdamW.",
    patience="An improvement is a decrease by more than ``min_delta``. Here 5 "
    "(10 before): on new compounds of the default world the best epoch was "
    "the 3rd to the 5th in every fit measured, so the last 5 of 10 epochs "
    "without improvement were paid for and thrown away; 5 keeps the same best "
    "epoch whenever it comes by the 6th.",
    lr_factor="The monitored loss is the validation loss, or the training "
    "loss without inner validation.",
    clip="The notebooks clip to 0.001 and 0.999.",
    device='``"gpu"`` and ``"gpu:N"`` name the same GPUs as ``"cuda"`` and '
    '``"cuda:N"``: those that the Keras backend sees.',
    n_threads="On TensorFlow it sizes TensorFlow's thread pools, which "
    "TensorFlow fixes when its runtime starts (its first operation in the "
    "process): the first Keras fit of the process sets them, they stay so "
    "(not restored), and a later fit that asks for another number warns "
    "that it is not applied. On Keras' torch backend it is "
    "``torch.set_num_threads``, restored afterwards; other backends keep "
    "their setting. ``predict_proba`` runs in NumPy, its BLAS limited to "
    "``n_threads`` threads.",
    random_state="Each fit runs under ``keras.utils.set_random_seed`` "
    "(Python's, NumPy's and torch's random states are restored afterwards; "
    "TensorFlow's global seed is left set) and, on TensorFlow, with op "
    "determinism switched on for its duration.",
    verbose="Here: Keras' line per epoch.",
    n_aux_="Not used by this net.",
    device_='Its Keras name (``"cpu"``, ``"gpu:0"``, ...).',
)
class KerasNetClassifier(BaseMultilabelNet):
    """Multilabel MLP of the lish-moa Keras notebooks (Keras 3).

    The net of the public "Keras multilabel neural network" notebooks: blocks
    of batch normalisation, dropout and a weight-normalised dense layer, a
    sigmoid head over the labels, binary cross-entropy on label-smoothed
    targets, Adam, ``ReduceLROnPlateau`` and early stopping with the best
    epoch's weights restored, both on the inner validation split. The head's
    bias starts at the logit of each label's prevalence in the training rows,
    so that rare labels cost little from the first batch on. ``n_seeds`` nets
    are trained and their probabilities averaged; predictions are clipped.

    The net runs on the Keras backend of the process: TensorFlow unless the
    ``KERAS_BACKEND`` environment variable names another one before Keras is
    first imported (``"torch"`` works too). Install the extra with ``pip
    install "moa-sklearn[keras]"``.

    Parameters
    ----------
    %(hidden_sizes)s
    dropouts : 'auto', float or sequence of float, default='auto'
        Dropout on the input of each dense layer: one value for the features
        (first layer) and one for the input of every later layer and of the
        head, i.e. ``len(hidden_sizes) + 1`` values, or one float for all.
        ``'auto'``: the notebooks' (0.2, 0.5, 0.5) for two hidden layers (the
        default ``hidden_sizes``), stretched over any other number of dense
        layers by linear interpolation of that profile: (0.2, 0.5) for one
        hidden layer, (0.2, 0.4, 0.5, 0.5) for three.
    activation : {"relu", "leaky_relu", "elu", "selu", "gelu", "silu", \
            "swish", "tanh"}, default="relu"
        Activation of the hidden layers.
    %(batch_norm, weight_norm)s
    %(max_epochs, batch_size, learning_rate, weight_decay)s
    %(lr_factor, lr_patience, min_lr, patience)s
    min_delta : float, default=1e-4
        Smallest change of the monitored loss that counts as an improvement.
    %(label_smoothing, clip, n_seeds, validation_fraction)s
    %(device, n_threads, random_state, verbose)s

    Attributes
    ----------
    %(classes_, n_labels_, target_names_, n_features_in_, feature_names_in_)s
    %(n_aux_)s
    models_ : list of keras.Model
        The fitted net of each seed.
    %(seeds_)s
    history_ : list of dict
        One record per seed and epoch: ``seed``, ``epoch``, ``train_loss``,
        ``valid_loss`` (None without validation), ``lr`` (during the epoch),
        ``best`` (the epoch whose weights were kept), ``dur`` (seconds).
    %(device_)s
    %(validation_indices_, validation_proba_)s
    backend_ : str
        The Keras backend used for training.

    Notes
    -----
    ``y_aux`` is accepted by ``fit`` (so that it can be routed to every net
    of a blend) and not used. The notebooks' Lookahead optimiser (TensorFlow
    Addons) has no Keras 3 counterpart and is not reproduced. The fitted nets
    pickle as their Keras configuration and weights (NumPy arrays); loading
    needs Keras, any backend.

    Examples
    --------
    >>> import numpy as np
    >>> from moa_sklearn.neural import KerasNetClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = (X[:, :3] + rng.normal(size=(60, 3)) > 0).astype(int)
    >>> net = KerasNetClassifier(hidden_sizes=(16,), dropouts=0.1, max_epochs=3,
    ...                          batch_size=16, device="cpu", random_state=0)
    >>> drugs = np.repeat(np.arange(10), 6)  # the drug id of each row
    >>> net.fit(X, Y, groups=drugs).predict_proba(X).shape
    (60, 3)
    >>> net.predict(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseMultilabelNet._parameter_constraints,
        **_MLP_CONSTRAINTS,
        **_PLATEAU_CONSTRAINTS,
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "min_delta": [_NON_NEGATIVE_REAL],
    }

    def __init__(
        self,
        hidden_sizes=(2048, 1048),
        dropouts="auto",
        activation="relu",
        batch_norm=True,
        weight_norm="all",
        max_epochs=35,
        batch_size=128,
        learning_rate=1e-3,
        weight_decay=0.0,
        lr_factor=0.1,
        lr_patience=3,
        min_lr=1e-6,
        patience=5,
        min_delta=1e-4,
        label_smoothing=0.001,
        clip=(0.001, 0.999),
        n_seeds=1,
        validation_fraction=0.1,
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.hidden_sizes = hidden_sizes
        self.dropouts = dropouts
        self.activation = activation
        self.batch_norm = batch_norm
        self.weight_norm = weight_norm
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_lr = min_lr
        self.patience = patience
        self.min_delta = min_delta
        self.label_smoothing = label_smoothing
        self.clip = clip
        self.n_seeds = n_seeds
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_relations(self):
        super()._check_param_relations()
        n_dense = len(_check_hidden_sizes(self.hidden_sizes)) + 1
        self._dropouts = _per_layer_dropouts(
            self.dropouts,
            n_dense,
            f"dense layer (len(hidden_sizes) + 1 = {n_dense})",
            _DROPOUT_PROFILE,
        )

    def _resolve_device(self):
        return resolve_keras_device(self.device)

    def _engine_attributes(self):
        return {"backend_": keras.backend.backend()}

    # ---------------------------------------------------------------- engine
    def _n_epochs(self):
        return self.max_epochs

    def _callbacks(self, log, validation):
        """The plateau schedule and, with validation, early stopping."""
        monitor = "val_loss" if validation else "loss"
        callbacks = [
            log,
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                factor=self.lr_factor,
                patience=self.lr_patience,
                min_delta=self.min_delta,
                min_lr=self.min_lr,
                verbose=0,
            ),
        ]
        if validation:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor=monitor,
                    patience=self.patience or self.max_epochs + 1,
                    min_delta=self.min_delta,
                    restore_best_weights=True,
                )
            )
        return callbacks

    def _fit_one(self, X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device):
        with (
            quiet_engine_logs(),
            _fit_threads(self.n_threads),
            _seeded(seed),
            keras.device(device),
            warnings.catch_warnings(),
        ):
            # Keras (3.15) converts TensorFlow variables with np.array, which
            # NumPy >= 2 flags on every epoch; nothing the caller can act on
            warnings.filterwarnings(
                "ignore",
                message="__array__ implementation doesn't accept a copy keyword",
                category=DeprecationWarning,
            )
            model = _build_model(
                X.shape[1],
                Y.shape[1],
                hidden_sizes=[int(h) for h in self.hidden_sizes],
                dropouts=self._dropouts,
                activation=self.activation,
                batch_norm=bool(self.batch_norm),
                weight_norm=self.weight_norm,
                seed=seed,
                output_bias=_prior_logits(Y),
            )
            model.compile(
                optimizer=keras.optimizers.Adam(
                    learning_rate=self.learning_rate,
                    weight_decay=self.weight_decay or None,
                ),
                loss=keras.losses.BinaryCrossentropy(),
            )
            log = _EpochLog(X_valid, Y_valid, self._epoch_done)
            callbacks = self._callbacks(log, validation=X_valid is not None)
            model.fit(
                **_training_batches(X, Y, self.batch_size, seed),
                epochs=self.max_epochs,
                callbacks=callbacks,
                verbose=2 if self.verbose >= 2 else 0,
            )
        records = log.records
        stopper = callbacks[-1] if X_valid is not None else None
        best = stopper.best_epoch if stopper is not None else len(records) - 1
        for i, record in enumerate(records):
            record["best"] = i == best
        return model, records

    def _predict_proba_one(self, model, X):
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            return _numpy_forward(model, X)

    # ----------------------------------------------------------- persistence
    def _serialize_model(self, model):
        return {
            "config": model.to_json(),
            "weights": [np.asarray(w) for w in model.get_weights()],
        }

    def _deserialize_model(self, payload):
        with keras.device(_usable_device(getattr(self, "device_", None))):
            model = keras.models.model_from_json(
                payload["config"], custom_objects=_CUSTOM_OBJECTS
            )
            model.set_weights(payload["weights"])
        return model
