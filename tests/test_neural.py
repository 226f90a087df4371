"""Tests of moa_sklearn.neural: the shared base and TwoStepNetClassifier.

Nets are tiny (layers of 16 and 8 units, a few epochs, one thread) so that
the file runs in well under a minute on two busy cores.
"""

import io
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from moa_sklearn.metrics import mean_columnwise_log_loss  # noqa: E402
from moa_sklearn.model_selection import DrugMultilabelStratifiedKFold  # noqa: E402
from moa_sklearn.neural import (  # noqa: E402
    BaseMultilabelNet,
    TwoStepNetClassifier,
    _torch_utils,  # noqa: E402
)
from moa_sklearn.neural import _torch as torch_engine  # noqa: E402
from moa_sklearn.neural._base import _inner_validation_split  # noqa: E402

TINY = dict(
    hidden_sizes=(16, 8),
    dropouts=0.1,
    max_epochs_pretrain=2,
    max_epochs_finetune=3,
    unfreeze_every=1,
    batch_size=32,
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
    return TwoStepNetClassifier(**{**TINY, **params})


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


# ----------------------------------------------------------------- imports
def _run_python(code):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_neural_does_not_import_torch():
    res = _run_python(
        """
        import sys
        import moa_sklearn.neural
        assert "torch" not in sys.modules, "torch imported"
        assert "skorch" not in sys.modules, "skorch imported"
        print("ok")
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ok" in res.stdout


def test_missing_torch_gives_clear_import_error():
    res = _run_python(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "skorch"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, Block())
        import moa_sklearn.neural as neural
        try:
            neural.TwoStepNetClassifier
        except ImportError as exc:
            print("ERR", exc)
        """
    )
    assert res.returncode == 0, res.stderr
    assert "ERR" in res.stdout
    assert 'pip install "moa-sklearn[torch]"' in res.stdout


def test_base_is_abstract_and_public():
    import moa_sklearn.neural as neural

    assert "TwoStepNetClassifier" in neural.__all__
    with pytest.raises(TypeError):
        BaseMultilabelNet()


# ------------------------------------------------------------ the contract
@pytest.mark.parametrize("n_labels", [1, 2, 4])
def test_multilabel_shapes_and_consistency(data, n_labels):
    X, Y, _, _ = data
    Yk = Y[:, :n_labels]
    net = tiny()
    assert net.fit(X, Yk) is net
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), n_labels)
    assert proba.dtype == np.float64
    pred = net.predict(X)
    assert pred.shape == (len(X), n_labels)
    assert pred.dtype == Yk.dtype
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(Yk.dtype))
    assert net.n_labels_ == n_labels
    np.testing.assert_array_equal(net.classes_, np.arange(n_labels))
    assert net.n_features_in_ == X.shape[1]


@pytest.mark.parametrize("dtype", [bool, np.float32, np.int32])
def test_predict_keeps_y_dtype(data, dtype):
    X, Y, _, _ = data
    pred = tiny().fit(X, Y.astype(dtype)).predict(X)
    assert pred.dtype == np.dtype(dtype)


def test_one_d_binary_target_with_string_labels(data):
    X, Y, _, _ = data
    y = np.where(Y[:, 0] == 1, "active", "inactive")
    net = tiny().fit(X, y)
    np.testing.assert_array_equal(net.classes_, ["active", "inactive"])
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(
        net.predict(X), net.classes_[np.argmax(proba, axis=1)]
    )


def test_one_d_multiclass_target(data):
    X, Y, _, _ = data
    y = Y[:, 0] + 2 * Y[:, 1]  # classes 0..3
    net = tiny().fit(X, y)
    proba = net.predict_proba(X)
    assert proba.shape == (len(X), np.unique(y).size)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert set(net.predict(X)) <= set(np.unique(y))


def test_column_vector_of_classes_is_read_as_1d(data):
    X, Y, _, _ = data
    y = (Y[:, 0] + 2 * Y[:, 1]).reshape(-1, 1)
    with pytest.warns(sklearn.exceptions.DataConversionWarning):
        net = tiny().fit(X, y)
    assert net.predict(X).shape == (len(X),)


