"""The two-step PyTorch net (pretrain on all targets, fine-tune on the scored).

Imported on first access to ``moa_sklearn.neural.TwoStepNetClassifier``:
this module imports torch and skorch.
"""

import math
from numbers import Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import (
    _EVAL_BATCH,
    _MLP_CONSTRAINTS,
    _NON_NEGATIVE_REAL,
    _OPEN_FRACTION,
    _POSITIVE_INT,
    _POSITIVE_REAL,
    _TORCH_EXTRA,
    BaseMultilabelNet,
    _check_hidden_sizes,
    _per_layer_dropouts,
    _prior_logits,
)
from ._docs import TORCH_THREADS, shared_docs
from ._torch_utils import (
    autocast,
    device_for_loading,
    flush_subnormal_,
    num_threads,
    resolve_precision,
    seeded,
    state_dict_from_bytes,
    state_dict_to_bytes,
)

try:
    import torch
    from skorch import NeuralNet
    from skorch.callbacks import (
        Callback,
        EarlyStopping,
        Freezer,
        LRScheduler,
        Unfreezer,
    )
    from skorch.helper import predefined_split
    from torch import nn
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the env
    raise ImportError(
        f"TwoStepNetClassifier needs PyTorch and skorch: {_TORCH_EXTRA}"
    ) from exc

__all__ = ["TwoStepNetClassifier"]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
}

# dropouts='auto': the recipe's dropouts for the default hidden_sizes, stretched
# over other depths (see _auto_dropouts)
_DROPOUT_PROFILE = (0.5, 0.35, 0.3, 0.25)


# --------------------------------------------------------------------- module
def _linear(n_in, n_out, weight_norm):
    layer = nn.Linear(n_in, n_out)
    if weight_norm:
        layer = nn.utils.parametrizations.weight_norm(layer, name="weight", dim=0)
    return layer


class _Dropout(nn.Module):
    """Dropout with the same law as ``nn.Dropout``, faster on CPU.

    The mask is drawn as ``rand >= p``: on CPU, ``torch.rand`` is about five
    times faster than the ``bernoulli_`` that ``nn.Dropout`` uses, and the
    dropout masks were the largest cost after the matrix products in the
    bf16 profile.
    """

    def __init__(self, p):
        super().__init__()
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device) >= self.p
        return x * keep.to(x.dtype).mul_(1.0 / (1.0 - self.p))

    def extra_repr(self):
        return f"p={self.p}"


def _block(n_in, n_out, dropout, activation, batch_norm, weight_norm):
    layers = []
    if batch_norm:
        layers.append(nn.BatchNorm1d(n_in))
    if dropout > 0:
        layers.append(_Dropout(dropout))
    layers.append(_linear(n_in, n_out, weight_norm))
    if activation is not None:
        layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class _TwoStepModule(nn.Module):
    """MLP of the public two-step notebook: blocks of [BN, Dropout, Linear, act].

    ``body[i]`` maps hidden layer i-1 (or the input) to hidden layer i; the
    dropout ``dropouts[i]`` acts on the output of hidden layer i (so at the
    start of ``body[i + 1]`` or of the head). The head is [BN, Dropout,
    Linear] to the logits. ``config`` holds the constructor arguments, so that
    the module can be rebuilt from a state dict.
    """

    def __init__(
        self,
        n_features,
        n_outputs,
        hidden_sizes,
        dropouts,
        activation,
        batch_norm,
        weight_norm,
        n_powerset=0,
    ):
        super().__init__()
        self.config = dict(
            n_features=n_features,
            n_outputs=n_outputs,
            hidden_sizes=list(hidden_sizes),
            dropouts=list(dropouts),
            activation=activation,
            batch_norm=batch_norm,
            weight_norm=weight_norm,
            n_powerset=n_powerset,
        )
        sizes = [n_features, *hidden_sizes]
        drop_in = [0.0, *dropouts[:-1]]
        self.body = nn.ModuleList(
            _block(
                sizes[i],
                sizes[i + 1],
                drop_in[i],
                activation,
                batch_norm,
                weight_norm == "all",
            )
            for i in range(len(hidden_sizes))
        )
        self.head = _block(
            sizes[-1], n_outputs, dropouts[-1], None, batch_norm, weight_norm != "none"
        )
        self.powerset_head = None
        if n_powerset:
            # the label-powerset head: logits of the label vectors of training
            # (and "other"); ``powerset_vectors`` turns them back into labels
            self.powerset_head = _block(
                sizes[-1],
                n_powerset,
                dropouts[-1],
                None,
                batch_norm,
                weight_norm != "none",
            )
            self.register_buffer("powerset_vectors", torch.zeros(n_powerset, n_outputs))
            self.register_buffer("powerset_weight", torch.zeros(()))

    def forward(self, x):
        for block in self.body:
            x = block(x)
        if self.powerset_head is None:
            return self.head(x)
        # one tensor for skorch: the label logits, then the powerset logits
        return torch.cat([self.head(x), self.powerset_head(x)], dim=1)


