"""TabNet (pytorch-tabnet) as a multilabel scikit-learn classifier.

Imported on first access to ``moa_sklearn.neural.TabNetMultilabelClassifier``:
this module imports torch and pytorch-tabnet.
"""

import contextlib
import contextvars
import copy
import io
import math
import sys
import time
import warnings
from numbers import Real

import numpy as np
from scipy.special import expit
from sklearn.utils._param_validation import Interval, StrOptions

from ..metrics import columnwise_log_loss
from ._base import (
    _EVAL_BATCH,
    _NON_NEGATIVE_REAL,
    _OPEN_FRACTION,
    _PLATEAU_CONSTRAINTS,
    _POSITIVE_INT,
    _POSITIVE_REAL,
    _TORCH_EXTRA,
    BaseMultilabelNet,
    _prior_logits,
)
from ._docs import TORCH_THREADS, shared_docs
from ._torch_utils import (
    device_for_loading,
    num_threads,
    seeded,
    state_dict_from_bytes,
    state_dict_to_bytes,
)

try:
    import torch

    with warnings.catch_warnings():
        # pytorch-tabnet 4.1 imports scipy.sparse.base (deprecated by SciPy)
        warnings.filterwarnings(
            "ignore", message=".*scipy.sparse.base.*", category=DeprecationWarning
        )
        from pytorch_tabnet.callbacks import Callback as _TabNetCallback
        from pytorch_tabnet.metrics import Metric as _TabNetMetric
        from pytorch_tabnet.sparsemax import (
            Entmax15,
            Entmax15Function,
            Sparsemax,
            SparsemaxFunction,
        )
        from pytorch_tabnet.tab_model import TabNetRegressor
        from pytorch_tabnet.tab_network import GBN, TabNetEncoder
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the env
    raise ImportError(
        f"TabNetMultilabelClassifier needs PyTorch and pytorch-tabnet: {_TORCH_EXTRA}"
    ) from exc

__all__ = ["TabNetMultilabelClassifier"]

# The TabNetRegressor constructor arguments that define the network (enough to
# rebuild it from a state dict).
_NETWORK_PARAMS = (
    "n_d",
    "n_a",
    "n_steps",
    "gamma",
    "cat_idxs",
    "cat_dims",
    "cat_emb_dim",
    "n_independent",
    "n_shared",
    "epsilon",
    "momentum",
    "lambda_sparse",
    "seed",
    "mask_type",
    "input_dim",
    "output_dim",
    "grouped_features",
)

# Warnings that pytorch-tabnet emits on every fit (the device one when verbose).
_TABNET_CHATTER = (
    "Device used : ",
    "Best weights from best epoch are automatically used!",
    "No early stopping will be performed, last training weights will be used.",
)


class _LogitsLogLoss(_TabNetMetric):
    """Mean binary cross-entropy of ``sigmoid(logits)``: the validation loss.

    A custom pytorch-tabnet metric (subclasses are found by their ``_name``),
    computed stably in float64 as ``log(1 + exp(z)) - y * z``.
    """

    def __init__(self):
        self._name = "logits_logloss"
        self._maximize = False

    def __call__(self, y_true, y_score):
        # with auxiliary targets trained alongside, only y's columns count
        n = _N_SCORED.get()
        z = np.asarray(y_score, dtype=np.float64)[:, :n]
        y = np.asarray(y_true, dtype=np.float64)[:, :n]
        return float(np.mean(np.logaddexp(0.0, z) - y * z))


# the number of y's columns (the rest: auxiliary targets) in the fit under way;
# pytorch-tabnet instantiates its metrics itself, so they read it from here
_N_SCORED = contextvars.ContextVar("moa_sklearn_tabnet_n_scored", default=None)


@contextlib.contextmanager
def _scoring(n_scored):
    """The validation metric scores the first ``n_scored`` outputs."""
    token = _N_SCORED.set(n_scored)
    try:
        yield
    finally:
        _N_SCORED.reset(token)


class _ReduceLROnPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """``ReduceLROnPlateau`` that pytorch-tabnet steps with the validation loss.

    pytorch-tabnet 4.1 passes the loss to ``step`` only when the scheduler
    class has an ``is_better`` attribute, which recent torch releases no
    longer define (dreamquark-ai/tabnet#586): without this marker, fitting
    fails with "step() missing 1 required positional argument: 'metrics'".
    """

    if not hasattr(torch.optim.lr_scheduler.ReduceLROnPlateau, "is_better"):
        is_better = None