def test_probabilities_clipped_and_strictly_inside(data):
    X, Y, _, _ = data
    proba = tiny(clip=(0.01, 0.99)).fit(X, Y).predict_proba(X)
    assert proba.min() >= 0.01 and proba.max() <= 0.99
    # clip=None: still strictly inside (0, 1), even for extreme logits
    net = tiny(clip=None, learning_rate_pretrain=1.0, learning_rate_finetune=1.0).fit(
        X * 50, Y
    )
    proba = net.predict_proba(X * 50)
    assert np.all(proba > 0) and np.all(proba < 1)


def test_zero_positive_label_is_predicted_near_zero(data):
    X, Y, _, _ = data
    assert Y[:, 3].sum() == 0
    net = tiny(pretrain=False, max_epochs_finetune=20, learning_rate_finetune=3e-2).fit(
        X, Y
    )
    proba = net.predict_proba(X)
    assert np.isfinite(proba).all()
    assert proba[:, 3].max() < proba[:, :3].max()
    assert proba[:, 3].mean() < 0.05


def test_dataframes_keep_names(data):
    X, Y, Y_aux, _ = data
    Xf = pd.DataFrame(X, columns=[f"g-{i}" for i in range(X.shape[1])])
    Yf = pd.DataFrame(Y, columns=["a", "b", "c", "d"])
    net = tiny().fit(Xf, Yf, y_aux=pd.DataFrame(Y_aux))
    np.testing.assert_array_equal(net.feature_names_in_, Xf.columns)
    np.testing.assert_array_equal(net.target_names_, Yf.columns)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_allclose(net.predict_proba(Xf), net.predict_proba(X))
    # refit with an array y drops the names of the previous y
    assert not hasattr(net.fit(X, Y), "target_names_")


# ------------------------------------------------------------ determinism
def test_same_random_state_same_predictions(data):
    X, Y, Y_aux, groups = data
    a = tiny(random_state=3).fit(X, Y, y_aux=Y_aux, groups=groups).predict_proba(X)
    b = tiny(random_state=3).fit(X, Y, y_aux=Y_aux, groups=groups).predict_proba(X)
    c = tiny(random_state=4).fit(X, Y, y_aux=Y_aux, groups=groups).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_fit_leaves_global_torch_rng_and_threads_alone(data):
    X, Y, _, _ = data
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(n_threads=1).fit(X, Y)
    np.testing.assert_array_equal(torch.rand(3), expected)
    assert torch.get_num_threads() == threads


def test_n_seeds_averages_the_seed_models(data):
    X, Y, _, _ = data
    one = tiny(clip=None, random_state=7).fit(X, Y)
    two = tiny(clip=None, random_state=7, n_seeds=2).fit(X, Y)
    assert len(two.models_) == 2 and len(two.seeds_) == 2
    assert two.seeds_[0] == one.seeds_[0]
    Xf = X.astype(np.float32)
    per_model = [two._predict_proba_one(m, Xf) for m in two.models_]
    assert not np.allclose(per_model[0], per_model[1])
    np.testing.assert_allclose(two.predict_proba(X), np.mean(per_model, axis=0))
    # the first seed's model is the single-seed model
    np.testing.assert_allclose(per_model[0], one.predict_proba(X), atol=1e-12)
    assert {r["seed"] for r in two.history_} == {0, 1}


# ------------------------------------------------------------ persistence
def test_pickle_and_joblib_round_trip(data, tmp_path):
    X, Y, Y_aux, _ = data
    net = tiny().fit(X, Y, y_aux=Y_aux)
    expected = net.predict_proba(X)
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(again.predict_proba(X), expected)
    path = tmp_path / "net.joblib"
    joblib.dump(net, path)
    np.testing.assert_array_equal(joblib.load(path).predict_proba(X), expected)
    # the pickle holds bytes, not torch modules
    state = net.__getstate__()
    assert all(isinstance(m["state"], bytes) for m in state["models_"])
    assert isinstance(net.models_[0], torch.nn.Module)


