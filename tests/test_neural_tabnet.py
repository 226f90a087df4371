"""Tests of TabNetMultilabelClassifier's own behaviour (pytorch-tabnet).

What every net does is tested once, on every engine, in
test_neural_contract.py. Nets are tiny (n_d = n_a = 8, one step, a few
epochs, one thread): a fit takes a fraction of a second.
"""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_tabnet")

from _neural_engines import engine_tabnet  # noqa: E402

from moa_sklearn.neural import _tabnet as tabnet_engine  # noqa: E402
from moa_sklearn.neural._base import _prior_logits  # noqa: E402

# Most tests here fit on synthetic rows without drug ids on purpose; the
# DrugLeakageWarning that says so is the subject of tests/test_leakage.py.
pytestmark = pytest.mark.filterwarnings(
    "ignore::moa_sklearn.exceptions.DrugLeakageWarning"
)

tiny = engine_tabnet().make


@pytest.fixture(scope="module")
def fitted(net_data):
    X, Y, Y_aux, _ = net_data
    # the best epoch's network alone (n_best_epochs is tested below)
    return tiny(n_best_epochs=1).fit(X, Y, y_aux=Y_aux)


# ---------------------------------------------------------- the network
def test_proba_is_sigmoid_of_the_tabnet_logits(net_data, fitted):
    X, _, _, _ = net_data
    assert fitted.model_.input_dim == X.shape[1]
    Xf = X.astype(np.float32)
    expected = 1 / (1 + np.exp(-fitted.model_.predict(Xf).astype(np.float64)))
    np.testing.assert_allclose(
        fitted._predict_proba_one(fitted.model_, Xf), expected, rtol=1e-5
    )


def test_final_mapping_gets_a_bias_at_the_prior(net_data, fitted):
    """pytorch-tabnet's final mapping has no bias (every label would start at
    0.5): the net adds one, at the logit of each label's prevalence."""
    X, Y, _, _ = net_data
    model = tabnet_engine.TabNetRegressor(
        n_d=8, n_a=8, seed=0, device_name="cpu", verbose=0
    )
    tiny()._build_network(model, X.astype(np.float32), Y, 16)
    bias = model.network.tabnet.final_mapping.bias
    assert bias.requires_grad
    np.testing.assert_allclose(bias.detach().numpy(), _prior_logits(Y), rtol=1e-6)
    # a fitted net has it (trained on), and its pickle holds it
    state = fitted.model_.network.state_dict()
    assert state["tabnet.final_mapping.bias"].shape == (Y.shape[1],)


def test_models_are_seeded_by_the_base(net_data):
    X, Y, _, _ = net_data
    net = tiny(n_seeds=2, max_epochs=1).fit(X, Y)
    assert [m.seed for m in net.models_] == net.seeds_.tolist()
    assert net.models_[0].seed != net.models_[1].seed


def test_aux_targets_train_alongside_and_are_not_predicted(net_data):
    """aux_targets=True: one network with y's and y_aux's outputs; the
    validation loss (early stopping, best epoch) and the predictions are y's;
    the auxiliary outputs' biases start at their prevalence too; a pickle
    keeps it so."""
    import pickle

    X, Y, Y_aux, groups = net_data
    net = tiny(aux_targets=True, n_best_epochs=1, random_state=0)
    net.fit(X, Y, y_aux=Y_aux, groups=groups)
    model = net.models_[0]
    assert model.output_dim == Y.shape[1] + Y_aux.shape[1]
    assert net.n_aux_ == Y_aux.shape[1]
    proba = net.predict_proba(X)
    assert proba.shape == Y.shape
    # the predictions are the sigmoid of the network's first outputs (y's),
    # and the validation metric scores y's outputs alone during a fit
    Xf = X.astype(np.float32)
    logits = model.predict(Xf).astype(np.float64)
    assert logits.shape[1] == Y.shape[1] + Y_aux.shape[1]
    expected = np.clip(1 / (1 + np.exp(-logits[:, : Y.shape[1]])), *net.clip)
    np.testing.assert_allclose(proba, expected, rtol=1e-5)
    metric = tabnet_engine._LogitsLogLoss()
    with tabnet_engine._scoring(Y.shape[1]):
        scored = metric(np.hstack([Y, Y_aux]), logits)
    assert scored == pytest.approx(metric(Y, logits[:, : Y.shape[1]]))
    assert scored != pytest.approx(metric(np.hstack([Y, Y_aux]), logits))
    assert tabnet_engine._N_SCORED.get() is None  # reset after the fit
    again = pickle.loads(pickle.dumps(net))
    np.testing.assert_allclose(again.predict_proba(X), proba)
    # without y_aux, or with aux_targets=False, one output per label of y
    for fitted in (tiny(aux_targets=True).fit(X, Y), tiny().fit(X, Y, y_aux=Y_aux)):
        assert fitted.models_[0].output_dim == Y.shape[1]


