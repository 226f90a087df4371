"""The shared base of the package's multilabel nets (no engine imported here).

:class:`BaseMultilabelNet` is everything that a multilabel net estimator does
around training: parameter, input and target validation, the inner
validation split (drug-grouped when ``groups`` is given), label smoothing,
seeding and ``n_seeds`` averaging, prediction clipping, device resolution,
device-safe persistence, metadata routing (``fit(X, y, *, y_aux, groups)``)
and the scikit-learn tags. An engine (PyTorch, Keras, TabNet) only says how to
train one model for one seed and how to get probabilities out of it; see the
Notes (extension points) of the class docstring.

This module imports no deep-learning engine, so that ``import
moa_sklearn.neural`` stays light.
"""

from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    MultiOutputMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Hidden, Interval, StrOptions
from sklearn.utils.validation import (
    check_consistent_length,
    check_is_fitted,
    validate_data,
)

from ..exceptions import _warn_without_groups
from ..utils._engines import TORCH_INSTALL
from ..utils._progress import progress_bar
from ..utils._target import TargetReader, _is_binary_matrix
from ..utils._validation import (
    _as_array,
    _non_numeric_array_columns,
    clip_bounds,
    nonfinite_error,
)
from ._docs import shared_docs

__all__ = ["BaseMultilabelNet"]

_TORCH_EXTRA = TORCH_INSTALL  # what the torch nets' import errors say to run

# rows per forward pass at prediction and validation time (every engine)
_EVAL_BATCH = 4096

# the prevalence at which an output bias starts is kept this far from 0 and 1
_PRIOR_EPS = 1e-4

# ------------------------------------------------------- declared parameters
_POSITIVE_INT = Interval(Integral, 1, None, closed="left")
_POSITIVE_REAL = Interval(Real, 0, None, closed="neither")
_NON_NEGATIVE_REAL = Interval(Real, 0, None, closed="left")
_OPEN_FRACTION = Interval(Real, 0, 1, closed="neither")

#: The layers of the MLP nets (PyTorch and Keras).
_MLP_CONSTRAINTS = {
    "hidden_sizes": ["array-like"],
    "dropouts": [
        StrOptions({"auto"}),
        Interval(Real, 0, 1, closed="left"),
        "array-like",
    ],
    "batch_norm": ["boolean"],
    "weight_norm": [StrOptions({"head", "all", "none"})],
}

#: Adam with a plateau schedule and early stopping (Keras and TabNet).
_PLATEAU_CONSTRAINTS = {
    "max_epochs": [_POSITIVE_INT],
    "learning_rate": [_POSITIVE_REAL],
    "weight_decay": [_NON_NEGATIVE_REAL],
    "patience": [_POSITIVE_INT, None],
    "lr_factor": [_OPEN_FRACTION],
    "lr_patience": [_POSITIVE_INT],
    "min_lr": [_NON_NEGATIVE_REAL],
}


def _is_int(value):
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_hidden_sizes(hidden_sizes):
    """``hidden_sizes`` checked to be a non-empty sequence of positive ints."""
    hs = hidden_sizes
    if (
        isinstance(hs, (str, bytes))
        or not hasattr(hs, "__len__")
        or len(hs) < 1
        or not all(_is_int(h) and h >= 1 for h in hs)
    ):
        raise ValueError(
            f"hidden_sizes must be a non-empty sequence of positive ints, got {hs!r}."
        )
    return hs


def _auto_dropouts(profile, n_layers):
    """The recipe's dropout ``profile`` stretched over ``n_layers`` layers.

    Linear interpolation of the profile (first layer to last) at
    ``n_layers`` evenly spaced points: the profile itself when ``n_layers ==
    len(profile)``, its first value for one layer, its first and last values
    for two layers, and so on.
    """
    profile = np.asarray(profile, dtype=np.float64)
    if n_layers == 1:
        return [float(profile[0])]
    at = np.linspace(0.0, 1.0, n_layers)
    grid = np.linspace(0.0, 1.0, profile.size)
    return [round(float(p), 6) for p in np.interp(at, grid, profile)]