def test_gpu_trained_model_loads_on_cpu_with_weights_only(data, monkeypatch):
    X, Y, _, _ = data
    net = tiny().fit(X, Y)
    expected = net.predict_proba(X)
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
    assert all(c.get("map_location") == "cpu" for c in calls)
    assert next(again.models_[0].parameters()).device.type == "cpu"
    np.testing.assert_array_equal(again.predict_proba(X), expected)


def test_device_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert _torch_utils.resolve_device("auto") == "cuda"
    assert _torch_utils.device_for_loading("cuda") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _torch_utils.resolve_device("auto") == "cpu"
    assert _torch_utils.resolve_device("cpu") == "cpu"
    assert _torch_utils.device_for_loading("cuda:1") == "cpu"
    for bad in ("cuda", "cuda:0"):
        with pytest.raises(ValueError, match="no CUDA"):
            _torch_utils.resolve_device(bad)
    with pytest.raises(ValueError, match="device must be"):
        _torch_utils.resolve_device("tpu")


def test_cuda_without_cuda_is_a_clear_error(data, monkeypatch):
    X, Y, _, _ = data
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA"):
        tiny(device="cuda").fit(X, Y)
    assert tiny(device="auto").fit(X, Y).device_ == "cpu"


def test_precision_resolution(data, monkeypatch):
    X, Y, _, _ = data
    assert _torch_utils.resolve_precision("fp32", "cpu") is None
    monkeypatch.setattr(_torch_utils, "bf16_supported", lambda device: False)
    assert _torch_utils.resolve_precision("auto", "cpu") is None
    with pytest.raises(ValueError, match="no native bf16"):
        tiny(precision="bf16").fit(X, Y)
    monkeypatch.setattr(_torch_utils, "bf16_supported", lambda device: True)
    assert _torch_utils.resolve_precision("auto", "cpu") is torch.bfloat16
    # bf16 training runs on any CPU (emulated where not native)
    proba = tiny(precision="bf16").fit(X, Y).predict_proba(X)
    assert proba.shape == Y.shape and np.isfinite(proba).all()


def test_no_bf16_environment_variable_forces_fp32(data, monkeypatch):
    """MOA_SKLEARN_NO_BF16 makes any machine behave as one without bf16."""
    X, Y, _, _ = data
    monkeypatch.setenv(_torch_utils.NO_BF16_ENV, "1")
    assert not _torch_utils.bf16_supported("cpu")
    assert _torch_utils.resolve_precision("auto", "cpu") is None
    with pytest.raises(ValueError, match="no native bf16"):
        tiny(precision="bf16").fit(X, Y)
    # "auto" still trains (in fp32) and predicts
    proba = tiny(precision="auto").fit(X, Y).predict_proba(X)
    assert proba.shape == Y.shape and np.isfinite(proba).all()
    for off in ("0", "", "false"):
        monkeypatch.setenv(_torch_utils.NO_BF16_ENV, off)
        assert not _torch_utils.bf16_disabled()


# -------------------------------------------------------- the two steps
def test_pretraining_uses_y_aux(data):
    X, Y, Y_aux, _ = data
    net = tiny().fit(X, Y, y_aux=Y_aux)
    hist = pd.DataFrame(net.history_)
    assert net.n_aux_ == 3
    assert set(hist["step"]) == {"pretrain", "finetune"}
    assert (hist.loc[hist.step == "pretrain", "n_outputs"] == 4 + 3).all()
    assert (hist.loc[hist.step == "finetune", "n_outputs"] == 4).all()
    assert len(hist) == TINY["max_epochs_pretrain"] + TINY["max_epochs_finetune"]
    without = tiny().fit(X, Y).predict_proba(X)
    assert not np.allclose(net.predict_proba(X), without)


def test_pretraining_without_y_aux_and_skipped(data):
    X, Y, _, _ = data
    hist = pd.DataFrame(tiny().fit(X, Y).history_)
    assert (hist.loc[hist.step == "pretrain", "n_outputs"] == 4).all()
    assert (hist.step == "pretrain").sum() == TINY["max_epochs_pretrain"]
    net = tiny(pretrain=False).fit(X, Y)
    hist = pd.DataFrame(net.history_)
    assert set(hist["step"]) == {"finetune"}
    assert (hist["frozen_blocks"] == 0).all()  # a fresh body is not frozen
    assert net.n_aux_ == 0