# ------------------------------------------------- training: schedule, batches
def test_no_schedule_without_validation(net_data):
    X, Y, _, _ = net_data
    hist = pd.DataFrame(tiny(validation_fraction=None).fit(X, Y).history_)
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


# -------------------------------------------------- the attention masks
@pytest.mark.parametrize("mask_type", ["entmax", "sparsemax"])
@pytest.mark.parametrize("scale", [0.003, 0.3, 3.0])
@pytest.mark.parametrize("width", [5, 64, 65, 300])
def test_top_k_masks_equal_pytorch_tabnets_to_the_bit(mask_type, scale, width):
    """The masks' threshold from torch.topk: forward and backward equal to
    pytorch-tabnet's full-sort functions on these rows, whatever the support
    size (a small scale puts every feature in the support: the rows are
    redone with a doubled k, then with the full sort)."""
    from pytorch_tabnet.sparsemax import entmax15, sparsemax

    reference, top_k = {
        "entmax": (entmax15, tabnet_engine._TopKEntmax15Function.apply),
        "sparsemax": (sparsemax, tabnet_engine._TopKSparsemaxFunction.apply),
    }[mask_type]
    gen = torch.Generator().manual_seed(width)
    X = torch.randn(200, width, generator=gen, dtype=torch.float64) * scale
    X[:50] *= 100  # rows of small supports beside rows of large ones
    grad = torch.randn(200, width, generator=gen, dtype=torch.float64)
    outputs = []
    for function in (reference, top_k):
        x = X.clone().requires_grad_()
        out = function(x.clone(), -1)
        (dx,) = torch.autograd.grad(out, x, grad)
        outputs.append((out.detach(), dx))
    (expected, expected_grad), (got, got_grad) = outputs
    assert torch.equal(got, expected)
    assert torch.equal(got_grad, expected_grad)
    supports = (expected > 0).sum(-1)
    if width > tabnet_engine._TOP_K and scale < 0.01:
        assert supports.max() > tabnet_engine._TOP_K  # the redo path ran


@pytest.mark.parametrize("mask_type", ["entmax", "sparsemax"])
def test_fits_with_top_k_masks_equal_fits_with_pytorch_tabnets(
    net_data, monkeypatch, mask_type
):
    """Training and prediction on these rows are unchanged by the faster
    masks (k = 2 on 6 features: the top-k path and its redo both run), and a
    pickled net gets them back."""
    import pickle

    X, Y, _, _ = net_data
    monkeypatch.setattr(tabnet_engine, "_TOP_K", 2)
    net = tiny(mask_type=mask_type).fit(X, Y)
    selectors = [
        m.selector for m in net.model_.network.modules() if hasattr(m, "selector")
    ]
    assert selectors and all(
        isinstance(s, tabnet_engine._TopKSelector) for s in selectors
    )
    loaded = pickle.loads(pickle.dumps(net))
    assert all(
        isinstance(m.selector, tabnet_engine._TopKSelector)
        for m in loaded.model_.network.modules()
        if hasattr(m, "selector")
    )
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    monkeypatch.setattr(tabnet_engine, "_use_top_k_selectors", lambda network: None)
    plain = tiny(mask_type=mask_type).fit(X, Y)
    assert not any(
        isinstance(m, tabnet_engine._TopKSelector)
        for m in plain.model_.network.modules()
    )
    np.testing.assert_array_equal(net.predict_proba(X), plain.predict_proba(X))