class _EpochTimer(_TabNetCallback):
    """Record the seconds of each epoch (training + validation); report the
    epoch to ``on_epoch`` (the base's progress hook)."""

    def __init__(self, on_epoch=None):
        super().__init__()
        self.on_epoch = on_epoch

    def on_train_begin(self, logs=None):
        self.durations = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.durations.append(time.perf_counter() - self._start)
        if self.on_epoch is not None:
            logs = logs or {}
            self.on_epoch(
                {
                    "epoch": epoch + 1,
                    "train_loss": logs.get("loss"),
                    "valid_loss": logs.get("valid_logits_logloss"),
                }
            )


class _BestEpochs(_TabNetCallback):
    """Keep the weights of the ``n`` epochs of lowest validation loss.

    Without validation, the last ``n`` epochs'. ``states`` (after the fit):
    their state dicts (on the CPU), lowest loss first.
    """

    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_train_begin(self, logs=None):
        self._kept = []  # (loss or -epoch, epoch, state)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("valid_logits_logloss")
        key = -epoch if loss is None else float(loss)
        if len(self._kept) == self.n and key >= self._kept[-1][0]:
            return
        state = {
            k: v.detach().to("cpu", copy=True)
            for k, v in self.trainer.network.state_dict().items()
        }
        self._kept = sorted([*self._kept, (key, epoch, state)], key=lambda t: t[:2])
        del self._kept[self.n :]

    @property
    def states(self):
        return [state for _, _, state in self._kept]

    @property
    def epochs(self):
        return {epoch for _, epoch, _ in self._kept}


def _mean_state(states):
    """The mean of state dicts (integer entries, e.g. batch counts: the first's)."""
    return {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


class _Mixup:
    """Mix a share of each training batch's rows with other rows of the batch.

    A pytorch-tabnet ``augmentations`` callable, as its ``RegressionSMOTE``
    (mixup): each row is chosen with probability ``p`` and replaced by
    ``b * row + (1 - b) * other`` for another row of the batch, features and
    targets alike, with ``b`` drawn from Beta(``alpha``, ``alpha``) and folded
    into [0.5, 1] (the chosen row stays the larger part). Unlike
    ``RegressionSMOTE`` it draws from its own generator: pytorch-tabnet calls
    ``_set_seed`` at the start of ``fit``, which here reseeds that generator
    rather than NumPy's and torch's global ones.
    """

    def __init__(self, p, alpha, seed):
        self.p = p
        self.alpha = alpha
        self.seed = seed

    def _set_seed(self):
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, X, y):
        n = X.shape[0]
        chosen = self._rng.random(n) < self.p
        b = self._rng.beta(self.alpha, self.alpha, n) / 2 + 0.5
        b = np.where(chosen, b, 1.0)
        other = self._rng.permutation(n)
        b = torch.as_tensor(b, dtype=X.dtype, device=X.device)[:, None]
        other = torch.as_tensor(other, device=X.device)
        return b * X + (1 - b) * X[other], b * y + (1 - b) * y[other]


def _add_output_bias(network, bias):
    """Give the final mapping of a TabNet network a bias, starting at ``bias``.

    pytorch-tabnet's final mapping is a linear layer without bias: its
    output starts near 0 (a probability of 0.5) for every label.
    """
    mapping = network.tabnet.final_mapping
    mapping.bias = torch.nn.Parameter(
        torch.as_tensor(
            bias, dtype=mapping.weight.dtype, device=mapping.weight.device
        ).clone()
    )


# The selectors' first guess of the support size (see _top_k_threshold).
_TOP_K = 64