def _record_step_ends(monkeypatch):
    """Record the module parameters at the end of each skorch fit."""
    states = []
    real = torch_engine._EpochHook.on_train_end

    def on_train_end(self, net, **kwargs):
        real(self, net, **kwargs)
        states.append(
            {k: v.detach().clone() for k, v in net.module_.named_parameters()}
        )

    monkeypatch.setattr(torch_engine._EpochHook, "on_train_end", on_train_end)
    return states


def test_unfreeze_schedule_freezes_blocks_from_the_back(data, monkeypatch):
    X, Y, Y_aux, _ = data
    states = _record_step_ends(monkeypatch)
    # 2 body blocks; fine-tune 2 epochs, one block more every epoch:
    # epoch 1 only the head trains, epoch 2 also body[1]; body[0] never.
    net = tiny(max_epochs_finetune=2, unfreeze_every=1, validation_fraction=None)
    net.fit(X, Y, y_aux=Y_aux)
    pre, fine = states
    for name in pre:
        if name.startswith("body.0."):
            torch.testing.assert_close(fine[name], pre[name], rtol=0, atol=0)
        elif name.startswith("body.1.") and "weight" in name:
            assert not torch.equal(fine[name], pre[name]), name
    hist = pd.DataFrame(net.history_)
    assert hist.loc[hist.step == "finetune", "frozen_blocks"].tolist() == [2, 1]
    # the fitted model is trainable again and in eval mode
    model = net.models_[0]
    assert all(p.requires_grad for p in model.parameters())
    assert not model.training


def test_no_freezing_when_unfreeze_every_is_none(data, monkeypatch):
    X, Y, _, _ = data
    states = _record_step_ends(monkeypatch)
    tiny(max_epochs_finetune=1, unfreeze_every=None, validation_fraction=None).fit(X, Y)
    pre, fine = states
    assert not torch.equal(fine["body.0.1.weight"], pre["body.0.1.weight"])


def test_best_epoch_is_restored(data):
    X, Y, _, _ = data
    # a too-high learning rate makes the validation loss jump around
    net = tiny(
        pretrain=False,
        max_epochs_finetune=8,
        learning_rate_finetune=0.3,
        validation_fraction=0.3,
        label_smoothing=0.0,
        clip=None,
        precision="fp32",  # validation losses at bf16 differ by ~1e-4
        random_state=1,
    ).fit(X, Y)
    hist = pd.DataFrame(net.history_)
    best = hist.loc[hist["best"]]
    assert len(best) == 1
    assert best["valid_loss"].iloc[0] == hist["valid_loss"].min()
    assert best["epoch"].iloc[0] < hist["epoch"].max(), "pick a seed where it matters"
    # the kept model's validation loss is the best epoch's, not the last one's
    Yf = Y.astype(np.float32)
    _, valid = _inner_validation_split(Yf, None, 0.3, int(net.seeds_[0]))
    proba = net.predict_proba(X[valid])
    loss = np.mean(-(Y[valid] * np.log(proba) + (1 - Y[valid]) * np.log1p(-proba)))
    assert loss == pytest.approx(best["valid_loss"].iloc[0], rel=1e-4)


def test_history_is_a_learning_curve(data):
    X, Y, _, _ = data
    hist = pd.DataFrame(tiny(n_seeds=2).fit(X, Y).history_)
    for col in ("seed", "step", "epoch", "train_loss", "valid_loss", "lr", "best"):
        assert col in hist
    assert len(hist) == 2 * (TINY["max_epochs_pretrain"] + TINY["max_epochs_finetune"])
    assert hist["train_loss"].notna().all() and hist["valid_loss"].notna().all()
    no_valid = pd.DataFrame(tiny(validation_fraction=None).fit(X, Y).history_)
    assert no_valid["valid_loss"].isna().all()
    assert no_valid.groupby("step")["best"].sum().eq(1).all()  # the last epoch


# ------------------------------------------------------ inner validation
def test_inner_split_is_grouped_by_drug(data):
    _, Y, _, groups = data
    for seed in range(5):
        train, valid = _inner_validation_split(Y, groups, 0.2, seed)
        assert valid.size > 0
        assert not set(groups[train]) & set(groups[valid])
        assert len(train) + len(valid) == len(Y)