def _per_layer_dropouts(dropouts, n_layers, layers, profile=None):
    """``dropouts`` as a list of ``n_layers`` floats in [0, 1).

    One float is used for every layer; a sequence must have one float per
    layer; ``"auto"`` stretches the recipe's ``profile`` over the layers
    (:func:`_auto_dropouts`). ``layers`` describes the layers in the error
    message.
    """
    d = dropouts
    if isinstance(d, str) and d == "auto" and profile is not None:
        return _auto_dropouts(profile, n_layers)
    if _is_real(d):
        d = [float(d)] * n_layers
    elif isinstance(d, (str, bytes)) or not hasattr(d, "__len__"):
        d = None
    else:
        d = list(d)
    if (
        d is None
        or len(d) != n_layers
        or not all(_is_real(p) and 0 <= p < 1 for p in d)
    ):
        raise ValueError(
            f"dropouts must be 'auto', a float in [0, 1) or one such float per "
            f"{layers}, got {dropouts!r}."
        )
    return [float(p) for p in d]


def _prior_logits(Y, eps=_PRIOR_EPS):
    """Logit of the mean of each column of ``Y``: where an output bias starts.

    Every engine starts the bias of its output layer here, so that the
    untrained net predicts each target's prevalence in its training rows
    rather than 0.5: rare labels then cost little from the first batch on.
    The prevalence is kept inside ``[eps, 1 - eps]`` (a label without
    positives starts at the logit of ``eps``).
    """
    prior = np.clip(np.asarray(Y, dtype=np.float64).mean(axis=0), eps, 1 - eps)
    return np.log(prior / (1 - prior))


def _check_numeric_frame(X, estimator_name):
    """Raise a clear error for a DataFrame (or array) with non-numeric columns."""
    if not isinstance(X, pd.DataFrame):
        bad = _non_numeric_array_columns(X)
        if bad:
            raise ValueError(
                f"{estimator_name} needs numeric features, but column(s) "
                f"{bad[:10]} of X hold non-numeric values (e.g. "
                f"{np.asarray(X)[0, bad[0]]!r}). Encode them first, e.g. with "
                "make_moa_features on a DataFrame with lish-moa's column names, "
                "or CategoricalEncoder(columns=<their indices>) on an array."
            )
        return
    bad = [
        col
        for col, dtype in X.dtypes.items()
        if not (
            pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
        )
        or isinstance(dtype, pd.CategoricalDtype)
    ]
    if bad:
        shown = ", ".join(repr(c) for c in bad[:10])
        more = f" and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ValueError(
            f"{estimator_name} needs numeric features, but the columns "
            f"[{shown}]{more} are not numeric. Encode them first, e.g. put a "
            "feature transformer of moa_sklearn.preprocessing (which maps "
            "cp_type / cp_time / cp_dose to numbers) or a OneHotEncoder before "
            "the net in a Pipeline."
        )


def _check_binary_matrix(a, name, n_samples):
    """Validate an auxiliary 0/1 target matrix; return it as float32."""
    a = _as_array(a)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D 0/1 matrix of shape (n_samples, n_targets); "
            f"got shape {a.shape}."
        )
    if a.shape[0] != n_samples:
        raise ValueError(
            f"{name} has {a.shape[0]} rows but X has {n_samples}; they must be "
            "aligned row by row (with metadata routing, request it with "
            "set_fit_request so that it is sliced with X in each fold)."
        )
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric 0/1, got dtype {a.dtype}.")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    if not _is_binary_matrix(a):
        raise ValueError(
            f"{name} must contain only 0 and 1 (a binary indicator matrix)."
        )
    return a.astype(np.float32)


def _inner_validation_split(Y, groups, fraction, seed):
    """Row indices (train, valid) of the inner validation split.

    Without groups: a random split of the rows. With groups: the first fold of
    :class:`~moa_sklearn.model_selection.DrugMultilabelStratifiedKFold` with
    about ``1 / fraction`` folds and ``max_drug_size=None``, so that every
    drug, large ones included, is whole in the inner train part or in the
    validation part, never both: the best epoch is chosen on drugs the net
    did not train on (the new-compound question). When there are too few
    drugs for that, whole drugs are drawn at random instead. Returns
    ``(all rows, None)`` when no split is made.
    """
    n = Y.shape[0]
    if fraction is None or fraction == 0:
        return np.arange(n), None
    rng = np.random.RandomState(seed)
    if groups is None:
        n_valid = int(round(fraction * n))
        if n_valid < 1 or n - n_valid < 2:
            return np.arange(n), None
        perm = rng.permutation(n)
        return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])

    from ..model_selection import DrugMultilabelStratifiedKFold

    n_splits = max(2, int(round(1.0 / fraction)))
    try:
        cv = DrugMultilabelStratifiedKFold(
            n_splits=n_splits, max_drug_size=None, random_state=seed
        )
        train, valid = next(cv.split(np.zeros((n, 1)), Y.astype(np.int8), groups))
    except ValueError:
        train = valid = None
    if valid is None or valid.size == 0 or train.size < 2:
        # too few drugs to stratify: draw whole drugs at random
        uniq, codes = np.unique(groups, return_inverse=True)
        if uniq.size < 2:
            return np.arange(n), None
        order = rng.permutation(uniq.size)
        sizes = np.bincount(codes)[order]
        n_valid_groups = int(np.searchsorted(np.cumsum(sizes), fraction * n) + 1)
        n_valid_groups = min(max(n_valid_groups, 1), uniq.size - 1)
        in_valid = np.isin(codes, order[:n_valid_groups])
        train, valid = np.flatnonzero(~in_valid), np.flatnonzero(in_valid)
        if train.size < 2:
            return np.arange(n), None
    return train, valid