def _top_k_threshold(threshold_and_support, X, k=None):
    """The threshold and support size of sparsemax or entmax over X's last axis,
    from X's ``k`` largest values.

    ``threshold_and_support`` is pytorch-tabnet's own (it sorts the whole
    row). The threshold depends only on the values of the support, the
    largest ones, so it is computed on the ``k`` largest values, found
    without a full sort; rows whose support fills all ``k`` are computed
    again with ``2 * k``, and with the whole row once ``k`` reaches it. The
    same function runs on the same leading values in the same order, so the
    result is that of the full sort, bit for bit, but where pytorch-tabnet's
    count of the support (``tau <= x`` over the whole sorted row; its source
    notes that the count is not proven) takes in, by round-off, a value
    beyond the support's end and past the ``k`` looked at: one row in about
    470,000 in a 20-epoch fit at lish-moa's size. The count here stops at
    the ``k`` values, as deep-spin's entmax does with its ``k``.
    """
    k = _TOP_K if k is None else k
    if k >= X.shape[-1]:
        return threshold_and_support(X, -1)
    tau, support = threshold_and_support(torch.topk(X, k, dim=-1).values, -1)
    full = support.squeeze(-1) == k
    if full.any():
        tau[full], support[full] = _top_k_threshold(
            threshold_and_support, X[full], 2 * k
        )
    return tau, support


class _TopKEntmax15Function(Entmax15Function):
    """pytorch-tabnet's entmax 1.5 with its threshold from ``torch.topk``.

    Its backward pass is pytorch-tabnet's. TabNet's attention masks are
    sparse (a few dozen of ~1,000 features), so a full sort of each row was
    a third of a training epoch.
    """

    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = (input - max_val) / 2
        tau_star, _ = _top_k_threshold(Entmax15Function._threshold_and_support, input)
        output = torch.clamp(input - tau_star, min=0) ** 2
        ctx.save_for_backward(output)
        return output


class _TopKSparsemaxFunction(SparsemaxFunction):
    """pytorch-tabnet's sparsemax with its threshold from ``torch.topk``."""

    @staticmethod
    def forward(ctx, input, dim=-1):
        ctx.dim = dim
        max_val, _ = input.max(dim=dim, keepdim=True)
        input = input - max_val
        tau, supp_size = _top_k_threshold(
            SparsemaxFunction._threshold_and_support, input
        )
        output = torch.clamp(input - tau, min=0)
        ctx.save_for_backward(supp_size, output)
        return output


class _TopKSelector(torch.nn.Module):
    """An attentive transformer's mask function (entmax or sparsemax over the
    last axis), computed as pytorch-tabnet's ``Entmax15`` / ``Sparsemax``
    with a partial sort."""

    def __init__(self, function):
        super().__init__()
        self.function = function

    def forward(self, input):
        return self.function.apply(input, -1)


class _IdentityGroupsEncoder(TabNetEncoder):
    """pytorch-tabnet's encoder, less its product by the identity matrix.

    Without grouped features, pytorch-tabnet's group attention matrix is the
    identity, and each step multiplies its mask by it: a (rows, features) by
    (features, features) matrix product, and another in the backward pass,
    that leave every value as it is (x * 1 plus zeros). With lish-moa's
    ~1,000 features that was the largest matrix product of a TabNet pass.
    The forward pass is pytorch-tabnet's (4.1) but for that product.
    """

    def forward(self, x, prior=None):
        x = self.initial_bn(x)
        if prior is None:
            prior = torch.ones(
                (x.shape[0], self.attention_dim), dtype=x.dtype, device=x.device
            )
        M_loss = 0
        att = self.initial_splitter(x)[:, self.n_d :]
        steps_output = []
        for step in range(self.n_steps):
            M = self.att_transformers[step](prior, att)
            M_loss += torch.mean(
                torch.sum(torch.mul(M, torch.log(M + self.epsilon)), dim=1)
            )
            prior = torch.mul(self.gamma - M, prior)
            out = self.feat_transformers[step](torch.mul(M, x))
            steps_output.append(torch.nn.functional.relu(out[:, : self.n_d]))
            att = out[:, self.n_d :]
        M_loss /= self.n_steps
        return steps_output, M_loss


def _skip_identity_groups(network):
    """Make ``network``'s encoder an ``_IdentityGroupsEncoder`` where its group
    attention matrix is the identity (no grouped features).

    The class of the instance changes, nothing else: state dicts, masks and
    explanations (``forward_masks``) are pytorch-tabnet's.
    """
    encoder = network.tabnet.encoder
    matrix = encoder.group_attention_matrix
    if (
        type(encoder) is TabNetEncoder
        and matrix.shape[0] == matrix.shape[1]
        and torch.equal(
            matrix, torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
        )
    ):
        encoder.__class__ = _IdentityGroupsEncoder