def test_inner_split_falls_back_with_few_drugs():
    Y = np.zeros((12, 2))
    groups = np.repeat([0, 1, 2], 4)
    train, valid = _inner_validation_split(Y, groups, 0.3, 0)
    assert not set(groups[train]) & set(groups[valid])
    assert valid.size == 4
    train, valid = _inner_validation_split(Y, np.zeros(12), 0.3, 0)
    assert valid is None  # one drug: no grouped split possible


class _SpyNet(TwoStepNetClassifier):
    """Records what fit and _fit_one receive (in a class-level list)."""

    calls = []

    def fit(self, X, y, *, y_aux=None, groups=None):
        type(self).calls.append(
            {
                "n": len(X),
                "y_aux": None if y_aux is None else np.asarray(y_aux).shape,
                "groups": None if groups is None else np.asarray(groups).copy(),
            }
        )
        return super().fit(X, y, y_aux=y_aux, groups=groups)

    def _fit_one(self, X, Y, X_valid, Y_valid, **kwargs):
        type(self).calls[-1]["valid_ids"] = (
            None if X_valid is None else X_valid[:, 0].round().astype(int)
        )
        type(self).calls[-1]["train_ids"] = X[:, 0].round().astype(int)
        return super()._fit_one(X, Y, X_valid, Y_valid, **kwargs)


@pytest.fixture
def spy():
    _SpyNet.calls = []
    return _SpyNet


def test_fit_uses_grouped_inner_validation(data, spy):
    X, Y, _, groups = data
    Xid = np.column_stack([np.arange(len(X)), X])  # column 0: the row id
    spy(**TINY, validation_fraction=0.2).fit(Xid, Y, groups=groups)
    call = spy.calls[-1]
    valid, train = call["valid_ids"], call["train_ids"]
    assert valid.size > 0
    assert not set(groups[valid]) & set(groups[train])
    # without groups the split is by row
    spy(**TINY, validation_fraction=0.2).fit(Xid, Y)
    call = spy.calls[-1]
    assert set(groups[call["valid_ids"]]) & set(groups[call["train_ids"]])


# ------------------------------------------------------ metadata routing
def test_set_fit_request_is_available():
    with sklearn.config_context(enable_metadata_routing=True):
        net = tiny().set_fit_request(y_aux=True, groups=True)
        requests = net.get_metadata_routing().fit.requests
    assert requests["y_aux"] is True and requests["groups"] is True


def test_routing_cross_validate_slices_y_aux_per_fold(data, spy):
    X, Y, Y_aux, groups = data
    with sklearn.config_context(enable_metadata_routing=True):
        net = spy(**TINY).set_fit_request(y_aux=True, groups=True)
        pipe = make_pipeline(StandardScaler(), net)
        cv = DrugMultilabelStratifiedKFold(3, random_state=0)
        res = cross_validate(
            pipe,
            X,
            Y,
            params={"groups": groups, "y_aux": Y_aux},
            cv=cv,
        )
        folds = list(cv.split(X, Y, groups))
    assert len(res["test_score"]) == 3
    assert [c["n"] for c in spy.calls] == [len(tr) for tr, _ in folds]
    assert [c["y_aux"] for c in spy.calls] == [(len(tr), 3) for tr, _ in folds]
    for call, (train, _) in zip(spy.calls, folds):
        np.testing.assert_array_equal(call["groups"], groups[train])


def test_routing_grid_search(data, spy):
    X, Y, Y_aux, groups = data
    from moa_sklearn.metrics import neg_mean_columnwise_log_loss

    with sklearn.config_context(enable_metadata_routing=True):
        net = spy(**TINY).set_fit_request(y_aux=True, groups=True)
        search = GridSearchCV(
            make_pipeline(StandardScaler(), net),
            {"_spynet__label_smoothing": [0.0, 0.01]},
            cv=DrugMultilabelStratifiedKFold(2, random_state=0),
            scoring=neg_mean_columnwise_log_loss,
        )
        search.fit(X, Y, groups=groups, y_aux=Y_aux)
    # 2 candidates x 2 folds, then the refit on all rows
    assert len(spy.calls) == 5
    assert all(c["y_aux"][0] < len(X) for c in spy.calls[:4])
    assert spy.calls[-1]["y_aux"] == (len(X), 3)
    assert search.predict_proba(X).shape == Y.shape


