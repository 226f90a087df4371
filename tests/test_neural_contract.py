"""The contract that every net of moa_sklearn.neural keeps, written once.

As imbalanced-learn's ``utils/estimator_checks.py`` does for its samplers,
each test here runs on every engine: the two-step PyTorch net, the Keras net
and TabNet, each at a tiny and fast configuration (the ``engine`` fixture);
an engine that is not installed is skipped. The base's own behaviour (its
target reader, inner split, validation) is tested on the cheapest engine.
What one engine alone does is tested in its own file (test_neural.py,
test_neural_keras.py, test_neural_tabnet.py).
"""

import pickle
import random
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from _neural_engines import ENGINES, engine_twostep
from scipy.special import logit
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moa_sklearn.metrics import mean_columnwise_log_loss, neg_mean_columnwise_log_loss
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold
from moa_sklearn.neural import BaseMultilabelNet
from moa_sklearn.neural._base import _inner_validation_split

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)


# every engine names these alike; a bad value is an error naming it
COMMON_BAD_PARAMS = [
    (dict(batch_size=0), "batch_size"),
    (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(label_smoothing=-0.1), "label_smoothing"),
    (dict(clip=(0.9, 0.1)), "clip"),
    (dict(clip="tight"), "clip"),
    (dict(n_seeds=0), "n_seeds"),
    (dict(validation_fraction=1.0), "validation_fraction"),
    (dict(n_threads=0), "n_threads"),
    (dict(verbose=-1), "verbose"),
    (dict(random_state="seed"), "random_state"),
    (dict(device="tpu"), "device"),
]


@pytest.fixture(scope="module", params=list(ENGINES))
def engine(request):
    return ENGINES[request.param]()


@pytest.fixture(scope="module")
def twostep():
    """The cheapest engine, for the base's own behaviour."""
    return engine_twostep()


@pytest.fixture(scope="module")
def fitted(engine, net_data):
    """One tiny net of the engine fitted on the 4 labels and y_aux."""
    X, Y, Y_aux, _ = net_data
    return engine.make().fit(X, Y, y_aux=Y_aux)


def _steps(hist):
    """The columns that identify one training run in a history."""
    return ["seed", "step"] if "step" in hist else ["seed"]


def _log_loss(Y, proba):
    return np.mean(-(Y * np.log(proba) + (1 - Y) * np.log1p(-proba)))


