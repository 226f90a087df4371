"""Tests of TabNetMultilabelClassifier (pytorch-tabnet on the shared net base).

Nets are tiny (n_d = n_a = 8, one step, a few epochs, one thread): a fit
takes a fraction of a second.
"""

import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_tabnet")

from moa_sklearn.metrics import neg_mean_columnwise_log_loss  # noqa: E402
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold  # noqa: E402
from moa_sklearn.neural import TabNetMultilabelClassifier  # noqa: E402
from moa_sklearn.neural import _tabnet as tabnet_engine  # noqa: E402
from moa_sklearn.neural._base import _inner_validation_split  # noqa: E402

TINY = dict(
    n_d=8,
    n_a=8,
    max_epochs=4,
    batch_size=32,
    virtual_batch_size=16,
    device="cpu",
    n_threads=1,
    random_state=0,
)


# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)


def tiny(**params):
    return TabNetMultilabelClassifier(**{**TINY, **params})


@pytest.fixture(scope="module")
def data():
    """120 rows of 20 drugs x 6 replicates; 4 labels (the last never positive)."""
    rng = np.random.RandomState(0)
    n_drugs, reps = 20, 6
    groups = np.repeat(np.arange(n_drugs), reps)
    drug_y = (rng.uniform(size=(n_drugs, 4)) < 0.3).astype(np.int64)
    drug_y[:, 3] = 0
    drug_aux = (rng.uniform(size=(n_drugs, 3)) < 0.3).astype(np.int64)
    Y, Y_aux = drug_y[groups], drug_aux[groups]
    X = rng.normal(size=(n_drugs * reps, 6)) + 1.5 * np.hstack([Y[:, :3], Y_aux])
    return X, Y, Y_aux, groups


@pytest.fixture(scope="module")
def fitted(data):
    X, Y, Y_aux, _ = data
    return tiny().fit(X, Y, y_aux=Y_aux)