def test_routing_off_pipeline_step_params(data, spy):
    X, Y, Y_aux, groups = data
    pipe = make_pipeline(StandardScaler(), spy(**TINY))
    pipe.fit(X, Y, _spynet__y_aux=Y_aux, _spynet__groups=groups)
    assert spy.calls[-1]["y_aux"] == (len(X), 3)
    assert pipe[-1].n_aux_ == 3
    # cross_validate without routing: step params are sliced per fold
    spy.calls.clear()
    cross_validate(
        pipe,
        X,
        Y,
        groups=groups,
        params={"_spynet__y_aux": Y_aux},
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
    )
    assert [c["y_aux"][0] for c in spy.calls] == [c["n"] for c in spy.calls]
    assert all(c["n"] < len(X) for c in spy.calls)


def test_metric_on_cv_predictions(data):
    # the net plays with the package's scorer and splitter end to end
    X, Y, Y_aux, groups = data
    from moa_sklearn.metrics import neg_mean_columnwise_log_loss

    scores = cross_validate(
        tiny(),
        X,
        Y,
        groups=groups,
        cv=DrugMultilabelStratifiedKFold(3, random_state=0),
        scoring=neg_mean_columnwise_log_loss,
        params={"y_aux": Y_aux},
    )["test_score"]
    assert np.all(scores < 0) and np.all(np.isfinite(scores))
    proba = tiny().fit(X, Y).predict_proba(X)
    assert mean_columnwise_log_loss(Y, proba) > 0


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_in_X(data, bad):
    X, Y, _, _ = data
    Xb = X.copy()
    Xb[3, 2] = bad
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        tiny().fit(Xb, Y)
    net = tiny().fit(X, Y)
    with pytest.raises(
        ValueError, match=r"NaN or infinity in column\(s\) \[2\] \(1 cell"
    ):
        net.predict_proba(Xb)


def test_wrong_width_at_predict(data):
    X, Y, _, _ = data
    net = tiny().fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        net.predict(X[:, :-1])


def test_bad_y_aux_and_groups(data):
    X, Y, Y_aux, groups = data
    with pytest.raises(ValueError, match="y_aux has 119 rows"):
        tiny().fit(X, Y, y_aux=Y_aux[:-1])
    with pytest.raises(ValueError, match="y_aux must contain only 0 and 1"):
        tiny().fit(X, Y, y_aux=Y_aux * 2)
    bad_aux = Y_aux.astype(float)
    bad_aux[0, 0] = np.nan
    with pytest.raises(ValueError, match="y_aux contains NaN"):
        tiny().fit(X, Y, y_aux=bad_aux)
    with pytest.raises(ValueError, match="groups must be 1-D"):
        tiny().fit(X, Y, groups=groups[:-1])


def test_non_binary_y_matrix(data):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match="0/1 label indicator matrix"):
        tiny().fit(X, Y * 2)
    with pytest.raises(ValueError, match="0/1 label indicator matrix"):
        tiny().fit(X, Y + 0.5)


def test_regression_target_and_single_class(data):
    X, _, _, _ = data
    with pytest.raises(ValueError, match="Unknown label type"):
        tiny().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="only one class"):
        tiny().fit(X, np.ones(len(X)))
    with pytest.raises(ValueError, match="n_samples=1"):
        tiny().fit(X[:1], np.array([[1, 0]]))


