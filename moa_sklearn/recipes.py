"""The whole lish-moa recipe as one scikit-learn ``Pipeline``."""

import numbers
import warnings

import numpy as np
import sklearn
from sklearn.base import clone
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline

from .ensemble import ControlVehicleClassifier, StackingBlend
from .preprocessing import make_moa_features
from .utils._engines import ENGINES as _ENGINES
from .utils._engines import install_hint
from .utils._engines import installed as _installed
from .utils._validation import clip_bounds

__all__ = ["make_moa_pipeline", "make_baseline_pipeline", "MODELS", "PROFILES"]

MODELS = tuple(_ENGINES)
"""Names of the built-in models of :func:`make_moa_pipeline`."""

PROFILES = ("quick", "full")
"""Profiles of :func:`make_moa_pipeline`."""

# quick: few epochs and small nets, for demos and tests (seconds on a CPU for
# a few thousand rows); full: the class defaults, which are the recipe, but
# for _FULL_MODEL_PARAMS
_QUICK_MODEL_PARAMS = {
    "twostep": dict(
        hidden_sizes=(128,),
        dropouts=0.2,
        max_epochs_pretrain=4,
        max_epochs_finetune=4,
        unfreeze_every=2,
    ),
    "keras": dict(
        hidden_sizes=(128,),
        dropouts=0.2,
        max_epochs=5,
        patience=None,
        learning_rate=3e-3,
    ),
    "tabnet": dict(
        n_d=8,
        n_a=8,
        max_epochs=20,
        patience=None,
        batch_size=128,
        virtual_batch_size=32,
        n_seeds=1,
        average_epochs="weights",
    ),
}

# full: the class defaults, but one TabNet whose best epochs' weights are
# averaged: three seeds, each the mean of its 10 best epochs' probabilities,
# are TabNet's default because a single TabNet varies much, but in the blend
# the other nets do that averaging (the blend without TabNet scores as well
# as with it on new compounds); two more seeds would be a third of the fit,
# and 10 passes of the network per prediction would cost more than the
# other nets' predictions together
_FULL_MODEL_PARAMS = {"tabnet": dict(n_seeds=1, average_epochs="weights")}
_QUICK_FEATURE_PARAMS = dict(
    n_components={"g": 50, "c": 10},
    n_clusters={"g": 5, "c": 2},
)

# the blend's inner CV. full: none, the weights are chosen on the nets' own
# validation drugs (one fit per net, where a 2-fold inner CV fits every net
# three times; the quality table of the benchmarks page compares the two);
# quick: 3 folds, small enough to pay for
_QUICK_CV, _FULL_CV = 3, "validation"


def _resolve_models(models):
    """Return a list of (name, estimator-or-None) from the ``models`` argument."""
    if isinstance(models, str) and models == "auto":
        found = [m for m in MODELS if _installed(m)]
        missing = [m for m in MODELS if m not in found]
        if not found:  # one message: no warning before the error
            raise ImportError(
                "make_moa_pipeline(models='auto') found no installed engine: "
                f"{install_hint()}."
            )
        if missing:
            extras = [_ENGINES[m].extra for m in missing]
            warnings.warn(
                f"make_moa_pipeline(models='auto'): {missing} left out, their "
                f"engines are not installed ({install_hint(*extras)}).",
                UserWarning,
                stacklevel=3,
            )
        return [(m, None) for m in found]
    if isinstance(models, str):
        models = (models,)
    out = []
    for item in models:
        if isinstance(item, str):
            if item not in MODELS:
                raise ValueError(
                    f"Unknown model {item!r}: models are names among {MODELS}, "
                    "(name, estimator) pairs, or 'auto'."
                )
            out.append((item, None))
        elif (
            isinstance(item, tuple)
            and len(item) == 2
            and isinstance(item[0], str)
            and hasattr(item[1], "fit")
        ):
            out.append(item)
        else:
            raise ValueError(
                "models must be 'auto' or a list of model names among "
                f"{MODELS} and (name, estimator) pairs; got {item!r}."
            )
    if not out:
        raise ValueError("models is empty: give at least one model.")
    return out


