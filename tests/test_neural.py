"""Tests of TwoStepNetClassifier's own behaviour (the two steps, PyTorch).

What every net does is tested once, on every engine, in
test_neural_contract.py. Nets are tiny (layers of 16 and 8 units, a few
epochs, one thread).
"""

import io

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from _neural_engines import engine_twostep  # noqa: E402

from moa_sklearn.neural import TwoStepNetClassifier, _torch_utils  # noqa: E402
from moa_sklearn.neural import _torch as torch_engine  # noqa: E402

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

ENGINE = engine_twostep()
TINY = ENGINE.params()
tiny = ENGINE.make


# ------------------------------------------------------------ devices
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


def test_precision_resolution(net_data, monkeypatch):
    X, Y, _, _ = net_data
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


def test_no_bf16_environment_variable_forces_fp32(net_data, monkeypatch):
    """MOA_SKLEARN_NO_BF16 makes any machine behave as one without bf16."""
    X, Y, _, _ = net_data
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
def test_pretraining_uses_y_aux(net_data):
    X, Y, Y_aux, _ = net_data
    net = tiny().fit(X, Y, y_aux=Y_aux)
    hist = pd.DataFrame(net.history_)
    assert net.n_aux_ == 3
    assert set(hist["step"]) == {"pretrain", "finetune"}
    assert (hist.loc[hist.step == "pretrain", "n_outputs"] == 4 + 3).all()
    assert (hist.loc[hist.step == "finetune", "n_outputs"] == 4).all()
    assert len(hist) == TINY["max_epochs_pretrain"] + TINY["max_epochs_finetune"]
    without = tiny().fit(X, Y).predict_proba(X)
    assert not np.allclose(net.predict_proba(X), without)


def test_pretraining_without_y_aux_and_skipped(net_data):
    X, Y, _, _ = net_data
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


def test_unfreeze_schedule_freezes_blocks_from_the_back(net_data, monkeypatch):
    X, Y, Y_aux, _ = net_data
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


def test_no_freezing_when_unfreeze_every_is_none(net_data, monkeypatch):
    X, Y, _, _ = net_data
    states = _record_step_ends(monkeypatch)
    tiny(max_epochs_finetune=1, unfreeze_every=None, validation_fraction=None).fit(X, Y)
    pre, fine = states
    assert not torch.equal(fine["body.0.1.weight"], pre["body.0.1.weight"])


# ------------------------------------------------------------- the engine
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


def test_flush_subnormal_zeroes_only_subnormal_entries():
    module = torch.nn.BatchNorm1d(4)
    tiny32 = torch.finfo(torch.float32).tiny
    with torch.no_grad():
        module.weight.copy_(torch.tensor([tiny32 / 4, -tiny32 / 2, 0.0, tiny32]))
        module.running_var.copy_(torch.tensor([1e-40, 1.0, 2.0, 3.0]))
    assert _torch_utils.flush_subnormal_(module) == 3  # two weights, one buffer
    torch.testing.assert_close(module.weight.detach(), torch.tensor([0, 0, 0, tiny32]))
    assert module.running_var[0] == 0 and module.running_var[1] == 1
    assert _torch_utils.flush_subnormal_(module) == 0
    # the threshold is the dtype's: 1e-40 is a normal float64
    double = torch.nn.Linear(2, 1).double()
    with torch.no_grad():
        double.weight.fill_(1e-40)
    assert _torch_utils.flush_subnormal_(double) == 0
    assert double.weight[0, 0] == 1e-40


def test_subnormal_weights_are_flushed_every_epoch_and_in_the_model(
    net_data, monkeypatch
):
    """Weights that training drives subnormal (a slow path of every later
    forward pass) are zeroed at the end of each epoch of both steps, before
    the best epoch's state is kept: the fitted model holds none."""
    X, Y, Y_aux, _ = net_data
    tiny32 = torch.finfo(torch.float32).tiny

    def n_subnormal(module):
        return sum(
            int(((t != 0) & (t.abs() < tiny32)).sum())
            for t in module.state_dict().values()
            if t.is_floating_point()
        )

    left = []
    original = torch_engine._FlushSubnormal.on_epoch_end

    def plant_then_flush(self, net, **kwargs):
        with torch.no_grad():  # as if the epoch had left them
            net.module_.body[0][1].weight[:, 0] = 1e-40
        assert n_subnormal(net.module_) > 0
        original(self, net, **kwargs)
        left.append(n_subnormal(net.module_))

    monkeypatch.setattr(torch_engine._FlushSubnormal, "on_epoch_end", plant_then_flush)
    net = tiny(max_epochs_pretrain=2, max_epochs_finetune=2).fit(X, Y, y_aux=Y_aux)
    assert left == [0, 0, 0, 0]  # two epochs of each step
    assert n_subnormal(net.models_[0]) == 0


def test_verbose_prints_the_steps(net_data, capsys):
    X, Y, Y_aux, _ = net_data
    tiny(verbose=2).fit(X, Y, y_aux=Y_aux)
    out = capsys.readouterr().out
    assert "step 1, pretrain on 7 targets" in out
    assert "step 2, fine-tune on 4 targets" in out
    assert "valid_loss" in out


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