def _grouped_encoder_copy(network):
    """A copy of ``network`` whose encoder is pytorch-tabnet's own class."""
    import copy

    from pytorch_tabnet.tab_network import TabNetEncoder

    plain = copy.deepcopy(network)
    plain.tabnet.encoder.__class__ = TabNetEncoder
    return plain


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_encoder_without_the_identity_product_is_pytorch_tabnets(net_data, mode):
    """Without grouped features the encoder skips the product of each step's
    mask by the identity matrix: outputs, sparsity loss and every gradient
    are pytorch-tabnet's, bit for bit (three steps, so that the prior
    update and each step's mask go through it)."""
    X, Y, _, _ = net_data
    net = tiny(n_steps=3).fit(X, Y)
    network = net.model_.network
    assert type(network.tabnet.encoder) is tabnet_engine._IdentityGroupsEncoder
    plain = _grouped_encoder_copy(network)
    results = []
    for module in (network, plain):
        getattr(module, mode)()
        module.zero_grad()  # the last training step's gradients are kept
        x = torch.tensor(X[:40], dtype=torch.float32, requires_grad=True)
        out, m_loss = module(x)
        (out.sum() + m_loss).backward()
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        results.append((out, m_loss, x.grad, grads))
    (out, m_loss, x_grad, grads), expected = results
    assert torch.equal(out, expected[0]) and torch.equal(m_loss, expected[1])
    assert torch.equal(x_grad, expected[2])
    assert len(grads) == len(expected[3]) > 0
    assert all(torch.equal(g, e) for g, e in zip(grads, expected[3]))
    # a pickled net gets the encoder back
    import pickle

    loaded = pickle.loads(pickle.dumps(net))
    encoder = loaded.model_.network.tabnet.encoder
    assert type(encoder) is tabnet_engine._IdentityGroupsEncoder


def test_encoder_with_feature_groups_keeps_its_product():
    from pytorch_tabnet.tab_network import TabNet, TabNetEncoder

    groups = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])  # 2 groups
    network = TabNet(3, 2, group_attention_matrix=groups)
    tabnet_engine._skip_identity_groups(network)
    assert type(network.tabnet.encoder) is TabNetEncoder
    network = TabNet(3, 2, group_attention_matrix=torch.eye(3))
    tabnet_engine._skip_identity_groups(network)
    assert type(network.tabnet.encoder) is tabnet_engine._IdentityGroupsEncoder


def test_float64_copy_normalises_each_batch_in_one_chunk(net_data):
    """In eval mode a ghost batch norm normalises chunk by chunk with the
    same running statistics: the float64 copy used to predict does it in
    one chunk, with the same results, and still loads the kept epochs'
    state dicts."""
    from pytorch_tabnet.tab_network import GBN

    X, Y, _, _ = net_data
    fitted = tiny(n_best_epochs=2).fit(X, Y).model_
    network = tabnet_engine._float64_network(fitted.network)
    calls = []
    ghosts = [m for m in network.modules() if isinstance(m, GBN)]
    for ghost in ghosts:
        ghost.bn.register_forward_hook(lambda *args: calls.append(1))
    with torch.inference_mode():
        network(torch.tensor(X, dtype=torch.float64))
    assert len(X) > 4 * fitted.virtual_batch_size
    assert ghosts and len(calls) == len(ghosts)  # one call each
    chunked = tabnet_engine._float64_network(fitted.network)
    for ghost in chunked.modules():  # pytorch-tabnet's chunks again
        if isinstance(ghost, GBN):
            ghost.virtual_batch_size = fitted.virtual_batch_size
    x = torch.tensor(X, dtype=torch.float64)
    for state in fitted.epoch_states_:
        network.load_state_dict(state)
        chunked.load_state_dict(state)
        with torch.inference_mode():
            np.testing.assert_allclose(
                network(x)[0].numpy(), chunked(x)[0].numpy(), rtol=1e-14, atol=1e-15
            )