@shared_docs(
    max_epochs="The two-step net trains in two steps and has one per step: "
    "``max_epochs_pretrain`` and ``max_epochs_finetune``.",
    learning_rate="The two-step net has one per step, the peak of its OneCycle "
    "schedule: ``learning_rate_pretrain`` and ``learning_rate_finetune``.",
    weight_decay="The two-step net has one per step: ``weight_decay_pretrain`` "
    "and ``weight_decay_finetune``.",
)
class BaseMultilabelNet(
    ClassifierMixin, MultiOutputMixin, BaseEstimator, metaclass=ABCMeta
):
    """Base class of the multilabel nets (shared by every engine).

    Not an estimator by itself: subclasses (:class:`TwoStepNetClassifier`,
    the Keras and TabNet nets) add the engine. The base implements the
    estimator contract of the package once:

    - ``fit(X, y, *, y_aux=None, groups=None)``: ``y`` is an (n, n_labels) 0/1
      matrix or DataFrame, or a 1-D binary / multiclass target (encoded as an
      indicator matrix, one column for binary, one per class for multiclass).
      ``y_aux`` are auxiliary 0/1 targets (the nonscored targets of lish-moa)
      that an engine may use, e.g. to pretrain; ``groups`` (drug ids) make
      the inner validation split drug-grouped. Both can be routed with
      ``set_fit_request(y_aux=True, groups=True)``.
    - Inner validation: ``validation_fraction`` of the rows that ``fit``
      receives (never the outer CV's test fold), drawn anew for each seed.
    - Label smoothing ``y * (1 - s) + 0.5 * s`` of the training targets (not
      of the validation targets).
    - The output layer's bias starts at the logit of each target's
      prevalence in the training rows, so that the untrained net predicts
      the prior.
    - ``n_seeds`` models, each trained with its own seed drawn from
      ``random_state``; their probabilities are averaged.
    - ``predict_proba``: an (n, n_labels) array of P(label = 1), clipped to
      ``clip`` and always strictly inside (0, 1). For a 1-D ``y`` it is the
      usual (n, n_classes) array whose rows sum to 1.
    - ``predict``: for a 2-D ``y``, ``predict_proba > 0.5`` with ``y``'s
      dtype; for a 1-D ``y``, the class labels.
    - Persistence: fitted models are stored through
      :meth:`_serialize_model` / :meth:`_deserialize_model`, so that pickles
      hold only CPU data and load on a machine without GPU.

    The parameters below are the vocabulary of the nets: an engine that has
    one of these settings names it so (with its own default), and the
    parameters that every engine has (``batch_size``, ``label_smoothing``,
    ``clip``, ``n_seeds``, ``validation_fraction``, ``device``,
    ``n_threads``, ``random_state``, ``verbose``) are checked and read here.

    Parameters
    ----------
    %(hidden_sizes, batch_norm, weight_norm)s
    %(max_epochs, batch_size, learning_rate, weight_decay)s
    %(patience, lr_factor, lr_patience, min_lr)s
    %(label_smoothing, clip, n_seeds, validation_fraction)s
    %(device, n_threads, random_state, verbose)s

    Attributes
    ----------
    %(classes_, n_labels_, target_names_, n_features_in_, feature_names_in_)s
    %(n_aux_, seeds_, device_)s
    %(validation_indices_, validation_proba_)s
    models_ : list
        The fitted model of each seed.
    history_ : list of dict
        One record per seed (and step) and epoch: ``seed``, ``epoch``,
        ``train_loss``, ``valid_loss`` (None without validation), ``best``
        (the epoch whose weights were kept), ...

    Notes
    -----
    Extension points: a subclass defines ``__init__`` with all its
    hyperparameters, in the vocabulary above, and extends
    ``_parameter_constraints`` (``{**BaseMultilabelNet._parameter_constraints,
    ...}``); ``fit`` checks them all. It then implements:

    ``_fit_one(X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device)``
        Build and train one model for one seed; return ``(model, history)``
        where ``history`` is a list of per-epoch dicts (e.g. ``epoch``,
        ``train_loss``, ``valid_loss``). ``X`` is float32, ``Y`` the smoothed
        float32 targets; ``X_valid`` / ``Y_valid`` (unsmoothed) are None when
        there is no inner validation; ``Y_aux`` is None without auxiliary
        targets; ``device`` is the resolved device string. The bias of the
        output layer starts at ``_prior_logits(Y)``.
    ``_predict_proba_one(model, X)``
        Return the (n, n_outputs) probabilities of one model (float32 X).

    For the progress bar, ``_fit_one`` calls ``self._epoch_done(record)`` at
    the end of every epoch and ``_n_epochs()`` returns the most epochs of one
    seed.

    A subclass may override ``_check_param_relations`` (the rules that tie
    parameters together; call ``super()``), ``_serialize_model`` /
    ``_deserialize_model`` (default: the model pickles as is),
    ``_resolve_device`` (default: PyTorch's view of devices) and
    ``_engine_attributes`` (fitted attributes of the engine).

    Examples
    --------
    >>> from moa_sklearn.neural import BaseMultilabelNet
    >>> import inspect
    >>> inspect.isabstract(BaseMultilabelNet)
    True
    """

    _parameter_constraints: dict = {
        "batch_size": [_POSITIVE_INT],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "clip": [None, "array-like"],
        "n_seeds": [_POSITIVE_INT],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "device": [str, Hidden(None)],
        "n_threads": [_POSITIVE_INT, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    @property
    def model_(self):
        """The fitted model of the first seed (``models_[0]``)."""
        check_is_fitted(self, "models_")
        return self.models_[0]

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _fit_one(
        self, X, Y, X_valid, Y_valid, *, Y_aux, Y_aux_valid, seed, device
    ):  # pragma: no cover - abstract
        """Train one model for one seed; return ``(model, history)``."""

    @abstractmethod
    def _predict_proba_one(self, model, X):  # pragma: no cover - abstract
        """Return the (n, n_outputs) probabilities of one fitted model."""

    def _serialize_model(self, model):
        """Return a picklable, device-free form of a fitted model."""
        return model

    def _deserialize_model(self, payload):
        """Inverse of :meth:`_serialize_model`."""
        return payload

    def _resolve_device(self):
        """Resolve ``device`` ("cpu", "cuda", "cuda:N", "auto") for PyTorch."""
        from ._torch_utils import resolve_device

        return resolve_device(self.device)

    def _engine_attributes(self):
        """Fitted attributes of the engine, set at the end of ``fit``."""
        return {}

    # ------------------------------------------------------------- validation
    def _check_param_relations(self):
        """The rules that tie parameters (or their items) together.

        Each parameter alone is checked by ``_parameter_constraints``.
        """
        clip_bounds(self.clip)

    def _check_params(self):
        """Check the parameters as ``fit`` does, without fitting.

        The declared constraints, then the rules between parameters (the
        command line checks the nets of its configuration so).
        """
        self._validate_params()
        self._check_param_relations()

    def _validate_X(self, X, *, reset):
        _check_numeric_frame(X, type(self).__name__)
        try:
            X = validate_data(
                self, X, reset=reset, dtype=[np.float64, np.float32], order="C"
            )
        except ValueError as exc:
            named = nonfinite_error(exc, X, type(self).__name__)
            if named is None:
                raise
            raise named from None
        return X.astype(np.float32, copy=False)

    @staticmethod
    def _check_groups(groups, n_samples):
        if groups is None:
            return None
        groups = _as_array(groups)
        if groups.ndim != 1 or groups.shape[0] != n_samples:
            raise ValueError(
                f"groups must be 1-D with one drug id per row: got shape "
                f"{groups.shape} for {n_samples} rows."
            )
        return groups

    def _validate_fit_data(self, X, y, y_aux, groups):
        """Check the data of ``fit`` once; return X, the target, Y, Y_aux, groups.

        ``X`` and ``Y`` (the targets of the net: one column per label or
        class, the positive class alone for a binary ``y``) are float32.
        """
        X = self._validate_X(X, reset=True)
        target = TargetReader(type(self).__name__)
        Y = target.fit_transform(y, dtype=np.float32)  # y read (and warned) once
        if target.kind == "binary":
            Y = Y[:, 1:]  # one sigmoid output: the positive class
        check_consistent_length(X, Y)
        n = X.shape[0]
        if n < 2:
            raise ValueError(
                f"n_samples={n}: {type(self).__name__} needs at least 2 samples "
                "to train (batch normalisation needs 2 rows per batch)."
            )
        Y_aux = None if y_aux is None else _check_binary_matrix(y_aux, "y_aux", n)
        return X, target, Y, Y_aux, self._check_groups(groups, n)

    # -------------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, *, y_aux=None, groups=None):
        """Fit ``n_seeds`` nets on ``X``, ``y`` (and ``y_aux``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features (a DataFrame keeps its column names in
            ``feature_names_in_``).
        y : array-like of shape (n_samples, n_labels) or (n_samples,)
            0/1 label matrix (or DataFrame), or 1-D binary / multiclass labels.
        y_aux : array-like of shape (n_samples, n_aux), default=None
            Auxiliary 0/1 targets (e.g. the nonscored targets), used by the
            engine as documented in the subclass (e.g. to pretrain; the Keras
            and TabNet nets check them and do not use them). Not predicted.
            Request it with ``set_fit_request(y_aux=True)`` when metadata
            routing is on.
        groups : array-like of shape (n_samples,), default=None
            Drug id of each row. When given, the inner validation split keeps
            the rows of a drug together (see the class docstring). Without
            it, an inner validation split (``validation_fraction`` > 0)
            draws rows at random and a
            :class:`~moa_sklearn.exceptions.DrugLeakageWarning` says how to
            pass the drug ids.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_param_relations()
        X, target, Y, Y_aux, groups = self._validate_fit_data(X, y, y_aux, groups)
        device = self._resolve_device()
        seeds = check_random_state(self.random_state).randint(
            0, np.iinfo(np.int32).max, size=self.n_seeds
        )
        models, history, held = self._fit_seeds(X, Y, Y_aux, groups, seeds, device)
        self._set_target_attributes(target)
        self.device_ = device
        self.seeds_ = seeds
        self.n_aux_ = 0 if Y_aux is None else Y_aux.shape[1]
        self.models_ = models
        self.history_ = history
        rows, proba = held
        self.validation_indices_ = rows
        self.validation_proba_ = None if rows is None else self._output_proba(proba)
        for name, value in self._engine_attributes().items():
            setattr(self, name, value)
        return self

    def _set_target_attributes(self, target):
        self._target = target
        self.classes_ = target.classes
        self.n_labels_ = 1 if target.kind == "binary" else target.n_outputs
        if target.names is not None:
            self.target_names_ = target.names
        else:  # a refit on an array y drops the names of a previous y
            self.__dict__.pop("target_names_", None)

    def _smooth(self, Y):
        """Label smoothing of training targets (None stays None)."""
        s = self.label_smoothing
        return Y if (Y is None or s == 0) else Y * (1 - s) + 0.5 * s

    def _fit_seeds(self, X, Y, Y_aux, groups, seeds, device):
        """Train one model per seed under a progress bar.

        Returns ``(models, history, (validation_indices, validation_proba))``:
        each validation row predicted by the mean of the seeds' models that
        held it out (``(None, None)`` without validation).
        """
        per_seed = self._n_epochs()
        self._progress = progress_bar(
            None if per_seed is None else per_seed * self.n_seeds,
            type(self).__name__,
            self.verbose,
            unit="epoch",
        )
        models, history = [], []
        held_sum, held_count = 0.0, np.zeros(X.shape[0], dtype=np.int64)
        try:
            for i, seed in enumerate(seeds):
                if per_seed is not None:  # a seed stopped early: jump to the next
                    self._progress.n = i * per_seed
                    self._progress.refresh()
                (model, records), valid = self._fit_seed(
                    i, int(seed), X, Y, Y_aux, groups, device
                )
                models.append(model)
                history += [{"seed": i, **record} for record in records]
                if valid is not None:
                    if held_count.sum() == 0:
                        held_sum = np.zeros((X.shape[0], Y.shape[1]))
                    held_sum[valid] += self._predict_proba_one(model, X[valid])
                    held_count[valid] += 1
        finally:
            self._progress.close()
            del self._progress
            self.__dict__.pop("_progress_seed", None)
        rows = np.flatnonzero(held_count)
        if rows.size == 0:
            return models, history, (None, None)
        proba = np.clip(
            held_sum[rows] / held_count[rows, None], *clip_bounds(self.clip)
        )
        return models, history, (rows, proba)

    def _fit_seed(self, i, seed, X, Y, Y_aux, groups, device):
        """Split the rows for seed number ``i`` and train its model.

        Returns ``((model, history), valid)``: ``valid`` the validation rows
        (None without a split).
        """
        self._progress_seed = i
        train, valid = _inner_validation_split(
            Y, groups, self.validation_fraction, seed
        )
        if i == 0 and groups is None and valid is not None:
            _warn_without_groups(
                type(self).__name__, "inner validation split (best epoch)", 4
            )
        if self.verbose >= 2:
            n_valid = 0 if valid is None else valid.size
            print(
                f"[{type(self).__name__}] seed {i + 1}/{self.n_seeds} "
                f"({seed}): {train.size} training rows, {n_valid} validation "
                f"rows, device {device}"
            )

        def take(a, idx):
            return None if (a is None or idx is None) else a[idx]

        fitted = self._fit_one(
            take(X, train),
            self._smooth(take(Y, train)),
            take(X, valid),
            take(Y, valid),
            Y_aux=self._smooth(take(Y_aux, train)),
            Y_aux_valid=take(Y_aux, valid),
            seed=seed,
            device=device,
        )
        return fitted, valid

    # --------------------------------------------------------------- progress
    def _n_epochs(self):
        """Most epochs of one seed's training (None: unknown), for progress."""
        return None

    def _epoch_done(self, record):
        """Engines call this at the end of every epoch of ``_fit_one``.

        ``record`` is a dict like those of ``history_`` (``step``,
        ``train_loss``, ``valid_loss``, ...). With ``verbose`` the progress
        bar (on a terminal) moves on and shows the seed and the latest losses.
        """
        bar = getattr(self, "_progress", None)
        if bar is None or bar.disable:
            return
        parts = [f"seed {self._progress_seed + 1}/{self.n_seeds}"]
        if record.get("step"):
            parts.append(str(record["step"]))
        for key, short in (("train_loss", "train"), ("valid_loss", "valid")):
            if record.get(key) is not None:
                parts.append(f"{short} {float(record[key]):.5f}")
        bar.set_postfix_str(", ".join(parts), refresh=False)
        bar.update(1)

    # ---------------------------------------------------------------- predict
    def _label_proba(self, X):
        """Averaged, clipped P(output = 1) of shape (n, n_outputs of the net)."""
        check_is_fitted(self, "models_")
        X = self._validate_X(X, reset=False)
        proba = sum(
            np.asarray(self._predict_proba_one(model, X), dtype=np.float64)
            for model in self.models_
        ) / len(self.models_)
        return np.clip(proba, *clip_bounds(self.clip))

    def predict_proba(self, X):
        """Probability estimates, averaged over the seeds and clipped.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_labels) or (n_samples, n_classes)
            For a 2-D ``y``: P(label = 1) for each label, clipped to ``clip``
            and strictly inside (0, 1). For a 1-D ``y``: the probability of
            each class in ``classes_`` (rows sum to 1).
        """
        return self._output_proba(self._label_proba(X))

    def _output_proba(self, proba):
        """P(output = 1) of the net's outputs to ``predict_proba``'s format."""
        if self._target.kind == "binary":
            proba = np.column_stack([1 - proba[:, 0], proba[:, 0]])
        return self._target.proba(proba)

    def predict(self, X):
        """Predict labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples, n_labels) or (n_samples,)
            For a 2-D ``y``: ``predict_proba(X) > 0.5`` with the dtype of
            ``y``. For a 1-D ``y``: the most probable class of ``classes_``.
        """
        proba = self.predict_proba(X)  # checks that the net is fitted first
        return self._target.labels(proba)

    # ------------------------------------------------------------ persistence
    def __getstate__(self):
        state = super().__getstate__()
        if "models_" in state:
            state = dict(state)
            state["models_"] = [self._serialize_model(m) for m in state["models_"]]
            state["_models_serialized"] = True
        return state

    def __setstate__(self, state):
        serialized = state.pop("_models_serialized", False)
        super().__setstate__(state)
        if serialized:
            self.models_ = [self._deserialize_model(p) for p in self.models_]

    # ------------------------------------------------------------------- tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags
