"""The ``moa-sklearn`` command: make data, cross-validate, fit, predict, report.

::

    moa-sklearn make-data FOLDER            a make_moa world in the Kaggle layout
    moa-sklearn cv FOLDER -o CVDIR          drug-grouped CV of make_moa_pipeline
    moa-sklearn fit FOLDER -o MODEL         fit the pipeline on all training rows
    moa-sklearn predict MODEL FOLDER -o submission.csv
    moa-sklearn report CVDIR [-o report.html]

``cv``, ``fit`` take ``--profile quick|full``, ``--models twostep,keras``,
``--seed``, ``--n-jobs``, ``--device``, ``-v``/``-q`` and ``--config
FILE.json``: a JSON object whose keys mirror the flags (``profile``,
``models``, ``seed``, ``n_jobs``, ``device``, ``verbose``, ``folds``,
``inner_folds``, ``protocol``) plus ``feature_params`` and ``model_params`` (keyword
arguments of :func:`~moa_sklearn.recipes.make_moa_pipeline`). Flags override
the file. Every setting is checked before anything is written.

Progress: on a terminal, ``cv`` and ``fit`` draw progress bars (tqdm, on
standard error) of the folds, of the blend's model fits and of each net's
epochs, with the elapsed time and an estimate of the time left (``verbose``
1, the default); ``-q`` (0) turns them off and ``-v`` (2) adds the nets' own
per-epoch logs. When standard error is not a terminal no bar is drawn; the
per-fold lines are written all the same.

``cv`` writes one file pair per finished fold (``fold_K.npz``, ``fold_K.json``)
and the settings (``config.json``); every file is written under a temporary
name and renamed, so an interrupted run leaves no half-written file, and the
same command run again resumes: finished folds are loaded, not recomputed. When
every fold is done it writes ``cv_summary.json`` and ``oof.csv``.

Nothing in the package imports this module.
"""

import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .model_selection import _PROTOCOLS, _protocol_splitter
from .utils._engines import ENGINES
from .utils._progress import progress_bar, write_line

__all__ = ["main"]

MODEL_FORMAT = "moa-sklearn-model"
# first line of a model file: the format and its version; then one line of
# JSON (the header: versions, feature and target names, settings), then the
# joblib pickle of the pipeline. ``predict`` reads the header alone to check
# the test file before it unpickles the nets (which imports their engines).
_MODEL_MAGIC = b"moa-sklearn-model 1\n"
CV_FORMAT = "moa-sklearn-cv"
TRUTH_FOLDER = "truth"

# settings of cv/fit, with their defaults (None: the library's default)
_DEFAULTS = dict(
    profile="quick",
    models="auto",
    seed=0,
    # "auto": the full profile's fits in parallel on every core (its nets
    # train for minutes: the workers' start pays), the quick profile's in
    # this process
    n_jobs="auto",
    device="auto",
    verbose=1,
    folds=5,
    inner_folds=None,
    protocol="new-compound",
    feature_params={},
    model_params={},
    # cv: also keep the blend's inner out-of-fold predictions in fold_K.npz
    # (to try second stages on them without refitting a net)
    save_inner_oof=False,
)
# settings that change the results of cv (a resumed run must keep them)
_RESULT_KEYS = (
    "profile",
    "models",
    "seed",
    "folds",
    "inner_folds",
    "protocol",
    "feature_params",
    "model_params",
)


class CLIError(Exception):
    """An error reported as ``moa-sklearn: error: ...`` (exit status 2)."""


# --------------------------------------------------------------------------
# Small helpers: log lines, atomic writes, settings
# --------------------------------------------------------------------------


def _log(message):
    write_line(f"moa-sklearn: {message}")  # keeps the bars on screen intact


def _atomic_write(path, write):
    """Call ``write(file)`` on a temporary file, then rename it to ``path``.

    An ``OSError`` (no permission, disk full, ...) becomes a :class:`CLIError`
    naming the file; the temporary file is removed in every case.
    """
    path = Path(path)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise CLIError(f"cannot write {str(path)!r}: {_os_reason(e)}.") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _os_reason(e):
    """The reason of an OSError, without its errno prefix."""
    return e.strerror or str(e)


def _writable_folder(folder, what):
    """Create ``folder`` if needed and check that files can be written there."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise CLIError(f"{what} {str(folder)!r} exists and is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".moa-sklearn-probe{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise CLIError(
            f"{what} {str(folder)!r} cannot be written: {_os_reason(e)}."
        ) from None
    return folder


def _writable_file(path, what):
    """Check, before any work, that ``path`` can be written (atomically).

    ``path`` must not be a folder; its folder is created when missing.
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {str(path)!r} is a folder; give a file name.")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise CLIError(
            f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder."
        )
    _writable_folder(parent, f"the folder of the {what}")
    if path.exists() and not os.access(path, os.W_OK):
        raise CLIError(f"{what} {str(path)!r} exists and is read-only.")
    return path


def _write_json(path, obj):
    text = json.dumps(obj, indent=1, default=_json_default, allow_nan=True)
    _atomic_write(path, lambda f: f.write(text.encode()))


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _read_json(path, what):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CLIError(f"{what} {str(path)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CLIError(f"{what} {str(path)!r} is not valid JSON ({e}).") from None


def _settings(args):
    """Defaults, then the config file, then the flags given."""
    settings = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in _DEFAULTS.items()
    }
    if getattr(args, "config", None):
        config = _read_json(args.config, "config file")
        if not isinstance(config, dict):
            raise CLIError(f"config file {args.config!r}: expected a JSON object.")
        unknown = sorted(set(config) - set(_DEFAULTS))
        if unknown:
            raise CLIError(
                f"config file {args.config!r}: unknown key(s) {unknown}; "
                f"keys are {sorted(_DEFAULTS)}."
            )
        settings.update(config)
    for key in _DEFAULTS:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    if isinstance(settings["models"], list) and settings["models"] == ["auto"]:
        settings["models"] = "auto"
    for key in ("feature_params", "model_params"):
        if not isinstance(settings[key], dict):
            raise CLIError(f"{key} must be a JSON object, got {settings[key]!r}.")
    return settings


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _model_names(settings):
    """The models of the blend: the names given, or the installed ones."""
    from .recipes import MODELS, _installed
    from .utils._engines import install_hint

    models = settings["models"]
    if models == "auto":
        names = [m for m in MODELS if _installed(m)]
        if not names:
            raise CLIError(
                "no model can run: none of the engines of the nets "
                f"({', '.join(MODELS)}) is installed; install them with "
                f"{install_hint()}."
            )
        left_out = [m for m in MODELS if m not in names]
        return names, left_out
    names = [models] if isinstance(models, str) else models
    if not isinstance(names, list) or not all(isinstance(m, str) for m in names):
        raise CLIError(f"models must be a list of model names, got {models!r}.")
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise CLIError(
            f"unknown model(s) {unknown}; models are {', '.join(MODELS)} or auto "
            "(give several as --models twostep,keras)."
        )
    if len(set(names)) != len(names):
        raise CLIError(f"a model is named twice in {names}.")
    for m in names:
        if not _installed(m):
            raise CLIError(
                f"model {m!r} needs {' and '.join(ENGINES[m].requires)}, which is "
                f"not installed: {install_hint(ENGINES[m].extra)}."
            )
    return names, []


def _check_settings(settings):
    """Check every setting (and build the pipeline once) before any writing.

    Returns the names of the blend's models; logs the models left out by
    ``auto``.
    """
    from .recipes import PROFILES

    if settings["profile"] not in PROFILES:
        raise CLIError(
            f"profile must be one of {', '.join(PROFILES)}, got "
            f"{settings['profile']!r}."
        )
    names, left_out = _model_names(settings)
    _check_values(settings)
    _check_model_params(settings["model_params"])
    _check_estimators(settings, names)
    if left_out:
        _log(
            f"models: {', '.join(names)} ({', '.join(left_out)} left out: their "
            "engine is not installed)."
        )
    return names


def _check_values(settings):
    """The settings of one value: seed, folds, n_jobs, device, ..."""
    checks = [
        ("seed", _is_int(settings["seed"]) and settings["seed"] >= 0, "an int >= 0"),
        ("folds", _is_int(settings["folds"]) and settings["folds"] >= 2, "an int >= 2"),
        (
            "inner_folds",
            settings["inner_folds"] in (None, "validation")
            or (_is_int(settings["inner_folds"]) and settings["inner_folds"] >= 2),
            "an int >= 2 or 'validation'",
        ),
        (
            "n_jobs",
            settings["n_jobs"] in (None, "auto")
            or (_is_int(settings["n_jobs"]) and settings["n_jobs"] != 0),
            "a non-zero int or 'auto'",
        ),
        ("device", isinstance(settings["device"], str), "a string"),
        ("verbose", settings["verbose"] in (0, 1, 2), "0, 1 or 2"),
        ("protocol", settings["protocol"] in _PROTOCOLS, " or ".join(_PROTOCOLS)),
        ("save_inner_oof", isinstance(settings["save_inner_oof"], bool), "a bool"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise CLIError(f"{key} must be {what}, got {settings[key]!r}.")


def _check_model_params(model_params):
    """``model_params``: a JSON object per built-in model."""
    from .recipes import MODELS

    unknown = sorted(set(model_params) - set(MODELS))
    if unknown:
        raise CLIError(
            f"model_params has unknown model(s) {unknown}; models are "
            f"{', '.join(MODELS)}."
        )
    for name, params in model_params.items():
        if not isinstance(params, dict):
            raise CLIError(
                f"model_params[{name!r}] must be a JSON object, got {params!r}."
            )


def _check_estimators(settings, names):
    """Build the pipeline: the estimators say what else is wrong.

    An unknown keyword argument, or a bad parameter value of a net.
    """
    import sklearn

    try:
        with sklearn.config_context(enable_metadata_routing=True):
            pipe = _build_pipeline(settings, names)
        for name, net in pipe.estimator.named_steps["model"].estimators:
            check = getattr(net, "_check_params", None)
            if check is not None:
                try:
                    check()
                except (TypeError, ValueError) as e:
                    raise CLIError(f"model_params[{name!r}]: {e}") from None
    except TypeError as e:  # an unknown keyword argument
        raise CLIError(f"feature_params or model_params: {e}") from None


def _n_jobs(settings):
    """The blend's ``n_jobs``: ``"auto"`` is -1 (every core) for the full
    profile, None (one process) for the quick one."""
    if settings["n_jobs"] == "auto":
        return -1 if settings["profile"] == "full" else None
    return settings["n_jobs"]


def _build_pipeline(settings, names):
    """make_moa_pipeline of the models ``names`` from the (checked) settings.

    Call it with metadata routing on.
    """
    from .recipes import make_moa_pipeline

    model_params = {k: dict(v) for k, v in settings["model_params"].items()}
    for name in names:
        params = model_params.setdefault(name, {})
        if settings["device"] not in (None, "auto"):
            params.setdefault("device", settings["device"])
        params.setdefault("verbose", settings["verbose"])
    model_params = {k: v for k, v in model_params.items() if k in names or v}
    pipe = make_moa_pipeline(
        names,
        profile=settings["profile"],
        random_state=settings["seed"],
        cv=settings["inner_folds"],
        feature_params=settings["feature_params"],
        model_params=model_params,
        n_jobs=_n_jobs(settings),
    )
    # a progress bar of the blend's fits (every model on every inner fold)
    pipe.set_params(estimator__model__verbose=settings["verbose"])
    return pipe


def _check_data_folder(folder):
    folder = Path(folder)
    if not folder.exists():
        raise CLIError(f"data folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise CLIError(f"{str(folder)!r} is not a folder.")
    return folder


def _load(folder):
    from .datasets import load_moa

    return load_moa(_check_data_folder(folder))


def _load_truth(folder, index):
    """The Bayes-optimal probabilities written by make-data, if any."""
    path = Path(folder) / TRUTH_FOLDER / "bayes_proba.csv"
    if not path.is_file():
        return None
    truth = pd.read_csv(path, index_col="sig_id")
    if not truth.index.isin(index).all() or len(truth) != len(index):
        return None
    return truth.loc[index]


# --------------------------------------------------------------------------
# make-data
# --------------------------------------------------------------------------


def _cmd_make_data(args):
    from .datasets import make_moa, write_moa

    _writable_folder(args.folder, "data folder")
    _writable_folder(Path(args.folder) / TRUTH_FOLDER, "truth folder")
    options = [flag[2:].replace("-", "_") for flag, *_ in _MAKE_DATA_OPTIONS]
    world = make_moa(
        **{name: getattr(args, name) for name in options}, random_state=args.seed
    )
    folder = write_moa(world, args.folder)
    truth = folder / TRUTH_FOLDER
    truth.mkdir(exist_ok=True)
    frames = {"bayes_proba.csv": world.bayes_proba}
    if args.n_test:
        frames.update(
            {
                "test_bayes_proba.csv": world.test_bayes_proba,
                "test_targets_scored.csv": world.test_target,
            }
        )
    for name, frame in frames.items():
        text = frame.to_csv(index_label="sig_id")
        _atomic_write(truth / name, lambda f, t=text: f.write(t.encode()))
    _log(
        f"wrote a make_moa world to {str(folder)!r}: {world.data.shape[0]} train rows, "
        f"{args.n_test} test rows, {world.target.shape[1]} scored targets "
        f"(the Bayes-optimal probabilities are in {TRUTH_FOLDER}/)."
    )
    return 0


# --------------------------------------------------------------------------
# cv
# --------------------------------------------------------------------------


def _data_fingerprint(moa):
    h = hashlib.sha256()
    h.update("\n".join(map(str, moa.data.index)).encode())
    h.update("\n".join(moa.feature_names + moa.target_names).encode())
    return h.hexdigest()[:16]


def _data_digests(folder):
    """SHA-256 of the training files (``sha256sum`` checks them)."""
    from .datasets import TRAIN_DRUG, TRAIN_FEATURES, TRAIN_NONSCORED, TRAIN_SCORED
    from .utils._environment import file_digest

    out = {}
    for name in (TRAIN_FEATURES, TRAIN_SCORED, TRAIN_NONSCORED, TRAIN_DRUG):
        path = Path(folder) / name
        if path.is_file():
            out[name] = file_digest(path)
    return out


def _history(estimator):
    """Learning curve records of a fitted net (JSON-able), or []."""
    records = getattr(estimator, "history_", None) or []
    keep = ("seed", "step", "epoch", "train_loss", "valid_loss")
    out = []
    for r in records:
        if isinstance(r, dict):
            out.append({k: r.get(k) for k in keep if k in r})
    return out


def _fit_fold(k, train, test, moa, settings, names, truth):
    """Fit the pipeline on ``train``, predict ``test``: (arrays, info)."""
    import sklearn

    from .metrics import columnwise_log_loss, mean_columnwise_log_loss
    from .utils._environment import machine, peak_memory_mib

    X, Y, Y_aux, groups = moa.data, moa.target, moa.target_aux, moa.groups
    t0 = time.perf_counter()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _build_pipeline(settings, names)
        if pipe.get_params()["estimator__model__cv"] != "validation":
            # the inner-fold models too: the fold's test rows are also
            # predicted as refit=False would (the mean of each model's fold
            # models)
            pipe.set_params(estimator__model__keep_fold_models=True)
        pipe.fit(
            X.iloc[train],
            Y.iloc[train],
            groups=groups.iloc[train].to_numpy(),
            y_aux=Y_aux.iloc[train].to_numpy(),
        )
    fit_s = time.perf_counter() - t0
    Xt, Yt = X.iloc[test], Y.iloc[test].to_numpy()
    proba = pipe.predict_proba(Xt)

    # each base model of the blend on the test fold, (n_models, n_rows, n_targets):
    # the blend's per-model output, the control rule of the pipeline applied
    blend = pipe.estimator_.named_steps["model"]
    names = list(blend.named_estimators_)
    per_model = pipe.transform(Xt).reshape(len(test), len(names), -1).swapaxes(0, 1)
    prior = np.clip(Y.iloc[train].to_numpy().mean(axis=0), 5e-4, 1 - 5e-4)
    info = dict(
        fold=k,
        n_train=len(train),
        n_test=len(test),
        fit_seconds=fit_s,
        score=mean_columnwise_log_loss(Yt, proba),
        model_scores={
            n: mean_columnwise_log_loss(Yt, per_model[m]) for m, n in enumerate(names)
        },
        prior_score=mean_columnwise_log_loss(Yt, np.tile(prior, (len(test), 1))),
        bayes_score=None,
        weights=dict(zip(names, map(float, blend.weights_))),
        inner_oof_scores=dict(blend.oof_scores_ or {}),
        inner_oof_score=blend.oof_score_,
        target_scores=columnwise_log_loss(Yt, proba).tolist(),
        history={n: _history(e) for n, e in zip(names, blend.estimators_)},
        environment=machine(),  # what computed this fold, and when
        # of the process that fitted this fold (and the folds before it)
        peak_memory_mib=peak_memory_mib(),
    )
    arrays = dict(
        test=np.asarray(test),
        proba=proba,
        y_true=Yt.astype(np.int8),
        per_model=per_model.astype(np.float32),  # the scores above are exact
    )
    folded = _fold_models_proba(pipe, Xt)
    if folded is not None:
        info["fold_models_score"] = mean_columnwise_log_loss(Yt, folded[0])
        info["fold_models_model_scores"] = {
            n: mean_columnwise_log_loss(Yt, folded[m + 1]) for m, n in enumerate(names)
        }
        arrays["fold_models"] = folded.astype(np.float32)
    if settings["save_inner_oof"] and blend.oof_predictions_ is not None:
        # the rows the blend was fitted on (the treated rows of train), in
        # order, and of those the ones its OOF predictions are of
        treated = np.asarray(train)[~pipe.control_mask(X.iloc[train])]
        arrays["inner_rows"] = treated[blend.oof_indices_]
        arrays["inner_oof"] = blend.oof_predictions_.astype(np.float32)
        if blend.cv != "validation":
            # and the refits' predictions on their validation drugs, on
            # which cv="validation" would have chosen the weights
            try:
                rows, held = blend._held_out(blend.estimators_)
            except ValueError:  # a base without them, or no rows in common
                pass
            else:
                arrays["validation_rows"] = treated[rows]
                arrays["validation_oof"] = held.astype(np.float32)
    baseline = _baseline_proba(X, Y, train, test, settings["seed"])
    info["baseline_score"] = mean_columnwise_log_loss(Yt, baseline)
    arrays["baseline"] = baseline.astype(np.float32)
    if truth is not None:
        bayes = truth.iloc[test].to_numpy()
        info["bayes_score"] = mean_columnwise_log_loss(Yt, bayes)
        arrays["bayes"] = bayes
    return arrays, info


def _fold_models_proba(pipe, X):
    """The test rows as ``refit=False`` predicts them, from the same fit.

    ``(n_models + 1, n_rows, n_targets)``: the blend (the fit's weights on
    the fold models' probabilities), then each model's fold models; the
    control rule applied. None when the blend kept no fold models.
    """
    inner = pipe.estimator_
    blend = inner.named_steps["model"]
    if getattr(blend, "fold_models_", None) is None:
        return None
    features = inner[:-1]
    n_blocks = len(blend.fold_models_) + 1

    def treated(Xt):
        P = blend._fold_models_probas(features.transform(Xt))
        return P.swapaxes(0, 1).reshape(len(P[0]), -1)

    out = pipe._treated_and_controls(X, treated, np.tile(pipe._control_row(), n_blocks))
    return out.reshape(len(out), n_blocks, -1).swapaxes(0, 1)


def _baseline_proba(X, Y, train, test, seed):
    """The logistic-regression baseline fitted on ``train``, on ``test``."""
    from .recipes import make_baseline_pipeline

    n_columns = sum(str(c).startswith(("g-", "c-")) for c in X.columns)
    model = make_baseline_pipeline(
        n_components=max(1, min(100, n_columns)), random_state=seed
    )
    with warnings.catch_warnings():
        # a target without positives in the training part: predicted clip[0]
        warnings.filterwarnings("ignore", message="Label .* is present in all")
        model.fit(X.iloc[train], Y.iloc[train])
    return model.predict_proba(X.iloc[test])


def _fold_paths(cvdir, k):
    return cvdir / f"fold_{k}.npz", cvdir / f"fold_{k}.json"


def _read_fold(cvdir, k):
    """The saved results of fold k, or None when it is not finished."""
    npz, js = _fold_paths(cvdir, k)
    if not (npz.is_file() and js.is_file()):
        return None
    try:
        with np.load(npz, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        info = json.loads(js.read_text())
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(
            f"{str(npz)!r} or {str(js)!r} cannot be read ({e}); delete both to "
            "recompute that fold."
        ) from None
    return arrays, info


def _checked_start(args, writable_output):
    """Settings, models, output and data of cv and fit, checked in that order.

    Every setting and the data folder are checked before the output is
    created (``writable_output(path)`` checks it can be written).
    """
    settings = _settings(args)
    names = _check_settings(settings)  # before anything is written
    _check_data_folder(args.folder)
    output = writable_output(args.output)
    return settings, names, output, _load(args.folder)


def _cmd_cv(args):
    settings, names, cvdir, moa = _checked_start(
        args, lambda path: _writable_folder(path, "output")
    )
    truth = _load_truth(args.folder, moa.data.index)
    for stale in cvdir.glob("*.tmp*"):
        stale.unlink()
    config = _cv_config(settings, names, moa, args.folder)
    _resume_or_start(cvdir, config)
    results = _cv_folds(cvdir, moa, settings, names, truth)
    summary = _summarise(results, moa, cvdir, config)
    line = f"CV log loss {summary['score']:.5f} (prior {summary['prior_score']:.5f}"
    if summary["baseline_score"] is not None:
        line += f", logistic baseline {summary['baseline_score']:.5f}"
    if summary["bayes_score"] is not None:
        line += f", Bayes {summary['bayes_score']:.5f}"
    _log(line + f") -> {str(cvdir / 'cv_summary.json')!r}")
    return 0


# parameters of the built recipe that do not change what it learns
_RUN_PARAMS = ("n_jobs", "n_threads", "verbose", "device")


def _plain(value):
    """Whether ``value`` is a JSON-like leaf (numbers, strings, None, and
    lists, tuples and dicts of them): not an estimator or a callable."""
    if value is None or isinstance(value, (bool, int, float, str, np.number)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _recipe_params(settings, names):
    """The built recipe's parameters that its results depend on, defaults
    included (JSON values): a CV run resumed by a moa-sklearn whose defaults
    changed is told apart from one at the same defaults."""
    import sklearn

    with sklearn.config_context(enable_metadata_routing=True):
        params = _build_pipeline(settings, names).get_params(deep=True)
    kept = {
        k: v
        for k, v in params.items()
        if k.rsplit("__", 1)[-1] not in _RUN_PARAMS and _plain(v)
    }
    return json.loads(json.dumps(kept, default=_json_default))


def _cv_config(settings, names, moa, folder):
    """The settings that a CV run's results depend on, the recipe's
    parameters they make, and its data (JSON)."""
    config = {k: settings[k] for k in _RESULT_KEYS}
    config["recipe"] = _recipe_params(settings, names)
    config["data"] = _data_fingerprint(moa)
    config["data_files"] = _data_digests(folder)
    return json.loads(json.dumps(config, default=_json_default))


def _resume_or_start(cvdir, config):
    """Write ``config.json``, or check that the run in ``cvdir`` has ``config``."""
    config_path = cvdir / "config.json"
    if not config_path.is_file():
        _write_json(
            config_path,
            dict(format=CV_FORMAT, version=__version__, settings=config),
        )
        return
    old = _read_json(config_path, "CV settings file")
    old_config = old.get("settings") if isinstance(old, dict) else None
    if old_config != config:
        old_config = old_config if isinstance(old_config, dict) else {}
        differ = sorted(
            k
            for k in set(config) | set(old_config)
            if config.get(k) != old_config.get(k)
        )
        recipe = ""
        if "recipe" in differ:
            old_recipe = old_config.get("recipe") or {}
            params = sorted(
                k
                for k in set(config["recipe"]) | set(old_recipe)
                if config["recipe"].get(k) != old_recipe.get(k)
            )
            recipe = (
                "; the recipe's parameters differ, as when another version of "
                "moa-sklearn changed a default"
                + (
                    f": {', '.join(params[:5])}"
                    + (f" and {len(params) - 5} more" if len(params) > 5 else "")
                    if old_recipe
                    else " (the run did not record them)"
                )
            )
        raise CLIError(
            f"{str(cvdir)!r} holds a CV run with other settings (differing: "
            f"{', '.join(differ)}{recipe}); resume it with the same settings "
            "and data, or write to another folder with -o."
        )


def _cv_folds(cvdir, moa, settings, names, truth):
    """Every fold's (arrays, info): loaded when saved, else fitted and saved."""
    n_folds = settings["folds"]
    splitter = _protocol_splitter(settings["protocol"], n_folds, settings["seed"])
    folds = list(splitter.split(moa.data, moa.target.to_numpy(), moa.groups.to_numpy()))
    results = []
    bar = progress_bar(
        n_folds, "CV folds", settings["verbose"], unit="fold", leave=True
    )
    with bar:
        for k, (train, test) in enumerate(folds):
            saved = _read_fold(cvdir, k)
            if saved is not None:
                _log(
                    f"fold {k + 1}/{n_folds}: loaded (log loss {saved[1]['score']:.5f})"
                )
            else:
                _log(f"fold {k + 1}/{n_folds}: fitting {len(train)} rows ...")
                saved = _fit_fold(k, train, test, moa, settings, names, truth)
                _save_fold(cvdir, k, *saved)
                _log(f"fold {k + 1}/{n_folds}: {_fold_line(saved[1])}")
            bar.update(1)
            results.append(saved)
    return results


def _save_fold(cvdir, k, arrays, info):
    npz, js = _fold_paths(cvdir, k)
    _atomic_write(npz, lambda f: np.savez(f, **arrays))
    _write_json(js, info)  # written last: marks the fold as finished


def _fold_line(info):
    """A finished fold's scores and time, for the log."""
    models = ", ".join(f"{n} {s:.5f}" for n, s in info["model_scores"].items())
    baseline = info.get("baseline_score")
    if baseline is not None:
        models += f"; logistic baseline {baseline:.5f}"
    return (
        f"log loss {info['score']:.5f} ({models}; prior {info['prior_score']:.5f}) "
        f"in {info['fit_seconds']:.1f} s"
    )


def _oof_score(Y, results, take):
    """The OOF loss of the array ``take(arrays)`` of every fold (None if absent)."""
    from .metrics import mean_columnwise_log_loss

    P = np.full(Y.shape, np.nan)
    for arrays, _ in results:
        fold = take(arrays)
        if fold is None:
            return None
        P[arrays["test"]] = fold
    return mean_columnwise_log_loss(Y, P)


def _summarise(results, moa, cvdir, config):
    from .metrics import columnwise_log_loss, mean_columnwise_log_loss

    n, k = moa.target.shape
    oof = np.full((n, k), np.nan)
    for arrays, _ in results:
        oof[arrays["test"]] = arrays["proba"]
    Y = moa.target.to_numpy()
    infos = [info for _, info in results]
    names = list(infos[0]["model_scores"])
    per_model = {
        name: _oof_score(Y, results, lambda a, m=m: a["per_model"][m])
        for m, name in enumerate(names)
    }
    # the truth's and the baseline's (None where a fold lacks them: no truth
    # folder, or folds of a version without the baseline)
    bayes = _oof_score(Y, results, lambda a: a.get("bayes"))
    baseline = _oof_score(Y, results, lambda a: a.get("baseline"))

    def fold_models(m):  # refit=False's predictions (None in older folds)
        return lambda a: a["fold_models"][m] if "fold_models" in a else None

    summary = dict(
        format=CV_FORMAT,
        version=__version__,
        settings=config,
        n_folds=len(results),
        score=mean_columnwise_log_loss(Y, oof),
        fold_scores=[i["score"] for i in infos],
        model_scores=per_model,
        fold_model_scores=[i["model_scores"] for i in infos],
        # the same fits predicting as refit=False: the mean of the fold models
        fold_models_score=_oof_score(Y, results, fold_models(0)),
        fold_models_model_scores={
            name: _oof_score(Y, results, fold_models(m + 1))
            for m, name in enumerate(names)
        },
        prior_score=float(np.mean([i["prior_score"] for i in infos])),
        baseline_score=baseline,
        bayes_score=bayes,
        weights=[i["weights"] for i in infos],
        target_names=moa.target_names,
        target_scores=columnwise_log_loss(Y, oof).tolist(),
    )
    frame = pd.DataFrame(oof, index=moa.data.index, columns=moa.target_names)
    text = frame.to_csv(index_label="sig_id")
    _atomic_write(cvdir / "oof.csv", lambda f: f.write(text.encode()))
    _write_json(cvdir / "cv_summary.json", summary)
    return summary


# --------------------------------------------------------------------------
# fit and predict
# --------------------------------------------------------------------------


def _cmd_fit(args):
    import joblib
    import sklearn

    settings, names, out, moa = _checked_start(
        args, lambda path: _writable_file(path, "model file")
    )
    _log(f"fitting on {moa.data.shape[0]} rows ({settings['profile']} profile) ...")
    t0 = time.perf_counter()
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = _build_pipeline(settings, names)
        pipe.fit(
            moa.data,
            moa.target,
            groups=moa.groups.to_numpy(),
            y_aux=moa.target_aux.to_numpy(),
        )
    header = dict(
        format=MODEL_FORMAT,
        version=__version__,
        feature_names=list(moa.feature_names),
        target_names=list(moa.target_names),
        settings=json.loads(json.dumps(settings, default=_json_default)),
    )

    def write(f):
        f.write(_MODEL_MAGIC)
        f.write(json.dumps(header, default=_json_default).encode() + b"\n")
        joblib.dump(pipe, f)

    _atomic_write(out, write)
    _log(f"fitted in {time.perf_counter() - t0:.1f} s -> {str(out)!r}")
    return 0


def _not_a_model(path):
    return CLIError(
        f"{str(path)!r} is not a moa-sklearn model file (or it was written by an "
        "incompatible version of moa-sklearn); write one with "
        "`moa-sklearn fit FOLDER -o MODEL`."
    )


def _read_model_header(path):
    """The JSON header of a model file, read without unpickling anything."""
    path = Path(path)
    if not path.is_file():
        raise CLIError(f"model file {str(path)!r} does not exist.")
    try:
        with open(path, "rb") as f:
            magic = f.read(len(_MODEL_MAGIC))
            line = f.readline(1 << 24) if magic == _MODEL_MAGIC else b""
    except OSError as e:
        raise CLIError(
            f"model file {str(path)!r} cannot be read: {_os_reason(e)}."
        ) from None
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    keys = ("format", "version", "feature_names", "target_names")
    if not (
        isinstance(header, dict)
        and header.get("format") == MODEL_FORMAT
        and all(k in header for k in keys)
    ):
        raise _not_a_model(path)
    return header


def _load_pipeline(path):
    """The fitted pipeline of a model file (unpickles it: imports the engines)."""
    import joblib

    try:
        with open(path, "rb") as f:
            f.read(len(_MODEL_MAGIC))
            f.readline(1 << 24)
            pipeline = joblib.load(f)
    except ImportError as e:
        raise CLIError(
            f"the model {str(path)!r} needs an engine that cannot be imported "
            f"here ({e})."
        ) from None
    except OSError as e:
        raise CLIError(
            f"model file {str(path)!r} cannot be read: {_os_reason(e)}."
        ) from None
    except Exception:  # any unpickling failure: a damaged or foreign file
        raise _not_a_model(path) from None
    if not hasattr(pipeline, "predict_proba"):
        raise _not_a_model(path)
    return pipeline


def _cmd_predict(args):
    from .datasets import TEST_FEATURES, _read_csv

    header = _read_model_header(args.model)
    folder = Path(args.folder)
    if not folder.exists():
        raise CLIError(f"data folder {str(folder)!r} does not exist.")
    out = _writable_file(args.output, "output")
    if folder.is_file():
        folder, name = folder.parent, folder.name
    else:
        name = TEST_FEATURES
    test = _read_csv(folder, name)
    _check_test_columns(name, list(test.columns), header["feature_names"])
    if header.get("version") != __version__:
        _log(
            f"warning: the model was written by moa-sklearn {header.get('version')}, "
            f"this is {__version__}."
        )
    targets = header["target_names"]
    order = _submission_order(folder, name, test, targets)
    # every check done: now unpickle the nets (imports their engines)
    proba = _load_pipeline(args.model).predict_proba(test)
    submission = pd.DataFrame(proba, index=test.index, columns=targets)
    if order is not None:
        submission = submission.loc[order.index, list(order.columns)]
    text = submission.to_csv(index_label="sig_id")
    _atomic_write(out, lambda f: f.write(text.encode()))
    _log(f"wrote {submission.shape[0]} rows x {submission.shape[1]} targets -> {out}")
    _score_against_truth(folder, name, submission)
    return 0


def _check_test_columns(name, columns, expected):
    """The features file has the columns the model was fitted on, in order."""
    if columns == expected:
        return
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    if missing or extra:
        detail = f"missing {missing[:5]}, unexpected {extra[:5]}"
    else:
        detail = "same columns in another order"
    raise CLIError(
        f"{name}: its columns differ from those the model was fitted on "
        f"({detail}; {len(columns)} columns, expected {len(expected)})."
    )


def _submission_order(folder, name, test, targets):
    """``sample_submission.csv`` beside the test features (checked), or None."""
    from .datasets import SAMPLE_SUBMISSION, TEST_FEATURES, _read_csv

    if name != TEST_FEATURES or not (folder / SAMPLE_SUBMISSION).is_file():
        return None
    order = _read_csv(folder, SAMPLE_SUBMISSION)
    if sorted(order.columns) != sorted(targets):
        raise CLIError(
            f"{SAMPLE_SUBMISSION}: its target columns differ from the model's."
        )
    if set(order.index) != set(test.index) or len(order) != len(test):
        raise CLIError(f"{SAMPLE_SUBMISSION}: its sig_id values differ from {name}'s.")
    return order


def _score_against_truth(folder, name, submission):
    """Log the test loss when make-data wrote the test truth beside the data."""
    from .datasets import TEST_FEATURES
    from .metrics import mean_columnwise_log_loss

    truth = Path(folder) / TRUTH_FOLDER
    targets = truth / "test_targets_scored.csv"
    if name != TEST_FEATURES or not targets.is_file():
        return
    Y = pd.read_csv(targets, index_col="sig_id")
    if set(Y.index) != set(submission.index) or set(Y.columns) != set(
        submission.columns
    ):
        return
    Y = Y.loc[submission.index, list(submission.columns)]
    line = f"test log loss {mean_columnwise_log_loss(Y, submission):.5f}"
    bayes = truth / "test_bayes_proba.csv"
    if bayes.is_file():
        B = pd.read_csv(bayes, index_col="sig_id").loc[Y.index, list(Y.columns)]
        line += f" (Bayes {mean_columnwise_log_loss(Y, B):.5f})"
    _log(line + f", from the truth in {str(truth)!r}")


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def _cmd_report(args):
    from ._report import write_report

    cvdir = Path(args.cvdir)
    if not cvdir.is_dir():
        raise CLIError(f"CV folder {str(cvdir)!r} does not exist.")
    config = _read_json(cvdir / "config.json", "CV settings file")
    out = Path(args.output) if args.output else cvdir / "report.html"
    if out.suffix.lower() not in (".html", ".htm"):
        raise CLIError(
            f"report {str(out)!r}: the report is HTML (with SVG plots, no "
            "plotting library needed); name it *.html."
        )
    _writable_file(out, "report")
    n_folds = config.get("settings", {}).get("folds")
    folds = []
    for k in range(n_folds or 0):
        saved = _read_fold(cvdir, k)
        if saved is not None:
            folds.append(saved)
    if not folds:
        raise CLIError(f"{str(cvdir)!r} holds no finished fold; run `cv` first.")
    summary_path = cvdir / "cv_summary.json"
    summary = _read_json(summary_path, "CV summary") if summary_path.is_file() else None
    html = write_report(folds, n_folds, summary, config=config, cvdir=cvdir)
    _atomic_write(out, lambda f: f.write(html.encode()))
    _log(f"report of {len(folds)}/{n_folds} folds -> {str(out)!r}")
    return 0


# --------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------


def _model_list(value):
    """``--models twostep,keras``: the names, split at commas."""
    names = [m.strip() for m in value.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(
            f"{value!r}: give model names separated by commas, e.g. twostep,keras"
        )
    return names


def _int_or(word):
    """An argparse type: an int, or ``word`` (``--inner-folds K|validation``,
    ``--n-jobs N|auto``)."""

    def parse(value):
        if value == word:
            return value
        try:
            return int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"an int or {word!r}, not {value!r}"
            ) from None

    parse.__name__ = f"int or {word!r}"  # argparse's name for it
    return parse


def _add_settings(p):
    g = p.add_argument_group("settings (flags override --config)")
    g.add_argument("--config", metavar="FILE", help="JSON file of settings")
    g.add_argument(
        "--profile",
        choices=("quick", "full"),
        help="quick: small nets, few epochs; full: the recipe (default: quick)",
    )
    g.add_argument(
        "--models",
        type=_model_list,
        action="extend",
        metavar="M[,M...]",
        help=f"the blend's models, comma-separated, among {', '.join(ENGINES)}; "
        "or auto (default: the installed ones)",
    )
    g.add_argument("--seed", type=int, help="random seed (default: 0)")
    g.add_argument(
        "--n-jobs",
        type=_int_or("auto"),
        metavar="N",
        help="parallel fits of the blend, each net's threads sharing the cores; "
        "or auto (default): every core for the full profile, 1 for quick",
    )
    g.add_argument(
        "--device", help="auto (default: CUDA when available), cpu, cuda, cuda:N"
    )
    g.add_argument(
        "--inner-folds",
        type=_int_or("validation"),
        metavar="K",
        help="inner CV folds of the blend, or 'validation': weights chosen on "
        "the nets' own validation drugs, one fit per net (default: quick 3, "
        "full validation)",
    )
    out = g.add_mutually_exclusive_group()
    out.add_argument(
        "-v",
        "--verbose",
        action="store_const",
        const=2,
        help="also print the nets' per-epoch logs",
    )
    out.add_argument(
        "-q",
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        help="no progress bars (default: progress bars of folds, model fits and "
        "epochs, with the time left, when standard error is a terminal)",
    )


def _parser():
    parser = argparse.ArgumentParser(
        prog="moa-sklearn",
        description="The lish-moa recipe from the command line.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in (
        _make_data_parser,
        _cv_parser,
        _fit_parser,
        _predict_parser,
        _report_parser,
    ):
        add_parser(sub)
    return parser


# the subcommands: help line (in the list of commands) and description
_COMMANDS = {
    "make-data": (
        "write a synthetic make_moa world in the Kaggle layout",
        "Write a make_moa world to FOLDER in the Kaggle layout, "
        "with its Bayes-optimal probabilities in FOLDER/truth/ (bayes_proba.csv, "
        "test_bayes_proba.csv, test_targets_scored.csv). The defaults are "
        "lish-moa's full size (23,814 training rows; the main job of the "
        "README uses --n-samples 3000 --n-test 500).",
    ),
    "cv": (
        "drug-grouped CV of the pipeline (resumable)",
        "Drug-grouped K-fold CV of make_moa_pipeline on FOLDER. "
        "Per-fold results go to CVDIR as they finish; run the same command "
        "again to resume an interrupted run. Every setting is checked before "
        "anything is written.",
    ),
    "fit": (
        "fit the pipeline on all training rows",
        "Fit make_moa_pipeline on FOLDER's training files and save it.",
    ),
    "predict": (
        "write a submission (sig_id + one column per target)",
        "Predict FOLDER/test_features.csv (or a features CSV file) "
        "with a model written by `fit`; rows and columns follow "
        "FOLDER/sample_submission.csv when present. Model files are pickles: "
        "load only files you trust.",
    ),
    "report": (
        "an HTML report of a CV run",
        "Write an HTML report (inline SVG plots) of the CV run in "
        "CVDIR: scores, per-target log loss, calibration of the OOF "
        "predictions, blend weights, the nets' learning curves, and what "
        "produced it (settings, versions, machine, data files).",
    ),
}


def _subparser(sub, name, **kwargs):
    help_line, description = _COMMANDS[name]
    return sub.add_parser(name, help=help_line, description=description, **kwargs)


# make-data's options (each a keyword argument of make_moa): flag, type,
# default, metavar, help
_MAKE_DATA_OPTIONS = (
    ("--n-samples", int, 23814, "N", "training rows"),
    ("--n-test", int, 3982, "N", "test rows (0: none)"),
    ("--n-genes", int, 772, "N", "gene columns g-*"),
    ("--n-cells", int, 100, "N", "cell columns c-*"),
    ("--n-scored", int, 206, "N", "scored targets"),
    ("--n-nonscored", int, 402, "N", "nonscored (auxiliary) targets"),
    (
        "--signal",
        float,
        1.3,
        "S",
        "strength of the MoA effects (larger: easier to predict)",
    ),
    ("--opposed-modes", float, 0.3, "A", "how far a MoA's two modes oppose (0-1)"),
    ("--variance-effect", float, 0.4, "V", "spread of a MoA's drugs on its own axis"),
    ("--time-interaction", float, 0.3, "T", "effect whose sign flips with cp_time"),
)


def _make_data_parser(sub):
    p = _subparser(
        sub, "make-data", formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("folder", metavar="FOLDER", help="folder to write (created)")
    for flag, kind, default, metavar, what in _MAKE_DATA_OPTIONS:
        p.add_argument(flag, type=kind, default=default, metavar=metavar, help=what)
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.set_defaults(func=_cmd_make_data)


def _add_data_folder(p):
    p.add_argument("folder", metavar="FOLDER", help="data folder (Kaggle layout)")


def _add_output(p, metavar, what, **kwargs):
    p.add_argument("-o", "--output", metavar=metavar, help=what, **kwargs)


def _cv_parser(sub):
    p = _subparser(sub, "cv")
    _add_data_folder(p)
    _add_output(
        p,
        "CVDIR",
        "folder of the results (created; resumed when it holds a run)",
        required=True,
    )
    p.add_argument("--folds", type=int, metavar="K", help="outer folds (default: 5)")
    p.add_argument(
        "--protocol",
        choices=list(_PROTOCOLS),
        help="new-compound: every drug held out whole (what predicting a new "
        "compound needs; the default); kaggle: the competition's scheme, the "
        "control vehicle and the large drugs split by row",
    )
    _add_settings(p)
    p.set_defaults(func=_cmd_cv)


def _fit_parser(sub):
    p = _subparser(sub, "fit")
    _add_data_folder(p)
    _add_output(p, "MODEL", "model file to write (e.g. model.joblib)", required=True)
    _add_settings(p)
    p.set_defaults(func=_cmd_fit)


def _predict_parser(sub):
    p = _subparser(sub, "predict")
    p.add_argument("model", metavar="MODEL", help="model file written by `fit`")
    p.add_argument(
        "folder",
        metavar="FOLDER",
        help="data folder (its test_features.csv) or a features CSV file",
    )
    _add_output(
        p,
        "CSV",
        "submission file to write (default: submission.csv)",
        default="submission.csv",
    )
    p.set_defaults(func=_cmd_predict)


def _report_parser(sub):
    p = _subparser(sub, "report")
    p.add_argument("cvdir", metavar="CVDIR", help="folder written by `cv`")
    _add_output(p, "HTML", "report to write (default: CVDIR/report.html)")
    p.set_defaults(func=_cmd_report)


def _after_interrupt(args):
    """What an interrupted command left behind (every file is written whole)."""
    if args.command == "cv":
        return (
            "finished folds are saved, the fold being fitted is not; run the "
            "same command again to resume."
        )
    if args.command == "make-data":
        return "the files written so far are whole; run it again to write all."
    return "no output was written (an existing file is left as it was)."


def main(argv=None):
    """Run the ``moa-sklearn`` command; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print(f"moa-sklearn: interrupted; {_after_interrupt(args)}", file=sys.stderr)
        return 130
    except (CLIError, OSError, ValueError, ImportError) as e:
        if args.debug:
            raise
        print(f"moa-sklearn: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