def _probabilities(module, logits):
    """P(label = 1) from the module's logits (mixed with the powerset head's)."""
    k = module.config["n_outputs"]
    proba = torch.sigmoid(logits[:, :k])
    if module.powerset_head is None:
        return proba
    alpha = module.powerset_weight.double()
    from_vectors = (
        torch.softmax(logits[:, k:], dim=1) @ module.powerset_vectors.double()
    )
    return (1 - alpha) * proba + alpha * from_vectors


class _PowersetLoss(nn.Module):
    """BCE of the label logits plus the cross-entropy of the powerset head.

    The target holds the (smoothed) labels, then the one-hot label vector;
    the cross-entropy is divided by the number of labels, so that the two
    terms weigh alike (the BCE is a mean over the labels).
    """

    def __init__(self, n_labels):
        super().__init__()
        self.n_labels = n_labels

    def forward(self, logits, target):
        k = self.n_labels
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits[:, :k], target[:, :k]
        )
        ce = nn.functional.cross_entropy(logits[:, k:], target[:, k:].argmax(dim=1))
        return bce + ce / k


def _label_vectors(Y, min_count):
    """The label-powerset classes of the 0/1 rows of ``Y``.

    Returns ``(vectors, codes)``: the label vectors seen at least
    ``min_count`` times, then an "other" class whose vector is the mean of
    the rows it pools (the rare vectors; zeros when there are none); and each
    row's class.
    """
    uniq, codes, counts = np.unique(
        Y > 0.5, axis=0, return_inverse=True, return_counts=True
    )
    codes = codes.ravel()
    keep = np.flatnonzero(counts >= min_count)
    new_code = np.full(len(uniq), len(keep))  # rare vectors: "other"
    new_code[keep] = np.arange(len(keep))
    codes = new_code[codes]
    other = Y[codes == len(keep)] > 0.5
    other = other.mean(axis=0) if len(other) else np.zeros(Y.shape[1])
    vectors = np.vstack([uniq[keep].astype(np.float64), other])
    return vectors, codes


def _with_powerset(Y, Y_valid, powerset):
    """The targets of a step with the powerset head: labels, then one-hot class.

    ``powerset`` is ``(vectors, codes)`` of the training rows (None: the
    labels alone); a validation row's class is its vector's, or "other".
    """
    if powerset is None:
        return Y, Y_valid
    vectors, codes = powerset
    eye = np.eye(len(vectors), dtype=Y.dtype)
    Y = np.hstack([Y, eye[codes]])
    if Y_valid is not None:
        Y_valid = np.hstack([Y_valid, eye[_powerset_codes(Y_valid, vectors)]])
    return Y, Y_valid


def _powerset_codes(Y, vectors):
    """The class of each 0/1 row of ``Y`` among ``vectors`` (else "other")."""
    seen = {tuple(v): i for i, v in enumerate(vectors[:-1] > 0.5)}
    other = len(vectors) - 1
    return np.array([seen.get(tuple(row), other) for row in Y > 0.5], dtype=np.int64)


# ------------------------------------------------------------------ data path
class _TensorDataset(torch.utils.data.Dataset):
    """Pre-built (X, y) tensors, already on the training device."""

    def __init__(self, X, y=None):
        self.X = X
        self.y = y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):  # pragma: no cover - the fast path slices instead
        return self.X[i], self.y[i]


def _n_train_batches(n, batch_size):
    """Batches per training epoch: a last batch of a single row is dropped
    (batch normalisation cannot train on one row)."""
    return n // batch_size + (1 if n % batch_size > 1 else 0)