# ----------------------------------------------------------------- imports
def _run_python(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_neural_imports_no_engine():
    res = _run_python(
        """
        import sys
        import moa_sklearn, moa_sklearn.neural
        for name in ("torch", "skorch", "pytorch_tabnet", "keras", "tensorflow"):
            assert name not in sys.modules, name + " imported"
        print("ok")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_missing_engines_give_clear_import_errors():
    res = _run_python(
        """
        import sys
        blocked = ("torch", "skorch", "pytorch_tabnet", "keras", "tensorflow")
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        import moa_sklearn.neural as neural
        for name in ("TwoStepNetClassifier", "KerasNetClassifier",
                     "TabNetMultilabelClassifier"):
            try:
                getattr(neural, name)
            except ImportError as exc:
                print("ERR", name, exc)
        """
    )
    assert res.returncode == 0, res.stderr
    errors = dict(
        line.split(" ", 2)[1:] for line in res.stdout.splitlines() if line[:3] == "ERR"
    )
    assert 'pip install "moa-sklearn[torch]"' in errors["TwoStepNetClassifier"]
    keras_error = errors["KerasNetClassifier"]
    assert 'pip install "moa-sklearn[keras]"' in keras_error
    assert "KerasNetClassifier" in keras_error
    tabnet_error = errors["TabNetMultilabelClassifier"]
    assert 'pip install "moa-sklearn[torch]"' in tabnet_error
    assert "pytorch-tabnet" in tabnet_error


def test_base_is_abstract_and_public():
    import moa_sklearn.neural as neural

    assert "TwoStepNetClassifier" in neural.__all__
    with pytest.raises(TypeError):
        BaseMultilabelNet()


# ------------------------------------------------------------ the contract
def test_multilabel_fit_predict(engine, net_data, fitted):
    X, Y, _, _ = net_data
    proba = fitted.predict_proba(X)
    assert proba.shape == Y.shape and proba.dtype == np.float64
    low, high = engine.cls().clip  # the default clip
    assert proba.min() >= low and proba.max() <= high
    pred = fitted.predict(X)
    assert pred.shape == Y.shape and pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(Y.dtype))
    np.testing.assert_array_equal(fitted.classes_, np.arange(4))
    assert fitted.n_labels_ == 4 and fitted.n_features_in_ == X.shape[1]
    assert fitted.n_aux_ == 3
    assert fitted.device_ == "cpu"
    assert isinstance(fitted.model_, engine.model_type)
    assert fitted.model_ is fitted.models_[0]
    assert engine.n_outputs(fitted.model_) == 4


def test_single_label_matrix(engine, net_data):
    X, Y, _, _ = net_data
    net = engine.make()
    assert net.fit(X, Y[:, :1]) is net
    assert net.predict_proba(X).shape == (len(X), 1)
    assert net.predict(X).shape == (len(X), 1)
    np.testing.assert_array_equal(net.classes_, [0])


def test_one_d_binary_and_multiclass_targets(engine, net_data):
    X, Y, _, _ = net_data
    y = np.where(Y[:, 0] == 1, "active", "inactive")
    net = engine.make().fit(X, y)
    np.testing.assert_array_equal(net.classes_, ["active", "inactive"])
    assert net.n_labels_ == 1  # one sigmoid output: the positive class
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(
        net.predict(X), net.classes_[np.argmax(proba, axis=1)]
    )
    y = Y[:, 0] + 2 * Y[:, 1]  # classes 0..3
    net = engine.make().fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), np.unique(y).size)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(net.predict(X)) <= set(np.unique(y))


def test_probabilities_clipped_and_strictly_inside(engine, net_data, fitted):
    X, Y, _, _ = net_data
    net = pickle.loads(pickle.dumps(fitted)).set_params(clip=(0.01, 0.99))
    proba = net.predict_proba(X)
    assert proba.min() >= 0.01 and proba.max() <= 0.99
    # clip=None: still strictly inside (0, 1), even for saturated outputs
    net = engine.make(clip=None, **engine.saturate).fit(X * 50, Y)
    proba = net.predict_proba(X * 50)
    assert np.all(proba > 0) and np.all(proba < 1)


def test_predictions_do_not_depend_on_the_batch(engine, net_data, fitted):
    if engine.cls.__name__ == "TwoStepNetClassifier":
        pytest.skip("the two-step net predicts in float32: not guaranteed")
    X, _, _, _ = net_data
    full = fitted.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba(X[:7]), full[:7], rtol=1e-12)
    order = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), full[order], rtol=1e-12)


def test_untrained_net_predicts_the_prevalence(engine):
    # with a learning rate of ~0 nothing is learned: the output layer's bias
    # starts at the logit of each label's training prevalence, so the output
    # is the prior (0.5 without that bias)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6))
    Y = (rng.uniform(size=(400, 3)) < [0.02, 0.1, 0.4]).astype(int)
    net = engine.make(clip=None, validation_fraction=None, **engine.untrained).fit(X, Y)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(
        proba.mean(axis=0), Y.mean(axis=0), rtol=0.3, atol=engine.prior_atol
    )
    assert np.all(np.abs(logit(proba.mean(axis=0)) - logit(Y.mean(axis=0))) < 1)


def test_label_smoothing_and_a_label_without_positives(engine, net_data):
    X, Y, _, _ = net_data
    spy = _spy(engine)
    params = engine.params(**engine.long, clip=None)
    sharp = spy(**params, label_smoothing=0.0).fit(X, Y)
    smooth = spy(**params, label_smoothing=0.5).fit(X, Y)
    assert spy.calls[0]["Y_range"] == (0.0, 1.0)
    assert spy.calls[1]["Y_range"] == (0.25, 0.75)  # y * (1 - s) + 0.5 * s
    # trained towards 0.25 / 0.75 instead of 0 / 1, the probabilities
    # saturate less (on average: |p - 0.5| is at most 0.25 at the optimum)
    sharp, smooth = sharp.predict_proba(X), smooth.predict_proba(X)
    spread_sharp, spread_smooth = np.abs(sharp - 0.5), np.abs(smooth - 0.5)
    assert spread_smooth.mean() < 0.75 * spread_sharp.mean()
    assert spread_smooth.mean() < 0.25
    # the label without positives is predicted near zero
    assert Y[:, 3].sum() == 0
    assert np.isfinite(sharp).all()
    assert sharp[:, 3].max() < sharp[:, :3].max()
    assert sharp[:, 3].mean() < 0.05


def test_dataframes_keep_names(engine, net_data):
    X, Y, Y_aux, _ = net_data
    Xf = pd.DataFrame(X, columns=[f"g-{i}" for i in range(X.shape[1])])
    Yf = pd.DataFrame(Y, columns=["a", "b", "c", "d"])
    net = engine.make().fit(Xf, Yf, y_aux=pd.DataFrame(Y_aux))
    np.testing.assert_array_equal(net.feature_names_in_, Xf.columns)
    np.testing.assert_array_equal(net.target_names_, Yf.columns)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(net.predict_proba(Xf), net.predict_proba(X))


# ------------------------------------------------------------ determinism
def _seed_globals(seed):
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)


def _global_draws():
    """A draw of every global generator that an engine could touch."""
    draws = [random.random(), np.random.rand()]  # noqa: NPY002
    if "torch" in sys.modules:
        draws.append(sys.modules["torch"].rand(3).tolist())
    return draws


def _torch_threads():
    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_num_threads()


def test_same_random_state_same_predictions(engine, net_data, fitted):
    X, Y, Y_aux, groups = net_data
    threads = _torch_threads()
    _seed_globals(5)
    expected = _global_draws()
    _seed_globals(5)
    again = engine.make().fit(X, Y, y_aux=Y_aux)
    # fit leaves the global random states (and torch's threads) alone
    assert _global_draws() == expected
    assert _torch_threads() == threads
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    other = engine.make(random_state=1).fit(X, Y, y_aux=Y_aux, groups=groups)
    assert not np.allclose(other.predict_proba(X), fitted.predict_proba(X))


def test_n_seeds_averages_the_seed_models(engine, net_data, fitted):
    X, Y, Y_aux, _ = net_data
    two = engine.make(clip=None, n_seeds=2).fit(X, Y, y_aux=Y_aux)
    assert len(two.models_) == 2 and len(two.seeds_) == 2
    Xf = X.astype(np.float32)
    per_model = [two._predict_proba_one(m, Xf) for m in two.models_]
    assert not np.allclose(per_model[0], per_model[1])
    np.testing.assert_allclose(two.predict_proba(X), np.mean(per_model, axis=0))
    # the first seed's model is the single-seed model
    assert two.seeds_[0] == fitted.seeds_[0]
    single = fitted._predict_proba_one(fitted.model_, Xf)
    np.testing.assert_allclose(per_model[0], single, atol=1e-12)
    hist = pd.DataFrame(two.history_)
    assert set(hist["seed"]) == {0, 1}
    assert hist.groupby(_steps(hist))["best"].sum().eq(1).all()


def test_validation_predictions_are_those_of_the_seeds_that_held_out(engine, net_data):
    X, Y, Y_aux, groups = net_data
    net = engine.make(clip=None, n_seeds=2, validation_fraction=0.2)
    net.fit(X, Y, y_aux=Y_aux, groups=groups)
    Xf = X.astype(np.float32)
    held = [_inner_validation_split(Y, groups, 0.2, int(s))[1] for s in net.seeds_]
    rows = net.validation_indices_
    np.testing.assert_array_equal(rows, np.union1d(*held))
    assert not set(groups[rows]) & set(np.delete(groups, rows))  # whole drugs
    expected = np.zeros((len(X), Y.shape[1]))
    count = np.zeros(len(X))
    for model, valid in zip(net.models_, held):
        expected[valid] += net._predict_proba_one(model, Xf[valid])
        count[valid] += 1
    np.testing.assert_allclose(
        net.validation_proba_, expected[rows] / count[rows, None], atol=1e-12
    )
    # a row held out by one seed only: that seed's model alone, which did
    # not train on it (not the mean of both, as predict_proba gives)
    once = np.flatnonzero(count[rows] == 1)
    assert once.size and not np.allclose(
        net.validation_proba_[once], net.predict_proba(X[rows[once]])
    )
    # one seed: predict_proba of the held-out rows, clipped as it clips
    # predict_proba's format: a 1-D binary target has two columns
    for y in (Y, Y[:, 0]):
        one = engine.make(validation_fraction=0.2).fit(X, y, groups=groups)
        np.testing.assert_allclose(
            one.validation_proba_,
            one.predict_proba(X[one.validation_indices_]),
            atol=1e-12,
        )
    assert one.validation_proba_.shape == (one.validation_indices_.size, 2)


# ------------------------------------------------------------ persistence
def test_pickle_and_joblib_round_trip(engine, net_data, fitted, tmp_path):
    X, _, _, _ = net_data
    expected = fitted.predict_proba(X)
    _seed_globals(7)
    before = _global_draws()
    _seed_globals(7)
    again = pickle.loads(pickle.dumps(fitted))
    assert _global_draws() == before  # loading seeds nothing
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    assert isinstance(again.models_[0], engine.model_type)
    path = tmp_path / "net.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)
    # the pickle holds plain data (bytes, arrays), no engine object
    for payload in fitted.__getstate__()["models_"]:
        engine.check_payload(payload)
    assert isinstance(fitted.models_[0], engine.model_type)  # left as it was


def test_gpu_trained_model_loads_on_cpu(engine, net_data, fitted, monkeypatch):
    X, _, _, _ = net_data
    net = pickle.loads(pickle.dumps(fitted))
    net.device_ = engine.gpu_device  # as if trained on a GPU
    blob = pickle.dumps(net)
    loads = engine.no_gpu(monkeypatch)
    again = pickle.loads(blob)
    assert engine.loaded_device(again) == "cpu"
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    if loads is not None:  # torch: weights only, mapped to the CPU
        assert loads and all(c.get("weights_only") is True for c in loads)
        assert all(c.get("map_location") == "cpu" for c in loads)


def test_gpu_without_gpu_is_a_clear_error(engine, net_data, monkeypatch):
    X, Y, _, _ = net_data
    engine.no_gpu(monkeypatch)
    with pytest.raises(ValueError, match=engine.no_gpu_match):
        engine.make(device="cuda").fit(X, Y)
    assert engine.make(device="auto", **engine.epochs(1)).fit(X, Y).device_ == "cpu"


# ------------------------------------------------ training: best epoch, history
def test_best_epoch_is_kept(engine, net_data):
    X, _, _, _ = net_data
    # labels that are noise: the validation loss soon stops improving
    Y = (np.random.RandomState(1).uniform(size=(len(X), 3)) < 0.3).astype(int)
    params = dict(validation_fraction=0.3, label_smoothing=0.0, clip=None)
    net = engine.make(**params, **engine.best_epoch).fit(X, Y)
    hist = pd.DataFrame(net.history_)
    assert hist.groupby(_steps(hist))["best"].sum().eq(1).all()
    loss = hist["valid_loss"].to_numpy()
    best = int(np.flatnonzero(hist["best"])[-1])  # of the last step
    assert best < len(hist) - 1, "pick a seed where it matters"
    if engine.best_index is not None:
        assert best == engine.best_index
    # no earlier epoch is as good; no later one is better by min_delta
    assert (loss[:best] > loss[best]).all()
    assert (loss[best + 1 :] >= loss[best] - getattr(net, "min_delta", 0.0)).all()
    # the kept model's validation loss is the best epoch's, not the last one's
    _, valid = _inner_validation_split(
        Y.astype(np.float32), None, 0.3, int(net.seeds_[0])
    )
    kept = _log_loss(Y[valid], net.predict_proba(X[valid]))
    assert kept == pytest.approx(loss[best], rel=1e-4)
    assert kept != pytest.approx(loss[-1], rel=1e-4)
    if engine.plateau:
        # early stopping: patience epochs after the best one, then stop
        assert len(hist) < net.max_epochs
        assert len(hist) == best + 1 + net.patience
        # ReduceLROnPlateau lowered the learning rate on the plateau
        lr = hist["lr"].to_numpy()
        assert lr[0] == pytest.approx(net.learning_rate)
        assert lr[-1] < lr[0] and (np.diff(lr) <= 0).all()


def test_history_is_a_learning_curve(fitted):
    hist = pd.DataFrame(fitted.history_)
    for col in ("seed", "epoch", "train_loss", "valid_loss", "lr", "best", "dur"):
        assert col in hist
    assert len(hist) == fitted._n_epochs()  # no early stop in so few epochs
    assert hist["train_loss"].notna().all() and hist["valid_loss"].notna().all()


def test_quiet_fit_and_history_without_validation(
    engine, net_data, capsys, progress_bars
):
    X, Y, _, _ = net_data
    params = dict(validation_fraction=None, verbose=1)
    if engine.plateau:
        params["patience"] = 1  # no early stopping without validation
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = engine.make(**params).fit(X, Y)
    # verbose=1 off a terminal: no bar drawn, nothing printed, nothing from
    # the engine's own warnings
    assert capsys.readouterr() == ("", "")
    assert not progress_bars[0].drawn
    noisy = [str(w.filename) for w in caught]
    assert not [f for f in noisy if any(m in f for m in engine.noisy_modules)]
    hist = pd.DataFrame(net.history_)
    assert len(hist) == net._n_epochs()
    assert hist["valid_loss"].isna().all()
    assert net.validation_indices_ is None and net.validation_proba_ is None
    last = hist.groupby(_steps(hist))["epoch"].transform("max")
    assert (hist["best"] == (hist["epoch"] == last)).all()  # the last epoch
    for col in ("seed", "epoch", "train_loss", "lr", "dur"):
        assert hist[col].notna().all()


def test_verbose_2_prints_the_engine_log(engine, net_data, capsys):
    X, Y, _, _ = net_data
    engine.make(verbose=2, **engine.epochs(2)).fit(X, Y)
    assert engine.verbose_log in capsys.readouterr().out


def test_verbose_progress_bar_counts_the_epochs(
    engine, net_data, terminal, progress_bars, capsys
):
    X, Y, Y_aux, _ = net_data
    stream = terminal()
    params = dict(n_seeds=2, verbose=1)
    if engine.plateau:
        params["patience"] = None  # every epoch runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = engine.make(**params).fit(X, Y, y_aux=Y_aux)
    # the bar only: no engine output, no engine warning (with validation)
    assert capsys.readouterr().out == ""
    noisy = [str(w.filename) for w in caught]
    assert not [f for f in noisy if any(m in f for m in engine.noisy_modules)]
    (bar,) = progress_bars
    assert bar.drawn
    epochs = 2 * net._n_epochs()
    assert (bar.total, bar.n) == (epochs, epochs)
    assert f"seed 2/2, {engine.progress_step}train 0." in bar.postfix
    assert "valid 0." in bar.postfix
    assert engine.cls.__name__ in stream.getvalue()


# ------------------------------------------- inner validation and routing
def _spy(engine):
    """A subclass of the engine's net that records what fit and _fit_one get."""
    calls = []

    class _Spy(engine.cls):
        def fit(self, X, y, *, y_aux=None, groups=None):
            calls.append(
                {
                    "n": len(X),
                    "y_aux": None if y_aux is None else np.asarray(y_aux).shape,
                    "groups": None if groups is None else np.asarray(groups).copy(),
                }
            )
            return super().fit(X, y, y_aux=y_aux, groups=groups)

        def _fit_one(self, X, Y, X_valid, Y_valid, **kwargs):
            calls[-1].update(
                Y_range=(float(Y.min()), float(Y.max())),
                train_x0=X[:, 0].copy(),
                valid_x0=None if X_valid is None else X_valid[:, 0].copy(),
            )
            return super()._fit_one(X, Y, X_valid, Y_valid, **kwargs)

    _Spy.calls = calls
    return _Spy


def _row_ids(call, scaler=None):
    """(train, valid) row ids of a spied fit whose X column 0 is the row id."""

    def ids(x0):
        if scaler is not None:  # undo a StandardScaler before the net
            x0 = x0 * scaler.scale_[0] + scaler.mean_[0]
        return np.round(x0).astype(int)

    return ids(call["train_x0"]), ids(call["valid_x0"])


def test_fit_uses_grouped_inner_validation(engine, net_data):
    X, Y, _, groups = net_data
    Xid = np.column_stack([np.arange(len(X)), X])  # column 0: the row id
    spy = _spy(engine)
    spy(**engine.params(validation_fraction=0.2)).fit(Xid, Y, groups=groups)
    train, valid = _row_ids(spy.calls[-1])
    assert valid.size > 0 and train.size + valid.size == len(X)
    assert not set(groups[valid]) & set(groups[train])


def test_routing_grid_search_slices_groups_and_y_aux_per_fold(engine, net_data):
    X, Y, Y_aux, groups = net_data
    Xid = np.column_stack([np.arange(len(X)), X])
    spy = _spy(engine)
    cv = DrugMultilabelStratifiedKFold(2, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        net = spy(**engine.params()).set_fit_request(y_aux=True, groups=True)
        requests = net.get_metadata_routing().fit.requests
        assert requests["y_aux"] is True and requests["groups"] is True
        search = GridSearchCV(
            net,
            {"label_smoothing": [0.0, 0.01]},
            cv=cv,
            scoring=neg_mean_columnwise_log_loss,
        ).fit(Xid, Y, groups=groups, y_aux=Y_aux)
        assert search.predict_proba(Xid).shape == Y.shape
    folds = [train for train, _ in cv.split(Xid, Y, groups)]
    # 2 candidates x 2 folds, then the refit on all rows
    assert len(spy.calls) == 2 * 2 + 1
    for call, fold_train in zip(spy.calls, folds * 2 + [np.arange(len(X))]):
        train, valid = _row_ids(call)
        np.testing.assert_array_equal(np.sort(np.r_[train, valid]), fold_train)
        assert call["n"] == len(fold_train) and call["y_aux"] == (len(fold_train), 3)
        np.testing.assert_array_equal(call["groups"], groups[fold_train])
        # the inner split of each fold is drug-grouped: groups were routed
        assert not set(groups[valid]) & set(groups[train])


def test_routing_off_pipeline_step_params(engine, net_data):
    X, Y, Y_aux, groups = net_data
    Xid = np.column_stack([np.arange(len(X)), X])
    spy = _spy(engine)
    pipe = make_pipeline(
        StandardScaler(), spy(**engine.params(validation_fraction=0.2))
    )
    pipe.fit(Xid, Y, _spy__groups=groups, _spy__y_aux=Y_aux)
    assert spy.calls[-1]["y_aux"] == (len(X), 3) and pipe[-1].n_aux_ == 3
    train, valid = _row_ids(spy.calls[-1], pipe[0])
    assert valid.size > 0 and train.size + valid.size == len(X)
    assert not set(groups[valid]) & set(groups[train])
    # without groups the inner split is by row: drugs straddle it
    pipe.fit(Xid, Y)
    train, valid = _row_ids(spy.calls[-1], pipe[0])
    assert set(groups[valid]) & set(groups[train])
    # cross_validate without routing: step params are sliced per fold, and
    # the net plays with the package's scorer and splitter
    spy.calls.clear()
    scores = cross_validate(
        pipe,
        Xid,
        Y,
        groups=groups,
        params={"_spy__y_aux": Y_aux},
        cv=DrugMultilabelStratifiedKFold(2, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    )["test_score"]
    assert [c["y_aux"][0] for c in spy.calls] == [c["n"] for c in spy.calls]
    assert all(c["n"] < len(X) for c in spy.calls)
    assert scores.shape == (2,) and np.all(scores < 0) and np.isfinite(scores).all()


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_in_X(engine, net_data, fitted, bad):
    X, Y, _, _ = net_data
    Xb = X.copy()
    Xb[3, 2] = bad
    message = r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    with pytest.raises(ValueError, match=message):
        engine.make().fit(Xb, Y)
    with pytest.raises(ValueError, match=message):
        fitted.predict_proba(Xb)


def test_wrong_width_and_non_numeric_columns(engine, net_data, fitted):
    X, Y, _, _ = net_data
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :-1])
    Xf = pd.DataFrame(X, columns=[f"c-{i}" for i in range(X.shape[1])])
    Xf["cp_type"] = "trt_cp"
    with pytest.raises(ValueError, match=r"numeric features.*'cp_type'"):
        engine.make().fit(Xf, Y)
    # the same values as an array (no column names): the columns by index
    with pytest.raises(ValueError, match=r"numeric features.*column\(s\) \[6\]"):
        engine.make().fit(Xf.to_numpy(), Y)
    with pytest.raises(ValueError, match=r"column\(s\) \[5\].*'trt_cp'"):
        fitted.predict_proba(Xf.to_numpy()[:, 1:])


def test_bad_targets_y_aux_groups_and_one_sample(engine, net_data):
    X, Y, Y_aux, groups = net_data
    bad_fits = [
        (dict(y=Y * 2), "0/1 label indicator matrix"),
        (dict(y=Y + 0.5), "0/1 label indicator matrix"),
        (dict(y=np.linspace(0, 1, len(X))), "Unknown label type"),
        (dict(y=np.ones(len(X))), "only one class"),
        (dict(y=Y, y_aux=Y_aux[:-1]), "y_aux has 119 rows"),
        (dict(y=Y, y_aux=Y_aux * 2), "y_aux must contain only 0 and 1"),
        (dict(y=Y, y_aux=np.where(Y_aux == 1, np.nan, 0)), "y_aux contains NaN"),
        (dict(y=Y, groups=groups[:-1]), "groups must be 1-D"),
        (dict(y=Y[:-1]), "inconsistent numbers of samples"),
    ]
    for kwargs, match in bad_fits:
        with pytest.raises(ValueError, match=match):
            engine.make().fit(X, **kwargs)
    with pytest.raises(ValueError, match="n_samples=1"):
        engine.make().fit(X[:1], np.array([[1, 0]]))


def test_bad_params_name_the_parameter(engine, net_data):
    X, Y, _, _ = net_data
    bad = COMMON_BAD_PARAMS + [(engine.epochs(0), "max_epochs")] + engine.bad_params
    for params, name in bad:
        with pytest.raises(ValueError, match=name):
            engine.make(**params).fit(X, Y)


def test_clone_params_and_tags(engine, net_data, fitted):
    X, _, _, _ = net_data
    assert fitted.get_params() == engine.make().get_params()  # fit changes none
    fresh = clone(fitted)
    assert not hasattr(fresh, "models_") and not hasattr(fresh, "model_")
    assert fresh.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        fresh.predict_proba(X)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    tags = fitted.__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags.multi_label and tags.target_tags.multi_output
    assert not tags.input_tags.allow_nan


def test_ctrl_c_during_fit_propagates(engine, net_data, ctrl_c_at_epoch):
    """Ctrl-C during the engine's training loop reaches the caller."""
    X, Y, _, _ = net_data
    ctrl_c_at_epoch(*engine.ctrl_c, at=2)
    net = engine.make(**engine.epochs(50))
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y)
    assert not hasattr(net, "models_")  # nothing half-trained looks fitted


# ------------------------------------------------ the base, on one engine
@pytest.mark.parametrize("n_labels", [2, 4])
def test_multilabel_shapes(twostep, net_data, n_labels):
    X, Y, _, _ = net_data
    net = twostep.make().fit(X, Y[:, :n_labels])
    assert net.predict_proba(X).shape == (len(X), n_labels)
    assert net.n_labels_ == n_labels
    np.testing.assert_array_equal(net.classes_, np.arange(n_labels))
    assert mean_columnwise_log_loss(Y[:, :n_labels], net.predict_proba(X)) > 0


@pytest.mark.parametrize("dtype", [bool, np.float32, np.int32])
def test_predict_keeps_y_dtype(twostep, net_data, dtype):
    X, Y, _, _ = net_data
    pred = twostep.make().fit(X, Y.astype(dtype)).predict(X)
    assert pred.dtype == np.dtype(dtype)


def test_column_vector_of_classes_is_read_as_1d(twostep, net_data):
    X, Y, _, _ = net_data
    y = (Y[:, 0] + 2 * Y[:, 1]).reshape(-1, 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = twostep.make().fit(X, y)
    conversions = [
        w
        for w in caught
        if issubclass(w.category, sklearn.exceptions.DataConversionWarning)
    ]
    assert len(conversions) == 1  # y is read once
    assert net.predict(X).shape == (len(X),)


def test_refit_on_an_array_drops_the_names_of_a_dataframe_y(twostep, net_data):
    X, Y, _, _ = net_data
    net = twostep.make().fit(X, pd.DataFrame(Y, columns=["a", "b", "c", "d"]))
    assert hasattr(net, "target_names_")
    assert not hasattr(net.fit(X, Y), "target_names_")


def test_nan_in_y_names_the_column(twostep, net_data):
    X, Y, _, _ = net_data
    Yf = pd.DataFrame(Y.astype(float), columns=["w", "x", "y", "z"])
    Yf.iloc[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN in column\(s\) \['y'\]"):
        twostep.make().fit(X, Yf)
    with pytest.raises(ValueError, match=r"y contains NaN in column\(s\) \[2\]"):
        twostep.make().fit(X, Yf.to_numpy())


def test_probability_of_exactly_one_half_predicts_zero(engine, net_data, fitted):
    """A zero logit gives exactly 0.5: predict is proba > 0.5, so it agrees
    with predict_proba().round() on such ties."""
    X, Y, _, _ = net_data
    net = pickle.loads(pickle.dumps(fitted))
    net.predict_proba = lambda X: np.full((len(X), Y.shape[1]), 0.5)
    pred = net.predict(X)
    np.testing.assert_array_equal(pred, 0)
    assert pred.dtype == Y.dtype


def test_inner_split_is_grouped_by_drug(net_data):
    _, Y, _, groups = net_data
    for seed in range(5):
        train, valid = _inner_validation_split(Y, groups, 0.2, seed)
        assert valid.size > 0
        assert not set(groups[train]) & set(groups[valid])
        assert len(train) + len(valid) == len(Y)


def test_inner_split_keeps_large_drugs_whole():
    """The best epoch is chosen on drugs the net did not train on: a drug of
    many rows (the control vehicle, a reference compound) is not split by row
    as the Kaggle protocol's outer CV splits it."""
    rng = np.random.RandomState(0)
    groups = np.concatenate([np.repeat(np.arange(60), 6), [60] * 80, [61] * 50])
    Y = (rng.uniform(size=(groups.size, 3)) < 0.3).astype(np.float32)
    for seed in range(5):
        train, valid = _inner_validation_split(Y, groups, 0.2, seed)
        assert valid.size > 0
        assert not set(groups[train]) & set(groups[valid])


def test_inner_split_falls_back_with_few_drugs():
    Y = np.zeros((12, 2))
    groups = np.repeat([0, 1, 2], 4)
    train, valid = _inner_validation_split(Y, groups, 0.3, 0)
    assert not set(groups[train]) & set(groups[valid])
    assert valid.size == 4
    train, valid = _inner_validation_split(Y, np.zeros(12), 0.3, 0)
    assert valid is None  # one drug: no grouped split possible


def test_check_params_without_fitting(engine):
    """What the command line calls to check a net's settings before a run."""
    engine.make()._check_params()
    with pytest.raises(ValueError, match="clip"):
        engine.make(clip=(0.5, 0.5))._check_params()
    with pytest.raises(TypeError, match="n_seeds"):
        engine.make(n_seeds=1.5)._check_params()