def test_non_numeric_columns(data):
    X, Y, _, _ = data
    Xf = pd.DataFrame(X, columns=[f"c-{i}" for i in range(X.shape[1])])
    Xf["cp_type"] = "trt_cp"
    with pytest.raises(ValueError, match=r"numeric features.*'cp_type'"):
        tiny().fit(Xf, Y)
    # the same values as an array (no column names): the columns by index
    with pytest.raises(ValueError, match=r"numeric features.*column\(s\) \[6\]"):
        tiny().fit(Xf.to_numpy(), Y)
    net = tiny().fit(X, Y)
    with pytest.raises(ValueError, match=r"column\(s\) \[5\].*'trt_cp'"):
        net.predict_proba(Xf.to_numpy()[:, 1:])


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_sizes=()), "hidden_sizes"),
        (dict(dropouts=(0.1,)), "dropouts"),
        (dict(dropouts=1.0), "dropouts"),
        (dict(activation="sigmoid"), "activation"),
        (dict(weight_norm=True), "weight_norm"),
        (dict(max_epochs_finetune=0), "max_epochs_finetune"),
        (dict(unfreeze_every=0), "unfreeze_every"),
        (dict(label_smoothing=1.0), "label_smoothing"),
        (dict(clip=(0.9, 0.1)), "clip"),
        (dict(n_seeds=0), "n_seeds"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(precision="fp16"), "precision"),
        (dict(n_threads=0), "n_threads"),
        (dict(pct_start=1.0), "pct_start"),
    ],
)
def test_bad_params(data, params, match):
    X, Y, _, _ = data
    with pytest.raises(ValueError, match=match):
        tiny(**params).fit(X, Y)


def test_clone_and_params_untouched(data):
    X, Y, _, _ = data
    net = tiny()
    before = net.get_params()
    net.fit(X, Y)
    assert net.get_params() == before
    fresh = clone(net)
    assert not hasattr(fresh, "models_")
    assert fresh.get_params() == before


def test_unfitted_predict_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        tiny().predict_proba(np.zeros((2, 3)))


def test_tags():
    tags = tiny().__sklearn_tags__()
    assert tags.estimator_type == "classifier"
    assert tags.classifier_tags.multi_label
    assert tags.target_tags.multi_output
    assert not tags.input_tags.allow_nan


def test_tensor_batches_drop_single_row_batch():
    ds = torch_engine._TensorDataset(torch.arange(65.0).reshape(-1, 1), torch.zeros(65))
    batches = list(torch_engine._TensorBatches(ds, batch_size=32, shuffle=True))
    assert [len(b[0]) for b in batches] == [32, 32]  # the 65th row would be alone
    assert torch_engine._n_train_batches(65, 32) == 2
    assert torch_engine._n_train_batches(66, 32) == 3
    batches = list(torch_engine._TensorBatches(ds, batch_size=32))
    assert [len(b[0]) for b in batches] == [32, 32, 1]  # validation keeps all


def test_fast_dropout_law():
    torch.manual_seed(0)
    drop = torch_engine._Dropout(0.3)
    x = torch.ones(200_000)
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 0.3) < 0.01
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_state_dict_bytes_round_trip():
    module = torch.nn.Linear(3, 2)
    blob = _torch_utils.state_dict_to_bytes(module)
    state = _torch_utils.state_dict_from_bytes(blob)
    torch.testing.assert_close(state["weight"], module.weight.detach())
    buffer = io.BytesIO(blob)
    assert torch.load(buffer, weights_only=True)["bias"].shape == (2,)


def test_verbose_prints_the_steps_and_quiet_by_default(data, capsys):
    X, Y, Y_aux, _ = data
    tiny().fit(X, Y, y_aux=Y_aux)
    assert capsys.readouterr() == ("", "")
    tiny(verbose=2).fit(X, Y, y_aux=Y_aux)
    out = capsys.readouterr().out
    assert "step 1, pretrain on 7 targets" in out
    assert "step 2, fine-tune on 4 targets" in out
    assert "valid_loss" in out


def test_verbose_progress_bar_on_a_terminal_only(data, terminal, progress_bars):
    X, Y, Y_aux, _ = data
    stream = terminal()
    tiny(verbose=1, n_seeds=2).fit(X, Y, y_aux=Y_aux)
    (bar,) = progress_bars
    assert bar.drawn
    epochs = 2 * (TINY["max_epochs_pretrain"] + TINY["max_epochs_finetune"])
    assert (bar.total, bar.n) == (epochs, epochs)
    assert "seed 2/2, finetune, train 0." in bar.postfix
    assert "valid 0." in bar.postfix
    assert "TwoStepNetClassifier" in stream.getvalue()
    # not a terminal: no bar drawn, nothing written
    progress_bars.clear()
    sys.stderr = io.StringIO()
    tiny(verbose=1).fit(X, Y, y_aux=Y_aux)
    assert not progress_bars[0].drawn
    assert sys.stderr.getvalue() == ""