class _TensorBatches:
    """skorch iterator: batches sliced from the dataset's tensors.

    Replaces skorch's default ``DataLoader``, which collates every batch from
    single rows (one ``__getitem__`` call per row): here a training batch is
    one ``index_select`` of a random permutation and a validation batch is a
    view. In training, a last batch of a single row is dropped.
    """

    def __init__(self, dataset, batch_size=128, shuffle=False, generator=None):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator

    def __len__(self):
        n = len(self.dataset)
        if self.shuffle:
            return _n_train_batches(n, self.batch_size)
        return math.ceil(n / self.batch_size)

    def __iter__(self):
        X, y = self.dataset.X, self.dataset.y
        n, bs = len(X), self.batch_size
        if not self.shuffle:
            for start in range(0, n, bs):
                yield X[start : start + bs], y[start : start + bs]
            return
        perm = torch.randperm(n, generator=self.generator).to(X.device)
        for b in range(_n_train_batches(n, bs)):
            idx = perm[b * bs : (b + 1) * bs]
            yield X.index_select(0, idx), y.index_select(0, idx)


class _Interrupted(BaseException):
    """Carries a ``KeyboardInterrupt`` past skorch's ``partial_fit``.

    skorch's ``NeuralNet.partial_fit`` catches ``KeyboardInterrupt`` around its
    training loop and returns as if training had finished; inside this
    package's ``fit`` that would turn Ctrl-C into a half-trained net that
    looks fitted. :class:`_FastNeuralNet` wraps the interrupt in this class
    (which skorch does not catch) and unwraps it again.
    """