def _build_net(name, profile, random_state, params):
    from . import neural

    cls = getattr(neural, _ENGINES[name].cls)  # clear ImportError if missing
    table = _QUICK_MODEL_PARAMS if profile == "quick" else _FULL_MODEL_PARAMS
    kwargs = dict(table.get(name, {}))
    kwargs["random_state"] = random_state
    kwargs.update(params)
    return cls(**kwargs)


def make_moa_pipeline(
    models="auto",
    *,
    profile="quick",
    random_state=None,
    cv=None,
    weights="optimize",
    control_column="cp_type",
    control_proba=5e-4,
    feature_params=None,
    model_params=None,
    route_metadata=True,
    n_jobs=None,
):
    """The seed's full system as one estimator: controls, features, blend.

    The parts, by name::

        ControlVehicleClassifier(                control rows (raw cp_type ==
            Pipeline([                           'ctl_vehicle') -> floor proba
                ("features", make_moa_features(...)),  raw frame -> features
                ("model", StackingBlend([twostep, keras, tabnet])),
            ]))

    The control rows are recognised on the raw frame, from ``cp_type``, by
    :class:`~moa_sklearn.ensemble.ControlVehicleClassifier` (the one place
    where that rule lives); they get ``control_proba`` for every target,
    and the feature steps and the blend see the treated rows only, in
    ``fit`` and in ``predict``. So it makes no difference whether the
    training rows hold controls (an inner or outer CV fold without
    controls, or treated rows only as in the public notebooks) and a test
    set with controls is predicted all the same. The blend chooses its
    weights on predictions of drugs that the nets did not train on: with
    the full profile, those each net held out to choose its best epoch
    (``cv='validation'``, one fit per net; the nets then share one seed and
    so hold out the same drugs); with the quick profile, the out-of-fold
    predictions of a drug-grouped inner CV.
    Parameters are reachable for ``GridSearchCV`` as
    ``estimator__features__<step>__<param>`` and
    ``estimator__model__<model>__<param>``, e.g.
    ``{"estimator__features__pca__n_components": [...],
    "estimator__model__twostep__hidden_sizes": [...]}``; fit parameters
    without metadata routing as ``model__groups=drugs``.

    Parameters
    ----------
    models : 'auto' or list of str or (str, estimator), default='auto'
        The base models of the blend: names among ``'twostep'``
        (:class:`~moa_sklearn.neural.TwoStepNetClassifier`), ``'keras'``
        (:class:`~moa_sklearn.neural.KerasNetClassifier`) and ``'tabnet'``
        (:class:`~moa_sklearn.neural.TabNetMultilabelClassifier`), or
        ``(name, estimator)`` pairs of any classifier. ``'auto'``: the three
        nets whose engine is installed (a warning names those left out). A
        model named explicitly whose engine is missing raises an
        ``ImportError`` that says what to install.
    profile : {'quick', 'full'}, default='quick'
        ``'quick'``: small nets, few epochs and one seed, 50 gene / 10 cell PCA
        components, 5 / 2 clusters, a 3-fold inner CV: for demos and tests.
        ``'full'``: the recipe (the nets' and :func:`make_moa_features`'
        defaults; blend weights chosen on the nets' own validation drugs,
        ``cv='validation'``), but TabNet with one seed (``n_seeds=1``; three
        by itself) whose best epochs' weights are averaged
        (``average_epochs='weights'``; their probabilities by itself): in the
        blend, the other nets do the averaging that TabNet does alone, and
        its prediction stays one pass of the network.
    random_state : int or None, default=None
        Seed of the features, of every net and of the inner CV.
    cv : int, splitter, 'validation' or None, default=None
        Inner CV of the blend (``None``: 3 for quick, ``'validation'`` for
        full; an int is a
        :class:`~moa_sklearn.model_selection.DrugMultilabelStratifiedKFold`;
        ``'validation'``: the weights are chosen on the nets' own
        validation drugs, see :class:`~moa_sklearn.ensemble.StackingBlend`).
    weights : str or array-like, default='optimize'
        ``weights`` of :class:`~moa_sklearn.ensemble.StackingBlend`.
    control_column : str or None, default='cp_type'
        The raw column whose value ``'ctl_vehicle'`` marks a control row;
        ``None`` for no control handling (every row goes through the
        features and the blend; a test set with controls then needs
        controls in the training rows too, or the ``features`` step meets an
        unseen ``cp_type``).
    control_proba : float, default=0.0005
        Probability predicted for every target of a control row.
    feature_params : dict, default=None
        Keyword arguments of :func:`make_moa_features`, over the profile's.
    model_params : dict of str to dict, default=None
        Per built-in model, keyword arguments of its estimator over the
        profile's, e.g. ``{"twostep": {"n_seeds": 3, "device": "cuda"}}``.
    route_metadata : bool, default=True
        When metadata routing is enabled (``sklearn.set_config(
        enable_metadata_routing=True)`` *before* this call), request
        ``y_aux`` and ``groups`` in the built-in nets' ``fit``
        (``set_fit_request(y_aux=True, groups=True)``), so that
        ``cross_validate(..., params={"groups": drugs, "y_aux": Y_aux})``
        reaches the blend's inner splitter and the nets (pretraining on
        ``y_aux``, drug-grouped inner validation). With routing disabled
        nothing is requested (``set_fit_request`` would raise); then pass
        ``fit(X, Y, model__groups=drugs, model__y_aux=Y_aux)``, and in
        ``cross_val_score(..., groups=drugs, params={"model__groups":
        drugs})`` (``groups=`` alone reaches the outer splitter only: the
        blend and the nets then split rows and warn with a
        :class:`~moa_sklearn.exceptions.DrugLeakageWarning`).
    n_jobs : int or None, default=None
        ``n_jobs`` of the blend: its fits (each net, on each inner fold)
        run in that many processes at once (-1: one per core). The nets
        then share the cores without oversubscription: for its fits, the
        blend gives each net whose ``n_threads`` is None (the default,
        unless ``model_params`` gives it) the cores divided by the fits
        that run at once, at least 1; the fitted nets predict with every
        core. On 2 cores the full profile fits each of its three nets with
        one thread, two at a time, with ``n_jobs=2`` or -1.

    Returns
    -------
    model : ControlVehicleClassifier
        Unfitted: a :class:`~moa_sklearn.ensemble.ControlVehicleClassifier`
        around the ``Pipeline`` of ``features`` and ``model`` (the blend),
        also with ``control_column=None`` (then every row is passed on).
        Once fitted, ``estimator_.named_steps["model"]`` is the fitted blend.

    Examples
    --------
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> from moa_sklearn.datasets import make_moa
    >>> from moa_sklearn.recipes import make_moa_pipeline
    >>> world = make_moa(n_samples=300, n_test=0, n_genes=20, n_cells=6,
    ...                  n_scored=5, n_nonscored=0, random_state=0)
    >>> pipe = make_moa_pipeline([("knn", KNeighborsClassifier(20))],
    ...                          random_state=0,
    ...                          feature_params=dict(n_components=4, n_clusters=2))
    >>> list(pipe.estimator.named_steps)
    ['features', 'model']
    >>> pipe.fit(world.data, world.target, model__groups=world.groups)
    ControlVehicleClassifier(...)
    >>> proba = pipe.predict_proba(world.data)
    >>> proba.shape
    (300, 5)
    >>> bool((proba[pipe.control_mask(world.data)] == 5e-4).all())
    True
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}.")
    if random_state is not None and not isinstance(random_state, numbers.Integral):
        raise ValueError(
            "random_state must be an int or None (one seed is given to every "
            f"step), got {random_state!r}."
        )
    model_params = dict(model_params or {})
    unknown = set(model_params) - set(MODELS)
    if unknown:
        raise ValueError(
            f"model_params has unknown models {sorted(unknown)}; built-in models "
            f"are {MODELS} (tune a custom estimator before passing it)."
        )
    routing = route_metadata and sklearn.get_config()["enable_metadata_routing"]
    resolved = _resolve_models(models)
    if cv is None:
        cv = _QUICK_CV if profile == "quick" else _FULL_CV
    estimators = []
    for name, estimator in resolved:
        if estimator is None:
            estimator = _build_net(
                name, profile, random_state, model_params.get(name, {})
            )
            if routing:
                estimator.set_fit_request(y_aux=True, groups=True)
        else:
            estimator = clone(estimator)
        estimators.append((name, estimator))

    fparams = dict(_QUICK_FEATURE_PARAMS) if profile == "quick" else {}
    fparams["random_state"] = random_state
    fparams.update(feature_params or {})
    features = make_moa_features(**fparams)

    blend = StackingBlend(
        estimators, cv=cv, weights=weights, n_jobs=n_jobs, random_state=random_state
    )
    return ControlVehicleClassifier(
        Pipeline([("features", features), ("model", blend)]),
        column=control_column,
        control_proba=control_proba,
    )


class _ClippedOneVsRestClassifier(OneVsRestClassifier):
    """A ``OneVsRestClassifier`` whose probabilities stay inside ``clip``.

    A target with no positive in the training rows gets a constant predictor
    of probability exactly 0, which the log loss punishes without bound on a
    test row that has it; the nets clip to (0.0005, 0.9995), so does this.
    """

    _parameter_constraints = {
        **OneVsRestClassifier._parameter_constraints,
        "clip": [None, "array-like"],
    }

    def __init__(self, estimator, *, clip=None, n_jobs=None, verbose=0):
        super().__init__(estimator, n_jobs=n_jobs, verbose=verbose)
        self.clip = clip

    def predict_proba(self, X):
        return np.clip(super().predict_proba(X), *clip_bounds(self.clip))


def make_baseline_pipeline(
    *,
    n_components=100,
    C=0.01,
    clip=(0.0005, 0.9995),
    control_column="cp_type",
    control_proba=5e-4,
    random_state=None,
):
    """The plain baseline every figure should stand next to: logistic regression.

    One logistic regression per target on RankGauss + PCA features of the
    raw lish-moa columns, with control rows predicted ``control_proba`` (as
    in :func:`make_moa_pipeline`, fitted on treated rows only). On
    ``make_moa``'s default world it reaches about 0.83 of the constant
    prior's log loss on drugs held out whole (see the benchmarks page): a
    model that does not beat it clearly has not earned its cost. The
    ``moa-sklearn cv`` command scores it on the same folds as the pipeline
    it evaluates, and the report shows it.

    Parameters
    ----------
    n_components : int, default=100
        Principal components of the encoded, RankGauss-transformed columns
        (at most their number).
    C : float, default=0.01
        Inverse regularisation strength of each logistic regression.
    clip : (float, float) or None, default=(0.0005, 0.9995)
        Bounds of the predicted probabilities of treated rows, as the nets'
        ``clip`` (a target without positives in the training rows is
        otherwise predicted 1e-15, the floor of every clip).
    control_column : str, int or None, default="cp_type"
        The column that marks control rows, as in
        :class:`~moa_sklearn.ensemble.ControlVehicleClassifier`.
    control_proba : float, default=5e-4
        The probability predicted for every target of a control row.
    random_state : int or None, default=None
        Seed of the PCA's randomised solver.

    Returns
    -------
    model : ControlVehicleClassifier
        Unfitted: control rows -> ``CategoricalEncoder`` -> ``RankGauss`` ->
        ``PCA`` -> ``OneVsRestClassifier(LogisticRegression(C=C))``, its
        probabilities clipped to ``clip``.

    See Also
    --------
    make_moa_pipeline : The whole recipe.

    Examples
    --------
    >>> from moa_sklearn.datasets import make_moa
    >>> from moa_sklearn.metrics import mean_columnwise_log_loss
    >>> from moa_sklearn.recipes import make_baseline_pipeline
    >>> world = make_moa(n_samples=600, n_test=0, n_genes=30, n_cells=10,
    ...                  n_scored=5, n_nonscored=3, random_state=0)
    >>> baseline = make_baseline_pipeline(n_components=10, random_state=0)
    >>> proba = baseline.fit(world.data, world.target).predict_proba(world.data)
    >>> proba.shape
    (600, 5)
    >>> bool(mean_columnwise_log_loss(world.target, proba) < 0.5)
    True
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression

    from .preprocessing import CategoricalEncoder, RankGauss

    logistic = LogisticRegression(C=C, max_iter=300)
    model = Pipeline(
        [
            ("encoder", CategoricalEncoder()),
            ("rankgauss", RankGauss(random_state=random_state)),
            ("pca", PCA(n_components, random_state=random_state)),
            ("model", _ClippedOneVsRestClassifier(logistic, clip=clip)),
        ]
    )
    return ControlVehicleClassifier(
        model, column=control_column, control_proba=control_proba
    )