def test_untrained_head_predicts_the_prevalence():
    # with a learning rate of ~0 nothing is learned: the head's bias starts at
    # the logit of each label's training prevalence, so the output is the prior
    rng = np.random.RandomState(0)
    X = rng.normal(size=(400, 6))
    Y = (rng.uniform(size=(400, 3)) < [0.02, 0.1, 0.4]).astype(int)
    net = TwoStepNetClassifier(
        hidden_sizes=(8,),
        dropouts=0.0,
        pretrain=False,
        max_epochs_finetune=1,
        learning_rate_finetune=1e-9,
        batch_norm=False,
        clip=None,
        validation_fraction=None,
        device="cpu",
        random_state=0,
    ).fit(X, Y)
    proba = net.predict_proba(X)
    np.testing.assert_allclose(proba.mean(axis=0), Y.mean(axis=0), rtol=0.3, atol=0.01)


def test_one_step_warm_up_does_not_crash():
    # 100 rows, batch 10, 1 epoch: 10 steps x pct_start 0.1 is a warm-up of
    # exactly one step, where torch's OneCycleLR divides by zero
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 4))
    Y = (X[:, :2] > 0).astype(int)
    net = TwoStepNetClassifier(
        hidden_sizes=(8,),
        dropouts=0.1,
        pretrain=False,
        max_epochs_finetune=1,
        batch_size=10,
        pct_start=0.1,
        validation_fraction=None,
        device="cpu",
        random_state=0,
    )
    assert net.fit(X, Y).predict_proba(X).shape == (100, 2)


def test_probability_of_exactly_one_half_predicts_zero(data):
    """A zero logit gives exactly 0.5: predict is
    proba > 0.5, so it agrees with predict_proba().round() on such ties."""
    X, Y, _, _ = data
    net = tiny().fit(X, Y)
    net.predict_proba = lambda X: np.full((len(X), Y.shape[1]), 0.5)
    pred = net.predict(X)
    np.testing.assert_array_equal(pred, 0)
    assert pred.dtype == Y.dtype


# ------------------------------------------------------------- interruption
@pytest.mark.parametrize("step", ["pretrain", "finetune"])
def test_ctrl_c_during_fit_propagates(data, ctrl_c_at_epoch, step):
    """skorch's partial_fit swallows KeyboardInterrupt; the net must not."""
    X, Y, Y_aux, _ = data
    calls = []

    def epoch_of(callback, net, **kwargs):
        calls.append(net.module_.config["n_outputs"])
        # pretrain has 4 + 3 outputs, fine-tuning 4
        n_outputs = 7 if step == "pretrain" else 4
        return len(net.history) if calls[-1] == n_outputs else None

    ctrl_c_at_epoch(torch_engine._EpochHook, epoch_of, at=2)
    net = tiny()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, y_aux=Y_aux)
    assert not hasattr(net, "models_")  # nothing half-trained looks fitted
    assert (7 in calls) and ((4 in calls) == (step == "finetune"))


def test_ctrl_c_from_a_timer_stops_fit(data, sigint_raises):
    """A real Ctrl-C from another thread, during a fit far longer than it."""
    import os
    import signal
    import threading

    X, Y, _, _ = data
    # long enough to be interrupted, bounded if the interrupt were lost
    net = tiny(pretrain=False, max_epochs_finetune=3000)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, Y)
    finally:
        timer.cancel()
    assert not hasattr(net, "models_")


def test_nan_in_y_names_the_column(data):
    X, Y, _, _ = data
    Yf = pd.DataFrame(Y.astype(float), columns=["w", "x", "y", "z"])
    Yf.iloc[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"y contains NaN in column\(s\) \['y'\]"):
        tiny().fit(X, Yf)
    with pytest.raises(ValueError, match=r"y contains NaN in column\(s\) \[2\]"):
        tiny().fit(X, Yf.to_numpy())