# ------------------------------------------------------------------ mixup
def test_mixup_mixes_rows_and_targets_alike():
    """Each chosen row becomes b * row + (1 - b) * another row of the batch,
    b in [0.5, 1], its targets with the same b; p=0 leaves the batch as is;
    the draws come from the augmentation's own seed, not the global ones."""
    X = torch.eye(20)  # row i is e_i: a mixed row shows its two parts
    y = X @ torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    np_state = np.random.get_state()  # noqa: NPY002 (the global state is the point)
    torch_state = torch.get_rng_state()
    mix = tabnet_engine._Mixup(p=1.0, alpha=0.5, seed=3)
    mix._set_seed()
    Xm, ym = mix(X.clone(), y.clone())
    assert not torch.equal(Xm, X)
    # b * e_i + (1 - b) * e_j: weights summing to 1, at most two rows, the
    # row itself at least half
    torch.testing.assert_close(Xm.sum(dim=1), torch.ones(20))
    assert ((Xm > 0).sum(dim=1) <= 2).all()
    assert (torch.diagonal(Xm) >= 0.5).all()
    # the targets are mixed with the same weights (y is linear in X's rows)
    torch.testing.assert_close(ym, Xm @ torch.linalg.pinv(X) @ y)
    # reseeding replays the same mix; the global random states are untouched
    mix._set_seed()
    torch.testing.assert_close(mix(X.clone(), y.clone()), (Xm, ym))
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    none = tabnet_engine._Mixup(p=0.0, alpha=0.5, seed=3)
    none._set_seed()
    torch.testing.assert_close(none(X.clone(), y.clone()), (X, y))


def test_mixup_trains_reproducibly_and_changes_the_fit(net_data):
    X, Y, _, groups = net_data
    plain = tiny(mixup=0.0, random_state=0).fit(X, Y, groups=groups).predict_proba(X)
    mixed = tiny(mixup=0.5, random_state=0).fit(X, Y, groups=groups)
    again = tiny(mixup=0.5, random_state=0).fit(X, Y, groups=groups)
    np.testing.assert_allclose(mixed.predict_proba(X), again.predict_proba(X))
    assert not np.allclose(mixed.predict_proba(X), plain)
    with pytest.raises(ValueError, match="mixup"):
        tiny(mixup=1.5).fit(X, Y)


# ------------------------------------------------- several best epochs kept
def test_n_best_epochs_averages_the_epochs_of_lowest_validation_loss(net_data):
    """n_best_epochs=3: the weights of the three epochs of lowest validation
    loss are kept (the best first, the network's own), and the prediction is
    the mean of their probabilities; a pickle keeps them."""
    import pickle

    X, Y, _, groups = net_data
    net = tiny(
        n_best_epochs=3, average_epochs="proba", max_epochs=8, random_state=0
    ).fit(X, Y, groups=groups)
    model = net.models_[0]
    assert len(model.epoch_states_) == 3
    hist = pd.DataFrame(net.history_)
    lowest = hist.nsmallest(3, "valid_loss")["epoch"].tolist()
    assert hist.loc[hist["best"], "epoch"].item() == lowest[0]
    assert sorted(hist.loc[hist["kept"], "epoch"]) == sorted(lowest)
    best = model.network.state_dict()
    for k, v in model.epoch_states_[0].items():
        torch.testing.assert_close(v, best[k].cpu())
    # each kept epoch's weights, predicted alone, averaged
    Xf, single = X.astype(np.float32), []
    for state in model.epoch_states_:
        one = pickle.loads(pickle.dumps(model))
        one.epoch_states_ = None
        one.network.load_state_dict(state)
        single.append(net._predict_proba_one(one, Xf))
    np.testing.assert_allclose(
        net._predict_proba_one(model, Xf), np.mean(single, axis=0), rtol=1e-12
    )
    assert not np.allclose(single[0], single[1])
    np.testing.assert_allclose(
        pickle.loads(pickle.dumps(net)).predict_proba(X), net.predict_proba(X)
    )
    # one kept epoch keeps no copies
    assert tiny(n_best_epochs=1).fit(X, Y).models_[0].epoch_states_ is None


