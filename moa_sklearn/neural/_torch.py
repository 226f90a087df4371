"""The two-step PyTorch net (pretrain on all targets, fine-tune on the scored).

Imported on first access to ``moa_sklearn.neural.TwoStepNetClassifier``:
this module imports torch and skorch.
"""

import math

import numpy as np

from ._base import (
    _TORCH_EXTRA,
    BaseMultilabelNet,
    _check_hidden_sizes,
    _is_int,
    _is_real,
    _per_layer_dropouts,
)
from ._torch_utils import (
    autocast,
    device_for_loading,
    num_threads,
    resolve_precision,
    seeded,
    state_dict_from_bytes,
    state_dict_to_bytes,
)

try:
    import torch
    from skorch import NeuralNet
    from skorch.callbacks import Callback, Freezer, LRScheduler, Unfreezer
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

_WEIGHT_NORM = ("head", "all", "none")

# dropouts='auto': the recipe's dropouts for the default hidden_sizes, stretched
# over other depths (see _auto_dropouts)
_DROPOUT_PROFILE = (0.5, 0.35, 0.3, 0.25)

# rows per forward pass at prediction and validation time
_EVAL_BATCH = 4096


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

    def forward(self, x):
        for block in self.body:
            x = block(x)
        return self.head(x)


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


class _KeepBestEpoch(Callback):
    """Keep the weights of the epoch with the lowest validation loss (in memory).

    skorch's ``Checkpoint`` writes files; this keeps a copy of the state dict
    and loads it back at the end of training. Reset in ``on_train_begin``.
    Without validation data, the last epoch is kept.
    """

    def on_train_begin(self, net, **kwargs):
        self.best_loss_ = math.inf
        self.best_epoch_ = None
        self.best_state_ = None

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1].get("valid_loss")
        if loss is None or not loss < self.best_loss_:
            return
        self.best_loss_ = loss
        self.best_epoch_ = len(net.history)
        self.best_state_ = {
            k: v.detach().clone() for k, v in net.module_.state_dict().items()
        }

    def on_train_end(self, net, **kwargs):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
            self.best_state_ = None