class _FastNeuralNet(NeuralNet):
    """skorch NeuralNet that trains under optional autocast, loss in fp32.

    A ``KeyboardInterrupt`` (Ctrl-C) during training propagates out of
    ``fit`` / ``partial_fit`` instead of ending training quietly.
    """

    def __init__(self, *args, autocast_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        try:
            return super().fit_loop(X, y, epochs, **fit_params)
        except KeyboardInterrupt as exc:
            if any(getattr(cb, "stopped_", False) for _, cb in self.callbacks_):
                return self  # early stopping, not Ctrl-C: on to on_train_end
            raise _Interrupted() from exc

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        try:
            return super().partial_fit(X, y, classes, **fit_params)
        except _Interrupted as exc:
            raise exc.__cause__ from None

    def infer(self, x, **fit_params):
        with autocast(self.device, self.autocast_dtype):
            return self.module_(x, **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        return self.criterion_(y_pred.float(), y_true)


class _EpochHook(Callback):
    """Report each finished epoch to ``fn`` (the base's progress hook)."""

    def __init__(self, fn, step):
        self.fn = fn
        self.step = step

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        self.fn(
            {
                "step": self.step,
                "epoch": row["epoch"],
                "train_loss": row.get("train_loss"),
                "valid_loss": row.get("valid_loss"),
            }
        )


class _FlushSubnormal(Callback):
    """Zero the module's subnormal weights at the end of every epoch.

    Before the best epoch's state is kept (the callbacks run in order), so
    that the kept and the final module hold none: subnormal weights slow
    every later forward pass (see :func:`flush_subnormal_`).
    """

    def on_epoch_end(self, net, **kwargs):
        flush_subnormal_(net.module_)


class _KeepBestEpoch(EarlyStopping):
    """skorch's ``EarlyStopping`` that says when it stopped training.

    skorch stops training with a ``KeyboardInterrupt``; ``stopped_`` tells
    :class:`_FastNeuralNet` that this one is early stopping, which ends
    training as planned, and not the user's Ctrl-C (see
    :class:`_Interrupted`).
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.stopped_ = False

    def on_epoch_end(self, net, **kwargs):
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            self.stopped_ = self.misses_ == self.patience
            raise


def _keep_best_epoch(epochs, patience=None):
    """The keeper of the best epoch, in memory, with optional early stopping.

    It copies the module's state at each epoch that lowers the validation
    loss (strictly: ``threshold=0``) and loads the best one back at the end
    of training. Training stops after ``patience`` epochs without a lower
    validation loss; None: never (a patience above the number of epochs).
    """
    return _KeepBestEpoch(
        monitor="valid_loss",
        patience=epochs + 1 if patience is None else patience,
        threshold=0,
        threshold_mode="abs",
        load_best=True,
    )


# ------------------------------------------------------------------ estimator
@shared_docs(
    hidden_sizes="One body block per entry.",
    weight_norm="The public net: the head.",
    validation_fraction="The best epoch of each step is chosen on it.",
    n_threads=TORCH_THREADS,
    verbose="Here: the steps and skorch's log of every epoch.",
    n_aux_="Step 1 trains on them with ``y`` (0 without ``y_aux``).",
)
class TwoStepNetClassifier(BaseMultilabelNet):
    """Two-step multilabel MLP of the lish-moa recipe (PyTorch on skorch).

    1. **Pretrain**: the body (blocks of batch norm, dropout, linear,
       activation) and a head are trained on the targets ``y`` and the
       auxiliary targets ``y_aux`` together (206 + 402 in lish-moa); the epoch
       with the lowest loss on the inner validation split is kept.
    2. **Fine-tune**: the head is replaced by a fresh one for ``y`` only, the
       body is frozen, then unfrozen block by block from the back, one more
       block every ``unfreeze_every`` epochs; it has its own OneCycle
       learning-rate schedule; the best epoch by inner validation loss is
       kept.

    Without ``y_aux``, step 1 pretrains on ``y`` alone; ``pretrain=False``
    skips step 1, and step 2 then trains the whole net from scratch (no
    freezing). The bias of each head starts at the logit of each target's
    prevalence. ``n_seeds`` nets are trained and their probabilities
    averaged. The default body is two layers of 2048 units (the public
    recipe's width): on unseen drugs of the default ``make_moa`` world it
    scored 0.01644 against 0.01758 for the seed's four narrowing layers
    (1500-1250-1000-750; ``benchmarks/ablations.py``, see the docs'
    benchmarks page).

    Training runs on skorch's ``NeuralNet``: skorch callbacks do the
    freezing schedule (``Freezer`` / ``Unfreezer``), the OneCycle schedule
    (``LRScheduler``), the choice of the best epoch (``EarlyStopping`` with
    ``load_best``, in memory), the history and the log. See the Notes for
    the fast path.

    Parameters
    ----------
    %(hidden_sizes)s
    dropouts : 'auto', float or sequence of float, default='auto'
        Dropout on the output of each hidden layer (one per hidden layer, or
        one float for all). ``'auto'``: the public four-layer net's (0.5,
        0.35, 0.3, 0.25), stretched over any other number of layers by
        linear interpolation from 0.5 (first) to 0.25 (last): 0.5 for one
        layer, (0.5, 0.25) for two (the default ``hidden_sizes``),
        (0.5, 0.325, 0.25) for three.
    activation : {"leaky_relu", "relu", "elu", "selu", "gelu", "silu", "tanh"}, \
            default="leaky_relu"
    %(batch_norm, weight_norm)s
    pretrain : bool, default=True
        Run step 1 (on ``y`` and ``y_aux``, or on ``y`` alone without
        ``y_aux``). If False, only step 2 runs, on a fresh net, unfrozen.
    max_epochs_pretrain, max_epochs_finetune : int, default=24
        Epochs of step 1 and of step 2 (the best of each is kept).
    unfreeze_every : int or None, default=4
        In step 2 the body starts frozen (only the new head trains); after
        every ``unfreeze_every`` epochs one more block is unfrozen, from the
        back. None: the body is not frozen in step 2.
    patience_finetune : int or None, default=8
        Early stopping of step 2: it ends after ``patience_finetune`` epochs
        without a lower inner validation loss (the best epoch is kept either
        way, and the OneCycle schedule still spans ``max_epochs_finetune``
        epochs, so the epochs run are those of a full step). None: every
        epoch runs. Step 1 always runs all its epochs: its validation loss
        can stall for many epochs around the schedule's peak before its best
        (18 in a fit of the default recipe). On new compounds of the default
        world the best fine-tuning epoch of the default net was the 1st to
        the 4th of 24 in every fit measured: 8 keeps that epoch, and stops
        at the 9th to 12th (the 10th in the quality run's fits).
    %(batch_size)s
    learning_rate_pretrain, learning_rate_finetune : float, default=1e-2, 3e-3
        Peak learning rate of the OneCycle schedule of each step.
    weight_decay_pretrain, weight_decay_finetune : float, default=1e-5, 3e-6
        Adam's (L2) weight decay in each step.
    div_factor_pretrain, div_factor_finetune : float, default=1e3, 1e2
        OneCycle's ``div_factor`` of each step: its learning rate starts at
        ``learning_rate_<step> / div_factor_<step>``.
    pct_start : float, default=0.1
        Fraction of each step's schedule spent increasing the learning rate.
    powerset : float in [0, 1], default=0.3
        Weight of the label-powerset head (the 8th-place lish-moa idea) in
        the predicted probabilities; 0 turns it off. In the fine-tuning step
        (or the only step) a second head predicts a softmax over the label
        vectors of the training rows (the rare ones pooled into an "other"
        class, see ``powerset_min_count``), trained with the sigmoid head
        (loss: BCE + cross-entropy / n_labels, which also chooses the step's
        best epoch). Each label's probability is
        ``(1 - powerset) * sigmoid + powerset * sum_v P(v) v_label``, the
        "other" class counting as the mean vector of the rows it pools.
        On new compounds of the default world 0.3 scores 0.01629 against
        0.01644 without the head, better in each of 3 folds, at the same
        training time (docs/benchmarks.md).
    powerset_min_count : int, default=2
        Label vectors seen in fewer training rows than this are pooled into
        the "other" class of the powerset head.
    %(label_smoothing, clip, n_seeds, validation_fraction)s
    precision : {"auto", "fp32", "bf16"}, default="auto"
        "bf16" trains under bf16 autocast (weights, optimiser and loss stay
        fp32; an error where bf16 is not native); "auto" uses bf16 where the
        hardware supports it natively (CPUs with AVX512-BF16 or AMX, GPUs
        from Ampere on), else fp32; "fp32" never autocasts. Prediction is
        always fp32. In drug-grouped CV on a make_moa world, bf16 training
        was within 0.9% of fp32's log loss (slightly better, in fact). The
        environment variable ``MOA_SKLEARN_NO_BF16=1`` makes every device
        count as lacking native bf16 (as on an AVX2-only CPU).
    %(device, n_threads, random_state, verbose)s

    Attributes
    ----------
    %(classes_, n_labels_, target_names_, n_features_in_, feature_names_in_)s
    %(n_aux_)s
    models_ : list of torch.nn.Module
        The fitted net of each seed (in eval mode).
    %(seeds_)s
    history_ : list of dict
        One record per seed, step and epoch: ``seed``, ``step`` ("pretrain"
        or "finetune"), ``epoch``, ``n_outputs`` (targets of the step's
        head), ``train_loss``, ``valid_loss`` (at the training precision;
        None without validation; with the powerset head, the loss the step
        trains on: BCE + cross-entropy / n_labels), ``lr`` (at the end of
        the epoch),
        ``frozen_blocks``, ``best`` (the epoch whose weights were kept),
        ``dur`` (seconds). ``pandas.DataFrame(history_)`` gives learning
        curves.
    %(device_)s
    %(validation_indices_, validation_proba_)s

    Notes
    -----
    **Speed.** The profile of the Kaggle notebook's loop on CPU (batch 128,
    the 1500-1250-1000-750 net) is about half matrix products and half
    ``torch.optim.Adam``'s default per-parameter loop (about 30 ms per step
    for the 5.5M parameters), plus ``nn.Dropout``'s slow ``bernoulli_`` and
    the ``DataLoader``'s row-by-row collation. What this estimator changes,
    keeping skorch for everything else:

    - the data path: skorch's ``iterator_train`` / ``iterator_valid`` are a
      batch iterator that slices pre-built tensors (one ``index_select`` of a
      permutation per batch) instead of a ``DataLoader``; a last batch of a
      single row is dropped (batch normalisation needs 2);
    - Adam with ``fused=True`` (one pass over the parameters: ~3 ms a step);
    - dropout masks drawn with ``torch.rand`` (~5x faster on CPU than
      ``bernoulli_``, the same law);
    - ``precision="bf16"``: the matrix products under bf16 autocast (the
      weights, the optimiser and the loss stay fp32), about 4x faster
      products where the CPU has AVX512-BF16 or AMX;
    - ``n_threads`` to pin PyTorch's threads (1 per process when CV folds or
      a search run in parallel processes).

    skorch's per-batch bookkeeping (callbacks, history) costs well under a
    millisecond a batch and is kept. ``benchmarks/studies/bench_twostep_speed.py``
    measures seconds per epoch against the notebook loop.

    **Fold safety.** The best epoch of each step is chosen on an inner split
    of the rows given to ``fit`` (grouped by drug when ``groups`` is given),
    never on the outer CV's test fold as in the public notebooks.

    Examples
    --------
    >>> import numpy as np
    >>> from moa_sklearn.neural import TwoStepNetClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = (X[:, :3] + rng.normal(size=(60, 3)) > 0).astype(int)
    >>> Y_aux = (X[:, 3:] > 0).astype(int)
    >>> net = TwoStepNetClassifier(hidden_sizes=(16, 8), dropouts=0.1,
    ...                            max_epochs_pretrain=2,
    ...                            max_epochs_finetune=3,
    ...                            unfreeze_every=1, batch_size=16,
    ...                            device="cpu", random_state=0)
    >>> drugs = np.repeat(np.arange(10), 6)  # the drug id of each row
    >>> net.fit(X, Y, y_aux=Y_aux, groups=drugs).predict_proba(X).shape
    (60, 3)
    >>> net.predict(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseMultilabelNet._parameter_constraints,
        **_MLP_CONSTRAINTS,
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "pretrain": ["boolean"],
        "max_epochs_pretrain": [_POSITIVE_INT],
        "max_epochs_finetune": [_POSITIVE_INT],
        "unfreeze_every": [_POSITIVE_INT, None],
        "patience_finetune": [_POSITIVE_INT, None],
        "learning_rate_pretrain": [_POSITIVE_REAL],
        "learning_rate_finetune": [_POSITIVE_REAL],
        "weight_decay_pretrain": [_NON_NEGATIVE_REAL],
        "weight_decay_finetune": [_NON_NEGATIVE_REAL],
        "div_factor_pretrain": [_POSITIVE_REAL],
        "div_factor_finetune": [_POSITIVE_REAL],
        "pct_start": [_OPEN_FRACTION],
        "powerset": [Interval(Real, 0, 1, closed="both")],
        "powerset_min_count": [_POSITIVE_INT],
        "precision": [StrOptions({"auto", "fp32", "bf16"})],
    }

    def __init__(
        self,
        hidden_sizes=(2048, 2048),
        dropouts="auto",
        activation="leaky_relu",
        batch_norm=True,
        weight_norm="head",
        pretrain=True,
        max_epochs_pretrain=24,
        max_epochs_finetune=24,
        unfreeze_every=4,
        patience_finetune=8,
        batch_size=128,
        learning_rate_pretrain=1e-2,
        learning_rate_finetune=3e-3,
        weight_decay_pretrain=1e-5,
        weight_decay_finetune=3e-6,
        div_factor_pretrain=1e3,
        div_factor_finetune=1e2,
        pct_start=0.1,
        powerset=0.3,
        powerset_min_count=2,
        label_smoothing=0.001,
        clip=(0.0005, 0.9995),
        n_seeds=1,
        validation_fraction=0.1,
        precision="auto",
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
        self.pretrain = pretrain
        self.max_epochs_pretrain = max_epochs_pretrain
        self.max_epochs_finetune = max_epochs_finetune
        self.unfreeze_every = unfreeze_every
        self.patience_finetune = patience_finetune
        self.batch_size = batch_size
        self.learning_rate_pretrain = learning_rate_pretrain
        self.learning_rate_finetune = learning_rate_finetune
        self.weight_decay_pretrain = weight_decay_pretrain
        self.weight_decay_finetune = weight_decay_finetune
        self.div_factor_pretrain = div_factor_pretrain
        self.div_factor_finetune = div_factor_finetune
        self.pct_start = pct_start
        self.powerset = powerset
        self.powerset_min_count = powerset_min_count
        self.label_smoothing = label_smoothing
        self.clip = clip
        self.n_seeds = n_seeds
        self.validation_fraction = validation_fraction
        self.precision = precision
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _check_param_relations(self):
        super()._check_param_relations()
        hs = _check_hidden_sizes(self.hidden_sizes)
        self._dropouts = _per_layer_dropouts(
            self.dropouts, len(hs), f"hidden layer ({len(hs)})", _DROPOUT_PROFILE
        )

    # ---------------------------------------------------------------- engine
    def _new_module(self, n_features, targets, powerset=None):
        """A fresh net whose head's bias starts at the targets' prevalence.

        ``powerset``: ``(vectors, codes)`` of the training rows to add the
        label-powerset head, its bias at the log frequency of each class.
        """
        module = _TwoStepModule(
            n_features,
            targets.shape[1],
            hidden_sizes=[int(h) for h in self.hidden_sizes],
            dropouts=self._dropouts,
            activation=self.activation,
            batch_norm=bool(self.batch_norm),
            weight_norm=self.weight_norm,
            n_powerset=0 if powerset is None else len(powerset[0]),
        )
        with torch.no_grad():
            module.head[-1].bias.copy_(torch.from_numpy(_prior_logits(targets)))
            if powerset is not None:
                vectors, codes = powerset
                freq = np.bincount(codes, minlength=len(vectors)) + 0.5
                bias = np.log(freq / freq.sum()).astype(np.float32)
                module.powerset_head[-1].bias.copy_(torch.from_numpy(bias))
                module.powerset_vectors.copy_(torch.from_numpy(vectors).float())
                module.powerset_weight.fill_(float(self.powerset))
        return module

    def _callbacks(self, module, n_train, *, step, freeze, validation):
        """The skorch callbacks of one step: schedules, best epoch, progress."""
        epochs = getattr(self, f"max_epochs_{step}")
        total_steps = epochs * _n_train_batches(n_train, self.batch_size)
        pct_start = self.pct_start
        if abs(pct_start * total_steps - 1.0) < 1e-9:
            # OneCycleLR divides by zero when the warm-up lasts exactly one step
            pct_start = 0.0 if total_steps <= 2 else 2.0 / total_steps
        callbacks = [
            (
                "lr_scheduler",
                LRScheduler(
                    policy=torch.optim.lr_scheduler.OneCycleLR,
                    step_every="batch",
                    max_lr=getattr(self, f"learning_rate_{step}"),
                    total_steps=total_steps,
                    pct_start=pct_start,
                    div_factor=getattr(self, f"div_factor_{step}"),
                ),
            ),
        ]
        callbacks.append(("flush_subnormal", _FlushSubnormal()))
        # the progress hook before the keeper of the best epoch, which ends
        # training by raising at the end of the epoch that stops it
        callbacks.append(("progress", _EpochHook(self._epoch_done, step)))
        if validation:
            patience = self.patience_finetune if step == "finetune" else None
            callbacks.append(("keep_best", _keep_best_epoch(epochs, patience)))
        if freeze:
            n_blocks = len(module.body)
            callbacks.append(("freeze_body", Freezer("body.*", at=1)))
            for m in range(1, n_blocks + 1):
                at = 1 + m * self.unfreeze_every
                if at <= epochs:
                    callbacks.append(
                        (f"unfreeze_{m}", Unfreezer(f"body.{n_blocks - m}.*", at=at))
                    )
        return callbacks

    @staticmethod
    def _criterion(module):
        """skorch's criterion arguments: BCE, plus the powerset head's CE."""
        if module.powerset_head is None:
            return {"criterion": nn.BCEWithLogitsLoss}
        return {
            "criterion": _PowersetLoss,
            "criterion__n_labels": module.config["n_outputs"],
        }

    def _make_net(self, module, n_train, valid_ds, *, step, freeze, run):
        """One skorch NeuralNet for one step of training."""
        learning_rate = getattr(self, f"learning_rate_{step}")
        return _FastNeuralNet(
            module=module,
            **self._criterion(module),
            optimizer=torch.optim.Adam,
            lr=learning_rate / getattr(self, f"div_factor_{step}"),
            optimizer__weight_decay=getattr(self, f"weight_decay_{step}"),
            optimizer__fused=True,
            max_epochs=getattr(self, f"max_epochs_{step}"),
            batch_size=self.batch_size,
            iterator_train=_TensorBatches,
            iterator_train__shuffle=True,
            iterator_train__generator=run["generator"],
            iterator_valid=_TensorBatches,
            iterator_valid__batch_size=_EVAL_BATCH,
            dataset=_TensorDataset,
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=self._callbacks(
                module,
                n_train,
                step=step,
                freeze=freeze,
                validation=valid_ds is not None,
            ),
            predict_nonlinearity=None,
            verbose=int(self.verbose >= 2),
            device=run["device"],
            autocast_dtype=run["autocast_dtype"],
        )

    def _train_step(self, module, Y, Y_valid, *, step, freeze, run):
        """Train ``module`` for one step on ``run``'s rows; return the net."""

        def dataset(X, targets):
            return _TensorDataset(X, torch.tensor(targets, device=run["device"]))

        Xv = run["X_valid"]
        net = self._make_net(
            module,
            len(run["X"]),
            None if Xv is None else dataset(Xv, Y_valid),
            step=step,
            freeze=freeze,
            run=run,
        )
        net.fit(dataset(run["X"], Y))
        return net

    def _records(self, net, step, freeze):
        keep_best = dict(net.callbacks_).get("keep_best")
        best_epoch = getattr(keep_best, "best_epoch_", 0) or len(net.history)
        n_blocks = len(net.module_.body)
        records = []
        for row in net.history:
            epoch = row["epoch"]
            frozen = 0
            if freeze:
                frozen = n_blocks - min(n_blocks, (epoch - 1) // self.unfreeze_every)
            lrs = [b["event_lr"] for b in row["batches"] if "event_lr" in b]
            records.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "n_outputs": net.module_.config["n_outputs"],
                    "train_loss": row.get("train_loss"),
                    "valid_loss": row.get("valid_loss"),
                    "lr": lrs[-1] if lrs else None,
                    "frozen_blocks": frozen,
                    "best": epoch == best_epoch,
                    "dur": row.get("dur"),
                }
            )
        return records

    def _n_epochs(self):
        pretrain = self.max_epochs_pretrain if self.pretrain else 0
        return pretrain + self.max_epochs_finetune

    def _pretrain(self, X, Y, Y_valid, Y_aux, Y_aux_valid, run):
        """Step 1 on ``y`` and ``y_aux``; return the body's state and records."""
        if Y_aux is not None:
            Y = np.hstack([Y, Y_aux])
            if Y_valid is not None:
                Y_valid = np.hstack([Y_valid, Y_aux_valid])
        if self.verbose >= 2:
            print(f"step 1, pretrain on {Y.shape[1]} targets:")
        module = self._new_module(X.shape[1], Y)
        net = self._train_step(
            module, Y, Y_valid, step="pretrain", freeze=False, run=run
        )
        return net.module_.body.state_dict(), self._records(net, "pretrain", False)

    def _fit_one(self, X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device):
        records = []
        with num_threads(self.n_threads), seeded(seed, device):
            run = {
                "X": torch.tensor(X, device=device),
                "X_valid": None
                if X_valid is None
                else torch.tensor(X_valid, device=device),
                "generator": torch.Generator().manual_seed(seed),
                "device": device,
                "autocast_dtype": resolve_precision(self.precision, device),
            }
            body_state = None
            if self.pretrain:
                body_state, records = self._pretrain(
                    X, Y, Y_valid, Y_aux, Y_aux_valid, run
                )
            powerset = None
            if self.powerset > 0:
                powerset = _label_vectors(Y, self.powerset_min_count)
            module = self._new_module(X.shape[1], Y, powerset)
            if body_state is not None:
                module.body.load_state_dict(body_state)
            freeze = body_state is not None and self.unfreeze_every is not None
            if self.verbose >= 2:
                print(
                    f"step 2, {'fine-tune' if freeze else 'train'} on {Y.shape[1]} "
                    f"targets{', body frozen then unfrozen' if freeze else ''}:"
                )
            net = self._train_step(
                module,
                *_with_powerset(Y, Y_valid, powerset),
                step="finetune",
                freeze=freeze,
                run=run,
            )
            records += self._records(net, "finetune", freeze)
            module = net.module_
        for p in module.parameters():
            p.requires_grad_(True)
        flush_subnormal_(module)
        module.eval()
        return module, records

    def _predict_proba_one(self, model, X):
        device = next(model.parameters()).device
        out = np.empty((X.shape[0], model.config["n_outputs"]), dtype=np.float64)
        model.eval()
        with num_threads(self.n_threads), torch.inference_mode():
            for start in range(0, X.shape[0], _EVAL_BATCH):
                xb = torch.tensor(X[start : start + _EVAL_BATCH], device=device)
                proba = _probabilities(model, model(xb).double())
                out[start : start + _EVAL_BATCH] = proba.cpu().numpy()
        return out

    # ----------------------------------------------------------- persistence
    def _serialize_model(self, model):
        return {"config": dict(model.config), "state": state_dict_to_bytes(model)}

    def _deserialize_model(self, payload):
        # a new module draws its initial weights from torch's global
        # generator: keep the caller's random stream untouched
        with seeded(0, "cpu"):
            module = _TwoStepModule(**payload["config"])
        module.load_state_dict(state_dict_from_bytes(payload["state"]))
        module.to(device_for_loading(getattr(self, "device_", "cpu")))
        module.eval()
        return module