# ---------------------------------------------------- early stopping, step 2
def test_fine_tuning_stops_early_and_keeps_the_same_best_epoch(net_data):
    """patience_finetune ends step 2 that many epochs after its best one;
    step 1 runs all its epochs; where the best epoch comes before the stop,
    the model is the one a fit of every epoch keeps."""
    X, _, Y_aux, _ = net_data
    # labels that are noise: the validation loss soon stops improving
    Y = (np.random.RandomState(1).uniform(size=(len(X), 3)) < 0.3).astype(int)
    params = dict(
        max_epochs_pretrain=5,
        max_epochs_finetune=15,
        learning_rate_finetune=0.3,
        validation_fraction=0.3,
        precision="fp32",
        powerset=0.0,
        random_state=1,
    )
    full = tiny(**params, patience_finetune=None).fit(X, Y, y_aux=Y_aux)
    early = tiny(**params, patience_finetune=2).fit(X, Y, y_aux=Y_aux)
    hist_full, hist = pd.DataFrame(full.history_), pd.DataFrame(early.history_)
    for h in (hist_full, hist):
        assert (h["step"] == "pretrain").sum() == 5  # never stopped early
    fine, fine_full = (h[h["step"] == "finetune"] for h in (hist, hist_full))
    assert len(fine_full) == 15
    best = int(fine.loc[fine["best"], "epoch"].iloc[0])
    assert len(fine) == best + 2 < 15, "pick a seed where it stops early"
    assert int(fine_full.loc[fine_full["best"], "epoch"].iloc[0]) == best
    np.testing.assert_array_equal(
        fine["valid_loss"].to_numpy(), fine_full["valid_loss"].to_numpy()[: len(fine)]
    )
    np.testing.assert_array_equal(early.predict_proba(X), full.predict_proba(X))


# ------------------------------------------------------------- interruption
def test_ctrl_c_during_fine_tuning_propagates(net_data, ctrl_c_at_epoch):
    """skorch's partial_fit swallows KeyboardInterrupt; the net must not, in
    either step (the contract tests Ctrl-C in the first one)."""
    X, Y, Y_aux, _ = net_data
    calls = []

    def epoch_of(callback, net, **kwargs):
        calls.append(net.module_.config["n_outputs"])
        # pretrain has 4 + 3 outputs, fine-tuning 4
        return len(net.history) if calls[-1] == 4 else None

    ctrl_c_at_epoch(torch_engine._EpochHook, epoch_of, at=2)
    net = tiny()
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, y_aux=Y_aux)
    assert not hasattr(net, "models_")  # nothing half-trained looks fitted
    assert (7 in calls) and (4 in calls)


def test_ctrl_c_from_a_timer_stops_fit(net_data, sigint_raises):
    """A real Ctrl-C from another thread, during a fit far longer than it."""
    import os
    import signal
    import threading

    X, Y, _, _ = net_data
    # long enough to be interrupted, bounded if the interrupt were lost
    net = tiny(pretrain=False, max_epochs_finetune=3000, patience_finetune=None)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            net.fit(X, Y)
    finally:
        timer.cancel()
    assert not hasattr(net, "models_")


# ------------------------------------------------------- label-powerset head
def _co_occurring_labels(n=240, seed=0):
    """Labels 1 and 2 always together: vectors {}, {0}, {1, 2}, {3}, {0, 3},
    one row of a rare vector {0, 1, 2, 3}; X carries the vector."""
    rng = np.random.RandomState(seed)
    vectors = np.array(
        [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1], [1, 0, 0, 1]]
    )
    cls = rng.randint(0, 5, n)
    Y = vectors[cls]
    Y[0] = 1  # the rare vector
    X = rng.normal(size=(n, 6)).astype(np.float32)
    X[:, 0] += 1.5 * cls
    return X, Y


def test_label_vectors_pool_rare_ones_into_other():
    Y = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 0], [0, 0], [0, 0]])
    vectors, codes = torch_engine._label_vectors(Y.astype(np.float32), min_count=2)
    # seen twice or more: [0, 0] and [1, 0]; "other" pools [0, 1] and [1, 1]
    np.testing.assert_array_equal(vectors, [[0, 0], [1, 0], [0.5, 1.0]])
    np.testing.assert_array_equal(codes, [1, 1, 2, 2, 0, 0, 0])
    unseen = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(
        torch_engine._powerset_codes(unseen, vectors), [1, 2, 2]
    )


def test_powerset_head_encodes_label_co_occurrence():
    """With the powerset head alone (powerset=1), a label's probability is a
    mix of the training vectors: labels 1 and 2, which always co-occur, get
    exactly the same probability; the sigmoid head alone does not tie them."""
    X, Y = _co_occurring_labels()
    kw = dict(TINY, max_epochs_pretrain=2, max_epochs_finetune=4, random_state=0)
    tied = TwoStepNetClassifier(powerset=1.0, powerset_min_count=2, **kw).fit(X, Y)
    model = tied.models_[0]
    assert model.powerset_head is not None
    assert model.powerset_vectors.shape == (6, 4)  # 5 vectors and "other"
    proba = tied.predict_proba(X)
    # the rare vector (all labels) is the "other" class: 1 and 2 stay tied
    np.testing.assert_allclose(proba[:, 1], proba[:, 2], rtol=1e-6)
    sigmoid = TwoStepNetClassifier(powerset=0.0, **kw).fit(X, Y)
    assert sigmoid.models_[0].powerset_head is None
    assert not np.allclose(
        sigmoid.predict_proba(X)[:, 1], sigmoid.predict_proba(X)[:, 2]
    )
    mixed = TwoStepNetClassifier(powerset=0.5, **kw).fit(X, Y)
    p = mixed.predict_proba(X)
    assert p.shape == Y.shape and ((p > 0) & (p < 1)).all()


def test_powerset_head_survives_pickle_and_ignores_later_set_params():
    import pickle

    X, Y = _co_occurring_labels(n=120)
    net = TwoStepNetClassifier(**dict(TINY, powerset=0.5, random_state=0)).fit(X, Y)
    proba = net.predict_proba(X)
    loaded = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(loaded.predict_proba(X), proba)
    # the mixing weight is the fitted one, as every fitted parameter
    np.testing.assert_allclose(net.set_params(powerset=0.0).predict_proba(X), proba)