# ------------------------------------------------------------------ estimator
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
    freezing). ``n_seeds`` nets are trained and their probabilities averaged.

    Training runs on skorch's ``NeuralNet``: skorch callbacks do the
    freezing schedule (``Freezer`` / ``Unfreezer``), the OneCycle schedule
    (``LRScheduler``), the history and the log; an in-memory callback keeps
    the best epoch. See the Notes for the fast path.

    Parameters
    ----------
    hidden_sizes : sequence of int, default=(1500, 1250, 1000, 750)
        Width of each hidden layer (one body block per entry).
    dropouts : 'auto', float or sequence of float, default='auto'
        Dropout on the output of each hidden layer (one per hidden layer, or
        one float for all). ``'auto'``: the public net's (0.5, 0.35, 0.3,
        0.25) for four hidden layers (the default ``hidden_sizes``),
        stretched over any other number of layers by linear interpolation
        from 0.5 (first) to 0.25 (last): 0.5 for one layer, (0.5, 0.25) for
        two, (0.5, 0.325, 0.25) for three.
    activation : {"leaky_relu", "relu", "elu", "selu", "gelu", "silu", "tanh"}, \
            default="leaky_relu"
    batch_norm : bool, default=True
        Batch normalisation at the input of each block and of the head.
    weight_norm : {"head", "all", "none"}, default="head"
        Which linear layers are weight-normalised (the public net: the head).
    pretrain : bool, default=True
        Run step 1 (on ``y`` and ``y_aux``, or on ``y`` alone without
        ``y_aux``). If False, only step 2 runs, on a fresh net, unfrozen.
    epochs_pretrain : int, default=24
        Epochs of step 1.
    epochs_finetune : int, default=24
        Epochs of step 2.
    unfreeze_every : int or None, default=4
        In step 2 the body starts frozen (only the new head trains); after
        every ``unfreeze_every`` epochs one more block is unfrozen, from the
        back. None: the body is not frozen in step 2.
    batch_size : int, default=128
        Rows per training batch.
    max_lr_pretrain, max_lr_finetune : float, default=1e-2, 3e-3
        Peak learning rate of the OneCycle schedule of each step.
    weight_decay_pretrain, weight_decay_finetune : float, default=1e-5, 3e-6
        Adam's (L2) weight decay in each step.
    div_factor_pretrain, div_factor_finetune : float, default=1e3, 1e2
        OneCycle's ``div_factor`` (start lr = max_lr / div_factor) of each step.
    pct_start : float, default=0.1
        Fraction of each step's schedule spent increasing the learning rate.
    label_smoothing : float, default=0.001
        Training targets become ``y * (1 - s) + 0.5 * s`` (validation targets
        are not smoothed).
    clip : pair of float or None, default=(0.0005, 0.9995)
        Predicted probabilities are clipped to this range (and always kept
        strictly inside (0, 1)).
    n_seeds : int, default=1
        Number of nets, each with its own seed and inner split, averaged.
    validation_fraction : float or None, default=0.1
        Fraction of the training rows held out to pick the best epoch of each
        step; drug-grouped when ``groups`` is passed to ``fit``. None or 0:
        no inner validation, the last epoch is kept.
    precision : {"auto", "fp32", "bf16"}, default="auto"
        "bf16" trains under bf16 autocast (weights, optimiser and loss stay
        fp32; an error where bf16 is not native); "auto" uses bf16 where the
        hardware supports it natively (CPUs with AVX512-BF16 or AMX, GPUs
        from Ampere on), else fp32; "fp32" never autocasts. Prediction is
        always fp32. In drug-grouped CV on a make_moa world, bf16 training
        was within 0.9% of fp32's log loss (slightly better, in fact). The
        environment variable ``MOA_SKLEARN_NO_BF16=1`` makes every device
        count as lacking native bf16 (as on an AVX2-only CPU).
    device : {"auto", "cpu", "cuda"} or str, default="auto"
        "auto" uses CUDA when available. A model trained on GPU loads on a
        CPU-only machine.
    n_threads : int or None, default=None
        CPU threads of PyTorch during ``fit`` and ``predict_proba``
        (``torch.set_num_threads``, restored afterwards; the setting is
        process-wide, so do not fit nets in parallel threads with different
        values). None keeps PyTorch's setting. Use 1 when several fits run
        in parallel processes (``n_jobs`` of a search) or for tiny nets.
    random_state : int, RandomState instance or None, default=None
        Seeds the nets' initialisation, dropout, batch order and inner split.
        The same int gives the same predictions on the same machine.
    verbose : int, default=0
        0 is silent; 1 shows a progress bar of the epochs (seeds and steps,
        elapsed time, time left, latest losses) on standard error when it is
        a terminal; 2 also prints the steps and skorch's epoch log.

    Attributes
    ----------
    classes_ : ndarray
        For a 2-D ``y``, the label indices ``0 .. n_labels - 1``; for a 1-D
        ``y``, the class labels.
    n_labels_ : int
        Number of outputs of the net (labels; 1 for binary; n_classes).
    target_names_ : ndarray of str
        The columns of ``y`` when it was a DataFrame.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Defined when ``X`` has string column names.
    n_aux_ : int
        Number of auxiliary targets used in step 1 (0 without ``y_aux``).
    models_ : list of torch.nn.Module
        The fitted net of each seed (in eval mode).
    seeds_ : ndarray of int
        The seed of each net.
    history_ : list of dict
        One record per seed, step and epoch: ``seed``, ``step`` ("pretrain"
        or "finetune"), ``epoch``, ``n_outputs`` (targets of the step's
        head), ``train_loss``, ``valid_loss`` (at the training precision;
        None without validation), ``lr`` (at the end of the epoch),
        ``frozen_blocks``, ``best`` (the epoch whose weights were kept),
        ``dur`` (seconds). ``pandas.DataFrame(history_)`` gives learning
        curves.
    device_ : str
        The device used for training.

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
    ...                            epochs_pretrain=2, epochs_finetune=3,
    ...                            unfreeze_every=1, batch_size=16,
    ...                            device="cpu", random_state=0)
    >>> drugs = np.repeat(np.arange(10), 6)  # the drug id of each row
    >>> net.fit(X, Y, y_aux=Y_aux, groups=drugs).predict_proba(X).shape
    (60, 3)
    >>> net.predict(X[:2]).shape
    (2, 3)
    """

    def __init__(
        self,
        hidden_sizes=(1500, 1250, 1000, 750),
        dropouts="auto",
        activation="leaky_relu",
        batch_norm=True,
        weight_norm="head",
        pretrain=True,
        epochs_pretrain=24,
        epochs_finetune=24,
        unfreeze_every=4,
        batch_size=128,
        max_lr_pretrain=1e-2,
        max_lr_finetune=3e-3,
        weight_decay_pretrain=1e-5,
        weight_decay_finetune=3e-6,
        div_factor_pretrain=1e3,
        div_factor_finetune=1e2,
        pct_start=0.1,
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
        self.epochs_pretrain = epochs_pretrain
        self.epochs_finetune = epochs_finetune
        self.unfreeze_every = unfreeze_every
        self.batch_size = batch_size
        self.max_lr_pretrain = max_lr_pretrain
        self.max_lr_finetune = max_lr_finetune
        self.weight_decay_pretrain = weight_decay_pretrain
        self.weight_decay_finetune = weight_decay_finetune
        self.div_factor_pretrain = div_factor_pretrain
        self.div_factor_finetune = div_factor_finetune
        self.pct_start = pct_start
        self.label_smoothing = label_smoothing
        self.clip = clip
        self.n_seeds = n_seeds
        self.validation_fraction = validation_fraction
        self.precision = precision
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        super()._check_params()
        hs = _check_hidden_sizes(self.hidden_sizes)
        self._dropouts = _per_layer_dropouts(
            self.dropouts, len(hs), f"hidden layer ({len(hs)})", _DROPOUT_PROFILE
        )
        if self.activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got "
                f"{self.activation!r}."
            )
        if self.weight_norm not in _WEIGHT_NORM:
            raise ValueError(
                f"weight_norm must be one of {_WEIGHT_NORM}, got {self.weight_norm!r}."
            )
        for name in ("batch_norm", "pretrain"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}.")
        for name in ("epochs_pretrain", "epochs_finetune", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        ue = self.unfreeze_every
        if ue is not None and (not _is_int(ue) or ue < 1):
            raise ValueError(
                f"unfreeze_every must be None or a positive int, got {ue!r}."
            )
        for name in (
            "max_lr_pretrain",
            "max_lr_finetune",
            "div_factor_pretrain",
            "div_factor_finetune",
        ):
            value = getattr(self, name)
            if not _is_real(value) or not value > 0:
                raise ValueError(f"{name} must be a positive float, got {value!r}.")
        for name in ("weight_decay_pretrain", "weight_decay_finetune"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(f"{name} must be a float >= 0, got {value!r}.")
        if not _is_real(self.pct_start) or not 0 < self.pct_start < 1:
            raise ValueError(
                f"pct_start must be a float in (0, 1), got {self.pct_start!r}."
            )
        nt = self.n_threads
        if nt is not None and (not _is_int(nt) or nt < 1):
            raise ValueError(f"n_threads must be None or a positive int, got {nt!r}.")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(
                f'precision must be "fp32", "bf16" or "auto", got {self.precision!r}.'
            )

    # ---------------------------------------------------------------- engine
    def _new_module(self, n_features, targets):
        """A fresh net whose head starts at the targets' prevalence.

        The bias of the output layer is set to the logit of each target's mean
        in the training rows, so that an untrained head predicts the prior
        (not 0.5): rare labels then cost little from the first batch on.
        """
        module = _TwoStepModule(
            n_features,
            targets.shape[1],
            hidden_sizes=[int(h) for h in self.hidden_sizes],
            dropouts=self._dropouts,
            activation=self.activation,
            batch_norm=bool(self.batch_norm),
            weight_norm=self.weight_norm,
        )
        prior = np.clip(targets.mean(axis=0), 1e-4, 1 - 1e-4)
        with torch.no_grad():
            module.head[-1].bias.copy_(torch.from_numpy(np.log(prior / (1 - prior))))
        return module

    def _make_net(
        self,
        module,
        n_train,
        valid_ds,
        *,
        epochs,
        max_lr,
        weight_decay,
        div_factor,
        freeze,
        generator,
        device,
        autocast_dtype,
        step,
    ):
        """One skorch NeuralNet for one step of training."""
        steps = _n_train_batches(n_train, self.batch_size)
        total_steps = epochs * steps
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
                    max_lr=max_lr,
                    total_steps=total_steps,
                    pct_start=pct_start,
                    div_factor=div_factor,
                ),
            ),
            ("keep_best", _KeepBestEpoch()),
            ("progress", _EpochHook(self._epoch_done, step)),
        ]
        if freeze:
            n_blocks = len(module.body)
            callbacks.append(("freeze_body", Freezer("body.*", at=1)))
            for m in range(1, n_blocks + 1):
                at = 1 + m * self.unfreeze_every
                if at <= epochs:
                    callbacks.append(
                        (f"unfreeze_{m}", Unfreezer(f"body.{n_blocks - m}.*", at=at))
                    )
        return _FastNeuralNet(
            module=module,
            criterion=nn.BCEWithLogitsLoss,
            optimizer=torch.optim.Adam,
            lr=max_lr / div_factor,
            optimizer__weight_decay=weight_decay,
            optimizer__fused=True,
            max_epochs=epochs,
            batch_size=self.batch_size,
            iterator_train=_TensorBatches,
            iterator_train__shuffle=True,
            iterator_train__generator=generator,
            iterator_valid=_TensorBatches,
            iterator_valid__batch_size=_EVAL_BATCH,
            dataset=_TensorDataset,
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            callbacks=callbacks,
            predict_nonlinearity=None,
            verbose=int(self.verbose >= 2),
            device=device,
            autocast_dtype=autocast_dtype,
        )

    def _records(self, net, step, freeze):
        best = net.callbacks_[[n for n, _ in net.callbacks_].index("keep_best")][1]
        best_epoch = best.best_epoch_ or len(net.history)
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
        return (self.epochs_pretrain if self.pretrain else 0) + self.epochs_finetune

    def _fit_one(self, X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device):
        autocast_dtype = resolve_precision(self.precision, device)
        n_features, n_labels = X.shape[1], Y.shape[1]
        records = []
        with num_threads(self.n_threads), seeded(seed, device):
            generator = torch.Generator().manual_seed(seed)
            Xt = torch.tensor(X, device=device)
            Xv = None if X_valid is None else torch.tensor(X_valid, device=device)

            def dataset(Xa, Ya):
                return _TensorDataset(Xa, torch.tensor(Ya, device=device))

            body_state = None
            if self.pretrain:
                Y1, Y1v = Y, Y_valid
                if Y_aux is not None:
                    Y1 = np.hstack([Y, Y_aux])
                    if Y_valid is not None:
                        Y1v = np.hstack([Y_valid, Y_aux_valid])
                module = self._new_module(n_features, Y1)
                if self.verbose >= 2:
                    print(f"step 1, pretrain on {Y1.shape[1]} targets:")
                net = self._make_net(
                    module,
                    len(X),
                    None if Xv is None else dataset(Xv, Y1v),
                    epochs=self.epochs_pretrain,
                    max_lr=self.max_lr_pretrain,
                    weight_decay=self.weight_decay_pretrain,
                    div_factor=self.div_factor_pretrain,
                    freeze=False,
                    generator=generator,
                    device=device,
                    autocast_dtype=autocast_dtype,
                    step="pretrain",
                )
                net.fit(dataset(Xt, Y1))
                records += self._records(net, "pretrain", False)
                body_state = net.module_.body.state_dict()
                del net

            module = self._new_module(n_features, Y)
            freeze = body_state is not None and self.unfreeze_every is not None
            if body_state is not None:
                module.body.load_state_dict(body_state)
            if self.verbose >= 2:
                print(
                    f"step 2, {'fine-tune' if freeze else 'train'} on {n_labels} "
                    f"targets{', body frozen then unfrozen' if freeze else ''}:"
                )
            net = self._make_net(
                module,
                len(X),
                None if Xv is None else dataset(Xv, Y_valid),
                epochs=self.epochs_finetune,
                max_lr=self.max_lr_finetune,
                weight_decay=self.weight_decay_finetune,
                div_factor=self.div_factor_finetune,
                freeze=freeze,
                generator=generator,
                device=device,
                autocast_dtype=autocast_dtype,
                step="finetune",
            )
            net.fit(dataset(Xt, Y))
            records += self._records(net, "finetune", freeze)
            module = net.module_
        for p in module.parameters():
            p.requires_grad_(True)
        module.eval()
        return module, records

    def _predict_proba_one(self, model, X):
        device = next(model.parameters()).device
        out = np.empty((X.shape[0], model.config["n_outputs"]), dtype=np.float64)
        model.eval()
        with num_threads(self.n_threads), torch.inference_mode():
            for start in range(0, X.shape[0], _EVAL_BATCH):
                xb = torch.tensor(X[start : start + _EVAL_BATCH], device=device)
                logits = model(xb).double()
                out[start : start + _EVAL_BATCH] = torch.sigmoid(logits).cpu().numpy()
        return out

    # ----------------------------------------------------------- persistence
    def _serialize_model(self, model):
        return {"config": dict(model.config), "state": state_dict_to_bytes(model)}

    def _deserialize_model(self, payload):
        config = payload["config"]
        module = _TwoStepModule(**config)
        module.load_state_dict(state_dict_from_bytes(payload["state"]))
        module.to(device_for_loading(getattr(self, "device_", "cpu")))
        module.eval()
        return module