def _use_top_k_selectors(network):
    """Give each attentive transformer of ``network`` a ``_TopKSelector``.

    The selectors have no parameters: state dicts are unchanged.
    """
    functions = {Entmax15: _TopKEntmax15Function, Sparsemax: _TopKSparsemaxFunction}
    for module in network.modules():
        selector = getattr(module, "selector", None)
        if type(selector) in functions and getattr(selector, "dim", -1) in (-1, 1):
            module.selector = _TopKSelector(functions[type(selector)])


def _float64_network(network):
    """A float64 copy of a fitted TabNet network, in eval mode.

    The copy's parameters, buffers and plain tensor attributes (the group
    attention matrices of pytorch-tabnet) are converted; its ghost batch
    norms normalise a batch in one chunk (the same in eval mode).
    """
    network = copy.deepcopy(network).double().eval()
    for module in network.modules():
        for name, value in list(vars(module).items()):
            if isinstance(value, torch.Tensor) and value.is_floating_point():
                setattr(module, name, value.double())
        if isinstance(module, GBN):
            # in eval mode a ghost batch norm applies its batch norm chunk by
            # chunk (of virtual_batch_size rows): one chunk does the same
            module.virtual_batch_size = sys.maxsize
    return network


def _chunk_sizes(n_rows, virtual_batch_size):
    """Sizes of the ghost batches of a batch (as pytorch-tabnet's ``GBN``)."""
    n_chunks = math.ceil(n_rows / virtual_batch_size)
    size = math.ceil(n_rows / n_chunks)
    n_full = math.ceil(n_rows / size) - 1
    return [size] * n_full + [n_rows - size * n_full]


def _plan_batches(n_rows, batch_size, virtual_batch_size):
    """``(batch_size, virtual_batch_size, drop_last)`` for ``n_rows`` rows.

    Batch normalisation cannot train on one row: pytorch-tabnet normalises
    each batch as a whole (the input batch norm) and in ghost batches of
    about ``virtual_batch_size`` rows. A last batch of one row is dropped,
    and the virtual batch size is raised, where needed, until no ghost batch
    of the batches that occur has a single row.
    """
    batch_size = min(batch_size, n_rows)
    rest = n_rows % batch_size
    drop_last = rest == 1
    sizes = [batch_size] if (rest == 0 or drop_last) else [batch_size, rest]
    vbs = min(virtual_batch_size, batch_size)
    while any(1 in _chunk_sizes(b, vbs) for b in sizes):
        vbs += 1
    return batch_size, vbs, drop_last


def _records(model, timer, validation, kept=None):
    """The history records of one pytorch-tabnet fit (``kept``: the epochs
    whose weights are averaged, if several)."""
    logs = model.history.history
    n_epochs = len(logs["loss"])
    valid = logs.get("valid_logits_logloss")
    best = model.best_epoch if validation else n_epochs - 1
    kept = {best} if kept is None else kept
    return [
        {
            "epoch": i + 1,
            "train_loss": float(logs["loss"][i]),
            "valid_loss": None if valid is None else float(valid[i]),
            "lr": float(logs["lr"][i]),
            "best": i == best,
            "kept": i in kept,
            "dur": timer.durations[i],
        }
        for i in range(n_epochs)
    ]


