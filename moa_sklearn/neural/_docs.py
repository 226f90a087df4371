"""The parameters and attributes that the nets share, documented once.

Every net (PyTorch, Keras, TabNet) takes the same words for the same
settings; :data:`SHARED_DOCS` holds the numpydoc paragraph of each, and
:func:`shared_docs` writes them into a class docstring, where a line holds
``%(name, name, ...)s``, as imbalanced-learn's ``Substitution`` decorator
does. The default shown is read from the class's ``__init__``, so that it
cannot drift from the code; an engine adds its own remarks to a paragraph
through the decorator's keyword arguments.
"""

import inspect
import re
import textwrap

__all__ = ["SHARED_DOCS", "TORCH_THREADS", "shared_docs"]

#: What ``n_threads`` does on PyTorch (the two-step net, TabNet, Keras on torch).
TORCH_THREADS = (
    "On PyTorch it is ``torch.set_num_threads``, restored afterwards; the "
    "setting is process-wide, so do not fit nets in parallel threads with "
    "different values."
)

# name -> (numpydoc type, description)
SHARED_DOCS = {
    # ------------------------------------------------------ the architecture
    "hidden_sizes": ("sequence of int", "Width of each hidden layer."),
    "batch_norm": (
        "bool",
        "Batch normalisation at the input of every linear layer (each hidden "
        "layer and the output layer).",
    ),
    "weight_norm": (
        '{"head", "all", "none"}',
        "Which linear layers are weight-normalised: only the output layer "
        "(the head), all, or none.",
    ),
    # ------------------------------------------------------------- training
    "max_epochs": (
        "int",
        "Most epochs of training of one net (fewer when early stopping ends it).",
    ),
    "batch_size": ("int", "Rows per training batch."),
    "learning_rate": (
        "float",
        "Adam's peak learning rate: the initial one, which the plateau "
        "schedule (``lr_factor``, ``lr_patience``, ``min_lr``) then lowers.",
    ),
    "weight_decay": ("float", "Adam's weight decay; 0 for none."),
    "patience": (
        "int or None",
        "Early stopping: training stops after ``patience`` epochs without an "
        "improvement of the validation loss, and the weights of the best "
        "epoch are restored. None: no early stopping (the best epoch is still "
        "restored). Unused without inner validation.",
    ),
    "lr_factor": (
        "float",
        "``ReduceLROnPlateau``: each time the learning rate is lowered, it is "
        "multiplied by ``lr_factor``.",
    ),
    "lr_patience": (
        "int",
        "``ReduceLROnPlateau``: the learning rate is lowered after "
        "``lr_patience`` epochs without an improvement of the monitored loss.",
    ),
    "min_lr": ("float", "Lower bound of the learning rate."),
    "label_smoothing": (
        "float",
        "Training targets become ``y * (1 - s) + 0.5 * s`` (validation "
        "targets are not smoothed).",
    ),
    # ------------------------------------------------ predictions and seeds
    "clip": (
        "pair of float or None",
        "Predicted probabilities are clipped to this range (None: not "
        "clipped), and always kept strictly inside (0, 1).",
    ),
    "n_seeds": (
        "int",
        "Number of nets, each with its own seed and inner split; their "
        "probabilities are averaged.",
    ),
    "validation_fraction": (
        "float or None",
        "Fraction of the training rows held out as the inner validation "
        "split, on which the best epoch is chosen (and early stopping and "
        "the learning-rate schedule watch the loss, where the net has them); "
        "drug-grouped when ``groups`` is passed to ``fit`` (every drug, large "
        "ones too, whole on one side). None or 0: no "
        "inner validation, the last epoch is kept.",
    ),
    # --------------------------------------------------------- the machine
    "device": (
        '{"auto", "cpu", "cuda"} or str',
        '``"auto"`` uses a GPU where the engine sees one, else the CPU; '
        '``"cuda"`` (``"cuda:N"`` for the N-th GPU) asks for a GPU and is an '
        "error where there is none. A model trained on a GPU loads and "
        "predicts on a CPU-only machine.",
    ),
    "n_threads": (
        "int or None",
        "CPU threads of the engine during ``fit`` and ``predict_proba``; None "
        "keeps the engine's setting. Use 1 when several fits run in parallel "
        "processes (``n_jobs`` of a search, CV folds) or for tiny nets.",
    ),
    "random_state": (
        "int, RandomState instance or None",
        "Seeds the initialisation, dropout, batch order and inner split of "
        "the nets: the same int gives the same predictions on the same "
        "machine.",
    ),
    "verbose": (
        "int",
        "0 is silent; 1 shows a progress bar of the epochs (seeds, elapsed "
        "time, time left, latest losses) on standard error when it is a "
        "terminal; 2 also prints the engine's own log.",
    ),
    # -------------------------------------------------- fitted attributes
    "classes_": (
        "ndarray",
        "For a 2-D ``y``, the label indices ``0 .. n_labels - 1``; for a 1-D "
        "``y``, the class labels.",
    ),
    "n_labels_": (
        "int",
        "Number of outputs of the net (labels; 1 for binary; n_classes).",
    ),
    "target_names_": (
        "ndarray of str",
        "The columns of ``y`` when it was a DataFrame.",
    ),
    "n_features_in_": ("int", "Number of features seen during ``fit``."),
    "feature_names_in_": (
        "ndarray of str",
        "Names of the features seen during ``fit``; defined when ``X`` has "
        "string column names.",
    ),
    "n_aux_": ("int", "Number of columns of ``y_aux`` given to ``fit``."),
    "seeds_": ("ndarray of int", "The seed of each net."),
    "device_": ("str", "The device used for training."),
    "validation_indices_": (
        "ndarray of int or None",
        "The rows of ``fit``'s ``X`` held out for validation by at least one "
        "seed (sorted); None without an inner validation split.",
    ),
    "validation_proba_": (
        "ndarray of shape (n_validation, n_outputs) or None",
        "The probabilities of the rows ``validation_indices_``, as "
        "``predict_proba`` gives them, each the mean of the seeds' models "
        "(at their best epoch) that did not train on it: predictions on "
        "drugs the nets did not see (with ``groups``), on which "
        ":class:`~moa_sklearn.ensemble.StackingBlend` ``(cv='validation')`` "
        "chooses its weights. Optimistic by the choice of the best epoch, "
        "made on them. None without an inner validation split.",
    ),
}