def _run_python(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


# ----------------------------------------------------------------- imports
def test_import_does_not_import_tabnet():
    res = _run_python(
        """
        import sys
        import moa_sklearn.neural
        assert "pytorch_tabnet" not in sys.modules, "pytorch_tabnet imported"
        print("ok")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_missing_tabnet_gives_clear_import_error():
    res = _run_python(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "pytorch_tabnet":
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        import moa_sklearn.neural as neural
        try:
            neural.TabNetMultilabelClassifier
        except ImportError as exc:
            print("ERR", exc)
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ERR" in res.stdout
    assert 'pip install "moa-sklearn[torch]"' in res.stdout
    assert "pytorch-tabnet" in res.stdout


# ------------------------------------------------------------ the contract
def test_multilabel_fit_predict(data, fitted):
    X, Y, _, _ = data
    proba = fitted.predict_proba(X)
    assert proba.shape == Y.shape and proba.dtype == np.float64
    assert proba.min() >= 0.0005 and proba.max() <= 0.9995  # the default clip
    pred = fitted.predict(X)
    assert pred.dtype == Y.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(Y.dtype))
    assert fitted.n_labels_ == 4 and fitted.n_aux_ == 3
    assert isinstance(fitted.model_, tabnet_engine.TabNetRegressor)
    assert fitted.model_ is fitted.models_[0]
    assert fitted.model_.output_dim == 4 and fitted.model_.input_dim == X.shape[1]


def test_single_label_and_one_d_targets(data):
    X, Y, _, _ = data
    net = tiny().fit(X, Y[:, :1])
    assert net.predict_proba(X).shape == (len(X), 1)
    assert net.predict(X).shape == (len(X), 1)
    y = np.where(Y[:, 0] == 1, "active", "inactive")
    net = tiny().fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(net.predict(X)) <= {"active", "inactive"}
    y = Y[:, 0] + 2 * Y[:, 1]
    proba = tiny().fit(X, y).predict_proba(X)
    assert proba.shape == (len(X), np.unique(y).size)
    np.testing.assert_allclose(proba.sum(axis=1), 1)


def test_proba_is_sigmoid_of_the_tabnet_logits(data, fitted):
    X, _, _, _ = data
    Xf = X.astype(np.float32)
    expected = 1 / (1 + np.exp(-fitted.model_.predict(Xf).astype(np.float64)))
    np.testing.assert_allclose(
        fitted._predict_proba_one(fitted.model_, Xf), expected, rtol=1e-5
    )


def test_probabilities_clipped_and_strictly_inside(data, fitted):
    X, Y, _, _ = data
    net = pickle.loads(pickle.dumps(fitted)).set_params(clip=(0.01, 0.99))
    proba = net.predict_proba(X)
    assert proba.min() >= 0.01 and proba.max() <= 0.99
    net = tiny(clip=None, learning_rate=0.3, max_epochs=10).fit(X * 50, Y)
    proba = net.predict_proba(X * 50)
    assert np.all(proba > 0) and np.all(proba < 1)


def test_predictions_do_not_depend_on_the_batch(data, fitted):
    X, _, _, _ = data
    full = fitted.predict_proba(X)
    np.testing.assert_allclose(fitted.predict_proba(X[:7]), full[:7], rtol=1e-12)
    order = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[order]), full[order], rtol=1e-12)


def test_fit_is_quiet(data, capsys):
    X, Y, _, _ = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny(max_epochs=2).fit(X, Y)
        tiny(max_epochs=2, validation_fraction=None).fit(X, Y)
    assert capsys.readouterr().out == ""
    assert not [w for w in caught if "pytorch_tabnet" in str(w.filename)]
    tiny(max_epochs=2, verbose=1).fit(X, Y)
    assert capsys.readouterr().out == ""  # 1: a progress bar, on a terminal
    tiny(max_epochs=2, verbose=2).fit(X, Y)
    assert "epoch 0" in capsys.readouterr().out


def test_verbose_progress_bar_counts_the_epochs(data, terminal, progress_bars):
    X, Y, _, _ = data
    stream = terminal()
    tiny(max_epochs=3, n_seeds=2, verbose=1).fit(X, Y)
    (bar,) = progress_bars
    assert (bar.total, bar.n) == (6, 6)
    assert "seed 2/2, train " in bar.postfix and "valid " in bar.postfix
    assert "TabNetMultilabelClassifier" in stream.getvalue()


# ------------------------------------------------------------ determinism
def test_same_random_state_same_predictions(data, fitted):
    X, Y, Y_aux, _ = data
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = tiny().fit(X, Y, y_aux=Y_aux)
    # fit leaves torch's global random state and thread count alone
    np.testing.assert_array_equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))
    other = tiny(random_state=1).fit(X, Y).predict_proba(X)
    assert not np.allclose(other, fitted.predict_proba(X))


def test_n_seeds_averages_the_seed_models(data):
    X, Y, _, _ = data
    net = tiny(clip=None, n_seeds=2).fit(X, Y)
    per_model = [net._predict_proba_one(m, X.astype(np.float32)) for m in net.models_]
    assert len(per_model) == 2 and not np.allclose(per_model[0], per_model[1])
    np.testing.assert_allclose(net.predict_proba(X), np.mean(per_model, axis=0))
    assert net.models_[0].seed != net.models_[1].seed  # drawn from the base's seeds
    hist = pd.DataFrame(net.history_)
    assert hist.groupby("seed")["best"].sum().eq(1).all()


# ------------------------------------------------------------ persistence
def test_pickle_and_joblib_round_trip(data, fitted, tmp_path):
    X, _, _, _ = data
    expected = fitted.predict_proba(X)
    torch.manual_seed(7)
    before = torch.rand(2)
    torch.manual_seed(7)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(torch.rand(2), before)  # loading seeds nothing
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    path = tmp_path / "net.joblib"
    joblib.dump(fitted, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)
    state = fitted.__getstate__()
    assert all(isinstance(m["state"], bytes) for m in state["models_"])
    assert isinstance(fitted.models_[0], tabnet_engine.TabNetRegressor)


def test_gpu_trained_model_loads_on_cpu_with_weights_only(data, fitted, monkeypatch):
    X, _, _, _ = data
    net = pickle.loads(pickle.dumps(fitted))
    net.device_ = "cuda"  # as if trained on a GPU
    blob = pickle.dumps(net)
    calls = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy_load)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    again = pickle.loads(blob)
    assert calls and all(c.get("weights_only") is True for c in calls)
    assert again.models_[0].device.type == "cpu"
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_cuda_without_cuda_is_a_clear_error(data, monkeypatch):
    X, Y, _, _ = data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        tiny(device="cuda").fit(X, Y)
    assert tiny(device="auto", max_epochs=1).fit(X, Y).device_ == "cpu"


# ------------------------------------------------- training: stop, schedule
def test_early_stopping_stops_and_keeps_the_best_epoch(data):
    X, _, _, _ = data
    # labels that are noise: the validation loss bottoms out early, then
    # rises as the net overfits, and training stops long before max_epochs
    Y = (np.random.RandomState(1).uniform(size=(len(X), 3)) < 0.3).astype(int)
    net = tiny(
        max_epochs=60,
        patience=3,
        learning_rate=0.1,
        lr_patience=1,
        lr_factor=0.5,
        validation_fraction=0.3,
        label_smoothing=0.0,
        clip=None,
        random_state=2,
    ).fit(X, Y)
    hist = pd.DataFrame(net.history_)
    assert len(hist) < 60
    best = hist.loc[hist["best"]]
    assert len(best) == 1
    assert best["valid_loss"].iloc[0] == hist["valid_loss"].min()
    assert len(hist) == best["epoch"].iloc[0] + 3  # patience epochs after it
    # ReduceLROnPlateau lowered the learning rate on the plateau
    assert hist["lr"].iloc[0] == pytest.approx(0.1)
    assert hist["lr"].iloc[-1] < 0.1 and (np.diff(hist["lr"]) <= 0).all()
    # the kept weights are the best epoch's
    _, valid = _inner_validation_split(
        Y.astype(np.float32), None, 0.3, int(net.seeds_[0])
    )
    proba = net.predict_proba(X[valid])
    loss = -np.mean(Y[valid] * np.log(proba) + (1 - Y[valid]) * np.log1p(-proba))
    assert loss == pytest.approx(best["valid_loss"].iloc[0], rel=1e-4)


def test_history_without_validation(data):
    X, Y, _, _ = data
    hist = pd.DataFrame(tiny(validation_fraction=None, patience=1).fit(X, Y).history_)
    assert len(hist) == TINY["max_epochs"]
    assert hist["valid_loss"].isna().all()
    assert hist["best"].tolist() == [False] * (TINY["max_epochs"] - 1) + [True]
    assert (hist["lr"] == 2e-2).all()  # no schedule without a validation loss


@pytest.mark.parametrize("n", [2, 3, 17, 33, 65])
def test_tiny_and_odd_sizes_train(n):
    # batch norm cannot train on one row: single-row batches and ghost
    # batches are avoided whatever the number of rows
    rng = np.random.RandomState(n)
    X = rng.normal(size=(n, 4))
    Y = np.tile([[0, 1], [1, 0]], (n, 1))[:n]
    net = tiny(validation_fraction=None, batch_size=32, virtual_batch_size=3)
    assert net.fit(X, Y).predict_proba(X).shape == (n, 2)


def test_plan_batches_matches_torch_chunking():
    for rows in range(2, 70):
        for vbs in (2, 3, 5, 16):
            chunks = torch.zeros(rows).chunk(int(np.ceil(rows / vbs)))
            assert tabnet_engine._chunk_sizes(rows, vbs) == [len(c) for c in chunks]
    assert tabnet_engine._plan_batches(65, 32, 16) == (32, 16, True)  # 65 = 2*32+1
    assert tabnet_engine._plan_batches(10, 1024, 32) == (10, 10, False)
    bs, vbs, drop = tabnet_engine._plan_batches(10, 1024, 3)  # 3+3+3+1 -> raised
    assert (bs, drop) == (10, False) and 1 not in tabnet_engine._chunk_sizes(10, vbs)
    assert tabnet_engine._plan_batches(1024 * 3, 1024, 32) == (1024, 32, False)


class _SpyTabNet(TabNetMultilabelClassifier):
    """Records what _fit_one receives (in a class-level list)."""

    calls = []

    def _fit_one(self, X, Y, X_valid, Y_valid, **kwargs):
        type(self).calls.append(
            {
                "Y_range": (float(Y.min()), float(Y.max())),
                "train_x0": X[:, 0].copy(),
                "valid_x0": None if X_valid is None else X_valid[:, 0].copy(),
            }
        )
        return super()._fit_one(X, Y, X_valid, Y_valid, **kwargs)


@pytest.fixture
def spy():
    _SpyTabNet.calls = []
    return _SpyTabNet


def _row_ids(call, scaler=None):
    def ids(x0):
        if scaler is not None:
            x0 = x0 * scaler.scale_[0] + scaler.mean_[0]
        return np.round(x0).astype(int)

    return ids(call["train_x0"]), ids(call["valid_x0"])


def test_label_smoothing_changes_the_training_target(data, spy):
    X, Y, _, _ = data
    params = dict(TINY, max_epochs=30, learning_rate=5e-2, clip=None, patience=None)
    sharp = spy(**params, label_smoothing=0.0).fit(X, Y).predict_proba(X)
    smooth = spy(**params, label_smoothing=0.5).fit(X, Y).predict_proba(X)
    assert spy.calls[0]["Y_range"] == (0.0, 1.0)
    assert spy.calls[1]["Y_range"] == (0.25, 0.75)
    # trained towards 0.25 / 0.75 instead of 0 / 1, the probabilities
    # saturate less (on average: |p - 0.5| is at most 0.25 at the optimum)
    spread_sharp, spread_smooth = np.abs(sharp - 0.5), np.abs(smooth - 0.5)
    assert spread_smooth.mean() < 0.75 * spread_sharp.mean()
    assert spread_smooth.mean() < 0.25


# ------------------------------------------- inner validation and routing
def test_fit_uses_grouped_inner_validation(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])
    spy(**TINY, validation_fraction=0.2).fit(Xid, Y, groups=groups)
    train, valid = _row_ids(spy.calls[-1])
    assert valid.size > 0 and train.size + valid.size == len(X)
    assert not set(groups[valid]) & set(groups[train])


def test_routing_on_grid_search_and_cross_validate(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])
    cv = DrugMultilabelStratifiedKFold(2, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        net = spy(**TINY).set_fit_request(groups=True)
        search = GridSearchCV(
            net,
            {"learning_rate": [1e-2, 3e-2]},
            cv=cv,
            scoring=neg_mean_columnwise_log_loss,
        ).fit(Xid, Y, groups=groups)
        assert search.predict_proba(Xid).shape == Y.shape
        assert len(spy.calls) == 2 * 2 + 1
        for call in spy.calls:
            train, valid = _row_ids(call)
            assert not set(groups[valid]) & set(groups[train])
        spy.calls.clear()
        res = cross_validate(net, Xid, Y, params={"groups": groups}, cv=cv)
    assert len(res["test_score"]) == 2
    for call, (fold_train, _) in zip(spy.calls, cv.split(Xid, Y, groups)):
        train, valid = _row_ids(call)
        np.testing.assert_array_equal(np.sort(np.r_[train, valid]), fold_train)
        assert not set(groups[valid]) & set(groups[train])


def test_routing_off_pipeline_step_params_and_cross_val_score(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])
    pipe = make_pipeline(StandardScaler(), spy(**TINY, validation_fraction=0.2))
    pipe.fit(Xid, Y, _spytabnet__groups=groups)
    train, valid = _row_ids(spy.calls[-1], pipe[0])
    assert not set(groups[valid]) & set(groups[train])
    scores = cross_val_score(
        pipe,
        Xid,
        Y,
        groups=groups,
        cv=DrugMultilabelStratifiedKFold(2, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
    )
    assert scores.shape == (2,) and np.all(scores < 0)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_in_X(data, fitted, bad):
    X, Y, _, _ = data
    Xb = X.copy()
    Xb[3, 2] = bad
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        tiny().fit(Xb, Y)
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        fitted.predict_proba(Xb)


def test_wrong_width_at_predict(data, fitted):
    X, _, _, _ = data
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :-1])


def test_bad_targets_and_one_sample(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match="0/1 label indicator matrix"):
        tiny().fit(X, Y * 2)
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="n_samples=1"):
        tiny().fit(X[:1], np.array([[1, 0]]))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_d=0), "n_d"),
        (dict(n_steps=0), "n_steps"),
        (dict(gamma=0.5), "gamma"),
        (dict(momentum=1.0), "momentum"),
        (dict(mask_type="softmax"), "mask_type"),
        (dict(max_epochs=0), "max_epochs"),
        (dict(patience=0), "patience"),
        (dict(virtual_batch_size=0), "virtual_batch_size"),
        (dict(learning_rate=-1.0), "learning_rate"),
        (dict(lr_factor=0.0), "lr_factor"),
        (dict(lambda_sparse=-1.0), "lambda_sparse"),
        (dict(max_grad_norm=0), "max_grad_norm"),
        (dict(n_threads=0), "n_threads"),
        (dict(label_smoothing=-0.1), "label_smoothing"),
        (dict(verbose=-1), "verbose"),
    ],
)
def test_bad_params(data, params, match):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X, Y)


def test_clone_params_and_tags(data, fitted):
    assert fitted.get_params() == tiny().get_params()
    fresh = clone(fitted)
    assert not hasattr(fresh, "models_") and not hasattr(fresh, "model_")
    with pytest.raises(NotFittedError):
        fresh.predict_proba(data[0])
    tags = fitted.__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags.multi_label and tags.target_tags.multi_output


def test_ctrl_c_during_fit_propagates(data, ctrl_c_at_epoch):
    """Ctrl-C during pytorch-tabnet's fit reaches the caller."""
    X, Y, _, _ = data
    ctrl_c_at_epoch(
        tabnet_engine._EpochTimer, lambda cb, epoch, logs=None: epoch + 1, at=2
    )
    net = tiny(max_epochs=50)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y)
    assert not hasattr(net, "models_")