@shared_docs(
    weight_decay="As an L2 penalty (torch's ``Adam``).",
    lr_factor="The monitored loss is the validation loss; without inner "
    "validation the learning rate stays constant.",
    n_threads=TORCH_THREADS,
    random_state="pytorch-tabnet's ``seed`` is drawn from it; torch's global "
    "random state is restored after ``fit``.",
    verbose="Here: pytorch-tabnet's line per epoch.",
    n_seeds="Here 3: a single TabNet's loss on new compounds varies with "
    "its seed (with averaged weights, 3 seeds scored 0.01754 against 0.01780 "
    "for one, at 2.8 times the time; docs/benchmarks.md). Inside "
    "``make_moa_pipeline(profile='full')`` the blend does that averaging "
    "across nets and TabNet gets 1.",
    n_aux_="Trained alongside ``y`` with ``aux_targets=True`` (0 without ``y_aux``).",
)
class TabNetMultilabelClassifier(BaseMultilabelNet):
    """TabNet for multilabel targets, as the lish-moa solutions trained it.

    A pytorch-tabnet ``TabNetRegressor`` on the logits of the labels, trained
    with binary cross-entropy on the logits (``y`` label-smoothed), Adam,
    ``ReduceLROnPlateau`` and early stopping on the inner validation split.
    The defaults are the public MoA TabNet notebook's: ``n_d = n_a = 32``,
    one step, ``gamma`` 1.3, entmax masks, no sparsity loss, batches of 1024
    rows with ghost batches of 32, Adam with learning rate 2e-2 and weight
    decay 1e-5; and two additions that the benchmarks on unseen drugs
    support (docs/benchmarks.md): mixup of half of each batch's rows, and the
    mean of the probabilities of the 10 epochs of lowest validation loss
    instead of the best epoch's alone (0.01717 against 0.01795 before them,
    3 seeds, on unseen drugs). A bias is added to TabNet's
    final mapping (which has none), starting at the logit of each label's
    prevalence in the training rows, so that the untrained net predicts the
    prior rather than 0.5 for every label. ``n_seeds`` nets (3 by default)
    are trained and their probabilities averaged.

    Unlike pytorch-tabnet's own estimators, every training setting is an
    ``__init__`` parameter and the pytorch-tabnet model is built in ``fit``,
    so that the estimator clones, pickles and runs in ``GridSearchCV`` and
    ``cross_val_score``. Needs ``pip install "moa-sklearn[torch]"``.

    Parameters
    ----------
    n_d, n_a : int, default=32
        Widths of the decision and attention layers.
    n_steps : int, default=1
        Number of decision steps.
    gamma : float, default=1.3
        Relaxation of the reuse of a feature across steps (>= 1).
    n_independent, n_shared : int, default=2
        Numbers of step-specific and shared GLU layers of each step.
    momentum : float, default=0.02
        Momentum of the (ghost) batch normalisation.
    mask_type : {"entmax", "sparsemax"}, default="entmax"
        Attention masks.
    lambda_sparse : float, default=0.0
        Weight of the sparsity loss of the masks.
    aux_targets : bool, default=False
        Train on ``y`` and ``y_aux`` side by side (one output per target of
        either, as a multi-task net; lish-moa's 206 scored and 402 nonscored
        targets), each auxiliary output's bias also at its prevalence. Early
        stopping and the best epoch follow the validation loss of ``y``'s
        outputs only, and only they are predicted. Without ``y_aux`` in
        ``fit`` it has no effect.
    %(max_epochs, patience, batch_size)s
    virtual_batch_size : int, default=32
        Rows per ghost batch of the batch normalisation (raised where a
        ghost batch would have a single row).
    %(learning_rate, weight_decay, lr_factor, lr_patience, min_lr)s
    max_grad_norm : float or None, default=1.0
        Gradients are clipped to this norm (pytorch-tabnet's ``clip_value``);
        None for no clipping.
    mixup : float, default=0.5
        Share of each training batch's rows mixed with another row of the
        batch, features and targets alike (mixup, as pytorch-tabnet's
        ``RegressionSMOTE``); 0 for none. On unseen drugs (one seed, the
        public recipe's features, 3 folds; docs/benchmarks.md) 0.5 scored
        0.01885 against 0.01908 without, better in each fold; with
        ``n_best_epochs=10`` 0.01743 against 0.01774 without.
    mixup_alpha : float, default=0.5
        The mixing weight of a mixed row is drawn from
        Beta(``mixup_alpha``, ``mixup_alpha``), folded into [0.5, 1].
    n_best_epochs : int, default=10
        The weights of this many epochs are kept, those of the lowest
        validation loss (the last epochs' without validation), and averaged
        as ``average_epochs`` says (a checkpoint ensemble of each seed, at
        no extra training); 1: the best epoch alone. A single TabNet's
        best epoch varies much: without mixup, averaging the probabilities
        of 10 epochs scored 0.01774 against 0.01908 for the best epoch alone
        (one seed, public features, as above).
    average_epochs : {"proba", "weights", "per_target"}, default="proba"
        With ``n_best_epochs`` > 1: average the kept epochs' probabilities
        (one pass of the network per kept epoch at prediction: ``n_seeds``
        x ``n_best_epochs`` passes), or their weights and batch-norm
        statistics (``"weights"``: one network per seed, as stochastic
        weight averaging, predicting as fast as the best epoch alone). With
        mixup, one seed, public features: 0.01743 against 0.01780.
        ``"per_target"``: no average; each target is predicted by the kept
        epoch of its own lowest loss on the validation drugs (a per-target
        best epoch, as the 7th-place lish-moa solution chose; one pass per
        epoch some target chose). Without validation, as ``"proba"``. On
        unseen drugs (one seed, 3 folds) it scored 0.01815 against 0.01758
        for ``"proba"`` on the same training, worse in each fold.
    %(label_smoothing, clip, n_seeds, validation_fraction)s
    %(device, n_threads, random_state, verbose)s

    Attributes
    ----------
    %(classes_, n_labels_, target_names_, n_features_in_, feature_names_in_)s
    %(n_aux_)s
    models_ : list of pytorch_tabnet.tab_model.TabNetRegressor
        The fitted pytorch-tabnet model of each seed.
    %(seeds_)s
    history_ : list of dict
        One record per seed and epoch: ``seed``, ``epoch``, ``train_loss``
        (including the sparsity term), ``valid_loss`` (None without
        validation), ``lr`` (during the epoch), ``best`` (the epoch of lowest
        validation loss; without validation, the last), ``kept`` (the epochs
        whose weights are kept: ``n_best_epochs`` of them), ``dur``
        (seconds).
    %(device_)s
    %(validation_indices_, validation_proba_)s

    Notes
    -----
    ``y_aux`` is accepted by ``fit`` (so that it can be routed to every net
    of a blend) and used only with ``aux_targets=True``. Pickles hold the
    network's weights as bytes (no pytorch-tabnet zip file); loading rebuilds
    the pytorch-tabnet model.

    Examples
    --------
    >>> import numpy as np
    >>> from moa_sklearn.neural import TabNetMultilabelClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 5))
    >>> Y = (X[:, :3] + rng.normal(size=(60, 3)) > 0).astype(int)
    >>> net = TabNetMultilabelClassifier(n_d=8, n_a=8, max_epochs=3,
    ...                                  batch_size=32, virtual_batch_size=16,
    ...                                  device="cpu", random_state=0)
    >>> drugs = np.repeat(np.arange(10), 6)  # the drug id of each row
    >>> net.fit(X, Y, groups=drugs).predict_proba(X).shape
    (60, 3)
    >>> net.predict(X[:2]).shape
    (2, 3)
    """

    _parameter_constraints: dict = {
        **BaseMultilabelNet._parameter_constraints,
        **_PLATEAU_CONSTRAINTS,
        "n_d": [_POSITIVE_INT],
        "n_a": [_POSITIVE_INT],
        "n_steps": [_POSITIVE_INT],
        "gamma": [Interval(Real, 1, None, closed="left")],
        "n_independent": [_POSITIVE_INT],
        "n_shared": [_POSITIVE_INT],
        "momentum": [_OPEN_FRACTION],
        "mask_type": [StrOptions({"entmax", "sparsemax"})],
        "lambda_sparse": [_NON_NEGATIVE_REAL],
        "aux_targets": ["boolean"],
        "virtual_batch_size": [_POSITIVE_INT],
        "max_grad_norm": [_POSITIVE_REAL, None],
        "mixup": [Interval(Real, 0, 1, closed="both")],
        "mixup_alpha": [_POSITIVE_REAL],
        "n_best_epochs": [_POSITIVE_INT],
        "average_epochs": [StrOptions({"proba", "weights", "per_target"})],
    }

    def __init__(
        self,
        n_d=32,
        n_a=32,
        n_steps=1,
        gamma=1.3,
        n_independent=2,
        n_shared=2,
        momentum=0.02,
        mask_type="entmax",
        lambda_sparse=0.0,
        aux_targets=False,
        max_epochs=200,
        patience=20,
        batch_size=1024,
        virtual_batch_size=32,
        learning_rate=2e-2,
        weight_decay=1e-5,
        lr_factor=0.9,
        lr_patience=5,
        min_lr=1e-5,
        max_grad_norm=1.0,
        mixup=0.5,
        mixup_alpha=0.5,
        n_best_epochs=10,
        average_epochs="proba",
        label_smoothing=0.001,
        clip=(0.0005, 0.9995),
        n_seeds=3,
        validation_fraction=0.1,
        device="auto",
        n_threads=None,
        random_state=None,
        verbose=0,
    ):
        self.n_d = n_d
        self.n_a = n_a
        self.n_steps = n_steps
        self.gamma = gamma
        self.n_independent = n_independent
        self.n_shared = n_shared
        self.momentum = momentum
        self.mask_type = mask_type
        self.lambda_sparse = lambda_sparse
        self.aux_targets = aux_targets
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.virtual_batch_size = virtual_batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_lr = min_lr
        self.max_grad_norm = max_grad_norm
        self.mixup = mixup
        self.mixup_alpha = mixup_alpha
        self.n_best_epochs = n_best_epochs
        self.average_epochs = average_epochs
        self.label_smoothing = label_smoothing
        self.clip = clip
        self.n_seeds = n_seeds
        self.validation_fraction = validation_fraction
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------------- engine
    def _new_model(self, seed, device, validation):
        scheduler = {}
        if validation:
            scheduler = dict(
                scheduler_fn=_ReduceLROnPlateau,
                scheduler_params=dict(
                    mode="min",
                    factor=self.lr_factor,
                    patience=self.lr_patience,
                    min_lr=self.min_lr,
                ),
            )
        return TabNetRegressor(
            n_d=self.n_d,
            n_a=self.n_a,
            n_steps=self.n_steps,
            gamma=self.gamma,
            n_independent=self.n_independent,
            n_shared=self.n_shared,
            momentum=self.momentum,
            mask_type=self.mask_type,
            lambda_sparse=self.lambda_sparse,
            clip_value=self.max_grad_norm or 0,
            optimizer_fn=torch.optim.Adam,
            optimizer_params=dict(
                lr=self.learning_rate, weight_decay=self.weight_decay
            ),
            seed=seed,
            verbose=int(self.verbose >= 2),
            device_name=device,
            **scheduler,
        )

    @contextlib.contextmanager
    def _quiet(self):
        """Silence pytorch-tabnet's unconditional prints and warnings."""
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            for message in _TABNET_CHATTER:
                warnings.filterwarnings("ignore", message=message, category=UserWarning)
            if self.verbose < 2:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            yield

    def _n_epochs(self):
        return self.max_epochs

    def _build_network(self, model, X, Y, virtual_batch_size):
        """Build ``model``'s network, its output bias at the label prior.

        pytorch-tabnet builds the network in ``fit`` and its optimiser right
        after it, so the bias that its final mapping lacks is added here,
        before ``fit``, which then keeps this network (``warm_start=True``).
        """
        model.input_dim, model.output_dim = X.shape[1], Y.shape[1]
        model.virtual_batch_size = virtual_batch_size
        model._set_network()
        _add_output_bias(model.network, _prior_logits(Y))
        _use_top_k_selectors(model.network)
        _skip_identity_groups(model.network)

    def _fit_one(self, X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device):
        validation = X_valid is not None
        batch_size, virtual_batch_size, drop_last = _plan_batches(
            len(X), self.batch_size, self.virtual_batch_size
        )
        n_scored = Y.shape[1]
        if self.aux_targets and Y_aux is not None:
            Y = np.hstack([Y, Y_aux])
            if validation:
                Y_valid = np.hstack([Y_valid, Y_aux_valid])
        timer = _EpochTimer(self._epoch_done)
        kept = _BestEpochs(self.n_best_epochs) if self.n_best_epochs > 1 else None
        with (
            num_threads(self.n_threads),
            seeded(seed, device),
            self._quiet(),
            _scoring(n_scored),
        ):
            model = self._new_model(seed, device, validation)
            self._build_network(model, X, Y, virtual_batch_size)
            model.fit(
                X,
                Y,
                eval_set=[(X_valid, Y_valid)] if validation else None,
                eval_name=["valid"] if validation else None,
                eval_metric=[_LogitsLogLoss] if validation else None,
                loss_fn=torch.nn.functional.binary_cross_entropy_with_logits,
                max_epochs=self.max_epochs,
                patience=self.patience or self.max_epochs + 1,
                batch_size=batch_size,
                virtual_batch_size=virtual_batch_size,
                num_workers=0,
                drop_last=drop_last,
                callbacks=[timer] if kept is None else [timer, kept],
                compute_importance=False,
                warm_start=True,
                augmentations=(
                    _Mixup(self.mixup, self.mixup_alpha, seed) if self.mixup else None
                ),
            )
        model.n_scored_ = n_scored
        model.epoch_states_ = None if kept is None else kept.states
        model.epoch_choice_ = None
        if model.epoch_states_ and self.average_epochs == "weights":
            model.network.load_state_dict(_mean_state(model.epoch_states_))
            model.epoch_states_ = None
        elif model.epoch_states_ and self.average_epochs == "per_target" and validation:
            model.epoch_choice_ = self._choose_epochs(model, X_valid, Y_valid)
        return model, _records(
            model, timer, validation, None if kept is None else kept.epochs
        )

    def _choose_epochs(self, model, X_valid, Y_valid):
        """Per scored target, the index of the kept epoch whose
        probabilities have the lowest log loss on the validation rows (ties:
        the epoch of lowest overall loss, the first)."""
        n_scored = model.n_scored_
        Y_valid = np.asarray(Y_valid, dtype=np.float64)[:, :n_scored]
        losses = [
            columnwise_log_loss(Y_valid, proba[:, :n_scored])
            for proba in self._passes(model, X_valid, model.epoch_states_)
        ]
        return np.argmin(np.stack(losses), axis=0)

    def _passes(self, model, X, states):
        """Each state's probabilities of every output, one network pass each
        (None: the network's own weights). The network runs in float64, so
        that a row's prediction does not depend on the other rows of its
        batch (float32 round-off does)."""
        with num_threads(self.n_threads), torch.inference_mode():
            network = _float64_network(model.network)
            for state in states:
                if state is not None:
                    network.load_state_dict(state)
                proba = np.empty((X.shape[0], model.output_dim), dtype=np.float64)
                for start in range(0, X.shape[0], _EVAL_BATCH):
                    batch = torch.tensor(
                        X[start : start + _EVAL_BATCH], dtype=torch.float64
                    ).to(model.device)
                    logits = network(batch)[0].cpu().numpy()
                    proba[start : start + len(batch)] = expit(logits)
                yield proba

    def _predict_proba_one(self, model, X):
        # With several kept epochs (n_best_epochs), the mean of their
        # probabilities, or each target's own epoch (epoch_choice_).
        states = getattr(model, "epoch_states_", None) or [None]
        choice = getattr(model, "epoch_choice_", None)
        # y's outputs (the auxiliary targets' follow them)
        n_scored = getattr(model, "n_scored_", None) or model.output_dim
        if choice is None:
            return sum(p[:, :n_scored] for p in self._passes(model, X, states)) / len(
                states
            )
        proba = np.empty((X.shape[0], n_scored), dtype=np.float64)
        used = np.unique(choice)  # the epochs some target chose: one pass each
        for i, p in zip(used, self._passes(model, X, [states[i] for i in used])):
            proba[:, choice == i] = p[:, :n_scored][:, choice == i]
        return proba

    # ----------------------------------------------------------- persistence
    def _serialize_model(self, model):
        return {
            "params": {name: getattr(model, name) for name in _NETWORK_PARAMS},
            "batch_size": model.batch_size,
            "virtual_batch_size": model.virtual_batch_size,
            "state": state_dict_to_bytes(model.network),
            "n_scored": getattr(model, "n_scored_", None),
            "epoch_states": [
                state_dict_to_bytes(state)
                for state in getattr(model, "epoch_states_", None) or []
            ],
            "epoch_choice": getattr(model, "epoch_choice_", None),
        }

    def _deserialize_model(self, payload):
        device = device_for_loading(getattr(self, "device_", "cpu"))
        # pytorch-tabnet seeds torch's global generator when it builds a
        # network: keep the caller's random stream untouched
        with seeded(0, device):
            model = TabNetRegressor(**payload["params"], verbose=0, device_name=device)
            model.batch_size = payload["batch_size"]
            model.virtual_batch_size = payload["virtual_batch_size"]
            model._set_network()
            _add_output_bias(model.network, torch.zeros(model.output_dim))
            _use_top_k_selectors(model.network)
            _skip_identity_groups(model.network)
        model.network.load_state_dict(
            state_dict_from_bytes(payload["state"], map_location=device)
        )
        model.network.eval()
        model.preds_mapper = None
        model.n_scored_ = payload.get("n_scored")
        model.epoch_states_ = [
            state_dict_from_bytes(blob, map_location=device)
            for blob in payload.get("epoch_states", [])
        ] or None
        model.epoch_choice_ = payload.get("epoch_choice")
        return model