_PLACEHOLDER = re.compile(r"^( *)%\(([\w, ]+)\)s$", flags=re.MULTILINE)

_WIDTH = 79


def _default_repr(value):
    """``value`` as numpydoc writes a default: ``"auto"``, ``1e-5``, ``(0, 1)``."""
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "(" + ", ".join(_default_repr(v) for v in value) + ")"
    # 1e-05 -> 1e-5
    return re.sub(r"e(-?)\+?0*(\d)", r"e\1\2", repr(value))


def _entry(name, indent, defaults, note):
    kind, text = SHARED_DOCS[name]
    head = f"{indent}{name} : {kind}"
    if name in defaults:
        head += f", default={_default_repr(defaults[name])}"
    body = textwrap.fill(
        f"{text} {note}".strip(),
        width=_WIDTH,
        initial_indent=indent + "    ",
        subsequent_indent=indent + "    ",
        break_on_hyphens=False,
    )
    return f"{head}\n{body}"


def shared_docs(**notes):
    """Class decorator: write the shared entries into the class docstring.

    A docstring line that holds only ``%(name, name, ...)s`` (indented as the
    entries around it) becomes the numpydoc entry of each ``name`` of
    :data:`SHARED_DOCS`: ``name : type, default=...`` (the default of the
    class's ``__init__``, none for attributes and classes without it) and the
    description, followed by ``notes[name]`` where given.

    Parameters
    ----------
    **notes : str
        Remarks of this class, appended to the shared description of a name.

    Returns
    -------
    decorate : callable
        Takes the class, substitutes its docstring, returns it.
    """
    unknown = set(notes) - set(SHARED_DOCS)
    if unknown:  # pragma: no cover - a typo in the package
        raise ValueError(f"no shared documentation for {sorted(unknown)}")

    def decorate(cls):
        defaults = {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }

        def substitute(match):
            indent, names = match.group(1), match.group(2)
            return "\n".join(
                _entry(name.strip(), indent, defaults, notes.get(name.strip(), ""))
                for name in names.split(",")
            )

        cls.__doc__ = _PLACEHOLDER.sub(substitute, cls.__doc__)
        return cls

    return decorate