def test_n_best_epochs_without_validation_keeps_the_last_epochs(net_data):
    X, Y, _, _ = net_data
    net = tiny(
        n_best_epochs=2, average_epochs="proba", max_epochs=4, validation_fraction=None
    ).fit(X, Y)
    model = net.models_[0]
    assert len(model.epoch_states_) == 2
    assert pd.DataFrame(net.history_)["kept"].tolist() == [False, False, True, True]
    last = model.network.state_dict()  # no validation: the last epoch's
    for k, v in model.epoch_states_[0].items():
        torch.testing.assert_close(v, last[k].cpu())


def test_n_best_epochs_can_average_the_weights(net_data):
    """average_epochs='weights': one network whose weights (and batch-norm
    statistics) are the mean of the kept epochs'; no copies kept."""
    X, Y, _, groups = net_data
    kw = dict(n_best_epochs=3, max_epochs=8, random_state=0)
    by_proba = tiny(**kw, average_epochs="proba").fit(X, Y, groups=groups)
    by_weights = tiny(**kw, average_epochs="weights").fit(X, Y, groups=groups)
    model = by_weights.models_[0]
    assert model.epoch_states_ is None
    states = by_proba.models_[0].epoch_states_  # the same training
    for k, v in model.network.state_dict().items():
        mean = torch.stack([s[k] for s in states]).double().mean(0)
        if v.is_floating_point():
            torch.testing.assert_close(v.double(), mean, rtol=1e-5, atol=1e-6)
    assert not np.allclose(by_weights.predict_proba(X), by_proba.predict_proba(X))


def test_per_target_epochs_predict_each_target_by_its_own_best_epoch(net_data):
    """average_epochs='per_target': each target is predicted by the kept epoch
    of its lowest log loss on the validation rows; the same training as
    'proba'; a pickle keeps the choice; without validation, the mean."""
    import pickle

    from moa_sklearn.metrics import columnwise_log_loss

    X, Y, _, groups = net_data
    kw = dict(n_best_epochs=3, max_epochs=8, random_state=0)
    by_target = tiny(**kw, average_epochs="per_target").fit(X, Y, groups=groups)
    by_proba = tiny(**kw, average_epochs="proba").fit(X, Y, groups=groups)
    model = by_target.models_[0]
    assert by_proba.models_[0].epoch_choice_ is None
    # each kept epoch alone, on the validation rows and on all rows
    rows = by_target.validation_indices_
    Xf, single = X.astype(np.float32), []
    for state in model.epoch_states_:
        one = pickle.loads(pickle.dumps(model))
        one.epoch_states_, one.epoch_choice_ = None, None
        one.network.load_state_dict(state)
        single.append(by_target._predict_proba_one(one, Xf))
    losses = np.stack([columnwise_log_loss(Y[rows], p[rows]) for p in single])
    np.testing.assert_array_equal(model.epoch_choice_, losses.argmin(axis=0))
    assert len(np.unique(model.epoch_choice_)) > 1  # not one epoch for all
    chosen = np.take_along_axis(
        np.stack(single), model.epoch_choice_[None, None, :], axis=0
    )[0]
    np.testing.assert_allclose(
        by_target._predict_proba_one(model, Xf), chosen, rtol=1e-12
    )
    # on the validation rows, no kept epoch alone does better on any target
    mine = columnwise_log_loss(Y[rows], by_target._predict_proba_one(model, Xf)[rows])
    assert np.all(mine <= losses.min(axis=0) + 1e-12)
    np.testing.assert_allclose(  # 'proba' averaged the same epochs' weights
        np.mean(single, axis=0),
        by_proba._predict_proba_one(by_proba.models_[0], Xf),
        rtol=1e-10,
    )
    again = pickle.loads(pickle.dumps(by_target))
    np.testing.assert_array_equal(again.models_[0].epoch_choice_, model.epoch_choice_)
    np.testing.assert_allclose(again.predict_proba(X), by_target.predict_proba(X))
    # without validation there is nothing to choose on: the mean
    plain = tiny(
        n_best_epochs=2,
        average_epochs="per_target",
        max_epochs=3,
        validation_fraction=None,
    ).fit(X, Y)
    assert plain.models_[0].epoch_choice_ is None
    assert len(plain.models_[0].epoch_states_) == 2
