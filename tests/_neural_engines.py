"""The nets' engines as the tests see them: each at a tiny configuration.

:class:`Engine` says, for one engine (the two-step PyTorch net, the Keras net,
TabNet), how to build a tiny net of it and what to expect of it: the shared
contract (test_neural_contract.py) runs over :data:`ENGINES`, and each
engine's own test file starts from the same tiny configuration. An
``engine_*`` function skips the calling test (module) when its engine is not
installed.
"""

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest


@dataclass
class Engine:
    """One engine of the contract: its estimator and how to test it."""

    cls: type
    tiny: dict  # a tiny, fast configuration (besides device and random_state)
    saturate: dict  # outputs saturate
    long: dict  # trains long, no early stopping
    best_epoch: dict  # the best epoch is not the last one (noise labels)
    untrained: dict  # a learning rate of ~0 and 1 epoch
    bad_params: list  # (params, the name in the error) of this engine
    model_type: type  # of models_[0]
    n_outputs: Callable  # of a fitted model
    check_payload: Callable  # of a pickled model
    gpu_device: str  # device_ of a net trained on a GPU
    no_gpu: Callable  # (monkeypatch): the machine has no GPU; torch.load calls
    no_gpu_match: str
    loaded_device: Callable  # (net): where the loaded models are
    ctrl_c: tuple  # (callback class, epoch_of) for the ctrl_c_at_epoch fixture
    verbose_log: str  # in the output of a fit with verbose=2
    noisy_modules: tuple  # the engine's warnings come from these files
    prior_atol: float = 0.02
    progress_step: str = ""  # the step in the progress bar, at the end
    plateau: bool = False  # early stopping and ReduceLROnPlateau
    best_index: int | None = None  # where best_epoch's best epoch is, where known

    def params(self, **params):
        """The tiny configuration (on the CPU, seeded), updated by ``params``."""
        return {"device": "cpu", "random_state": 0, **self.tiny, **params}

    def make(self, **params):
        """A tiny net of this engine, with ``params`` changed."""
        return self.cls(**self.params(**params))

    def epochs(self, n):
        """Parameters that set every maximum number of epochs to ``n``."""
        return {
            name: n for name in self.cls().get_params() if name.startswith("max_epochs")
        }


def _no_cuda(monkeypatch):
    """Torch sees no GPU; the calls of torch.load are recorded."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    calls = []
    real_load = torch.load

    def spy_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy_load)
    return calls


def _state_bytes(payload):
    assert isinstance(payload["state"], bytes)


# bad values of the MLPs' parameters (two-step, Keras)
_MLP_BAD_PARAMS = [
    (dict(hidden_sizes=()), "hidden_sizes"),
    (dict(dropouts=(0.1,)), "dropouts"),
    (dict(dropouts=1.0), "dropouts"),
    (dict(activation="sigmoid"), "activation"),
    (dict(weight_norm=True), "weight_norm"),
]

# early stopping and ReduceLROnPlateau (Keras, TabNet): bad values, and an
# early stop soon after the best epoch, the learning rate halved on the way
_PLATEAU_BAD_PARAMS = [
    (dict(patience=0), "patience"),
    (dict(learning_rate=0), "learning_rate"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(lr_factor=0.0), "lr_factor"),
    (dict(lr_factor=1.0), "lr_factor"),
]
_PLATEAU_BEST_EPOCH = dict(patience=3, lr_patience=1, lr_factor=0.5)

# what the engines on PyTorch share: pickles of bytes, CUDA devices
_ON_TORCH = dict(
    check_payload=_state_bytes,
    gpu_device="cuda",
    no_gpu=_no_cuda,
    no_gpu_match="no CUDA",
)


def _engine_module(name, needs):
    """``moa_sklearn.neural.<name>``, or a skip when a package it needs is missing."""
    for package in needs:
        pytest.importorskip(package)
    return importlib.import_module(f"moa_sklearn.neural.{name}")


def engine_twostep():
    engine = _engine_module("_torch", ("torch", "skorch"))
    return Engine(
        cls=engine.TwoStepNetClassifier,
        tiny=dict(
            hidden_sizes=(16, 8),
            dropouts=0.1,
            max_epochs_pretrain=2,
            max_epochs_finetune=3,
            unfreeze_every=1,
            batch_size=32,
            n_threads=1,
        ),
        saturate=dict(learning_rate_pretrain=1.0, learning_rate_finetune=1.0),
        long=dict(
            pretrain=False,
            max_epochs_finetune=20,
            learning_rate_finetune=3e-2,
            patience_finetune=None,
        ),
        best_epoch=dict(
            pretrain=False,
            max_epochs_finetune=8,
            learning_rate_finetune=0.3,
            precision="fp32",  # validation losses at bf16 differ by ~1e-4
            # the sigmoid head alone: its validation loss is the log loss of
            # the predictions (with the powerset head, BCE + CE / n_labels)
            powerset=0.0,
            random_state=1,
        ),
        untrained=dict(
            hidden_sizes=(8,),
            dropouts=0.0,
            batch_norm=False,
            pretrain=False,
            max_epochs_finetune=1,
            learning_rate_finetune=1e-9,
        ),
        bad_params=[
            *_MLP_BAD_PARAMS,
            (dict(max_epochs_finetune=0), "max_epochs_finetune"),
            (dict(unfreeze_every=0), "unfreeze_every"),
            (dict(patience_finetune=0), "patience_finetune"),
            (dict(learning_rate_finetune=0), "learning_rate_finetune"),
            (dict(precision="fp16"), "precision"),
            (dict(pct_start=1.0), "pct_start"),
        ],
        model_type=engine.torch.nn.Module,
        n_outputs=lambda model: model.config["n_outputs"],
        **_ON_TORCH,
        loaded_device=lambda net: next(net.models_[0].parameters()).device.type,
        ctrl_c=(engine._EpochHook, lambda cb, net, **kw: len(net.history)),
        verbose_log="valid_loss",
        noisy_modules=("skorch",),
        prior_atol=0.01,
        progress_step="finetune, ",
    )


def engine_keras():
    engine = _engine_module("_keras", ("keras",))

    def no_gpu(monkeypatch):
        monkeypatch.setattr(engine, "_gpu_count", lambda: 0)

    def check_payload(payload):
        assert isinstance(payload["config"], str)
        assert all(isinstance(w, np.ndarray) for w in payload["weights"])

    return Engine(
        cls=engine.KerasNetClassifier,
        tiny=dict(
            hidden_sizes=(16,),
            dropouts=0.1,
            max_epochs=3,
            batch_size=32,
            learning_rate=1e-2,
        ),
        saturate=dict(learning_rate=0.5, max_epochs=5),
        long=dict(max_epochs=25, learning_rate=3e-2, patience=None),
        # no epoch improves the validation loss by min_delta=1: a plateau
        # from the first epoch on, so training stops after 1 + patience epochs
        best_epoch=dict(_PLATEAU_BEST_EPOCH, max_epochs=30, min_delta=1.0),
        untrained=dict(
            hidden_sizes=(8,), dropouts=0.0, max_epochs=1, learning_rate=1e-9
        ),
        bad_params=[
            *_MLP_BAD_PARAMS,
            *_PLATEAU_BAD_PARAMS,
            (dict(min_delta=-1), "min_delta"),
        ],
        model_type=engine.keras.Model,
        n_outputs=lambda model: model.output_shape[-1],
        check_payload=check_payload,
        gpu_device="gpu:0",
        no_gpu=no_gpu,
        no_gpu_match="sees no GPU",
        loaded_device=lambda net: engine._usable_device(net.device_),
        ctrl_c=(engine._EpochLog, lambda cb, epoch, logs=None: epoch + 1),
        verbose_log="Epoch 1/",
        noisy_modules=("keras", "tensorflow"),
        plateau=True,
        best_index=0,
    )


def engine_tabnet():
    engine = _engine_module("_tabnet", ("torch", "pytorch_tabnet"))
    return Engine(
        cls=engine.TabNetMultilabelClassifier,
        tiny=dict(
            n_d=8,
            n_a=8,
            max_epochs=4,
            batch_size=32,
            virtual_batch_size=16,
            n_seeds=1,
            n_threads=1,
        ),
        saturate=dict(learning_rate=0.3, max_epochs=10),
        long=dict(max_epochs=30, learning_rate=5e-2, patience=None),
        # on noise labels the validation loss bottoms out early, then rises
        # as the net overfits, and training stops long before max_epochs
        # (n_best_epochs=1: the best epoch's weights alone, not an average)
        best_epoch=dict(
            _PLATEAU_BEST_EPOCH,
            max_epochs=60,
            learning_rate=0.1,
            random_state=2,
            n_best_epochs=1,
        ),
        untrained=dict(max_epochs=1, learning_rate=1e-9, batch_size=64),
        bad_params=[
            *_PLATEAU_BAD_PARAMS,
            (dict(n_d=0), "n_d"),
            (dict(n_steps=0), "n_steps"),
            (dict(gamma=0.5), "gamma"),
            (dict(momentum=1.0), "momentum"),
            (dict(mask_type="softmax"), "mask_type"),
            (dict(virtual_batch_size=0), "virtual_batch_size"),
            (dict(lambda_sparse=-1.0), "lambda_sparse"),
            (dict(max_grad_norm=0), "max_grad_norm"),
            (dict(mixup=-0.1), "mixup"),
            (dict(mixup_alpha=0), "mixup_alpha"),
            (dict(n_best_epochs=0), "n_best_epochs"),
            (dict(average_epochs="logits"), "average_epochs"),
        ],
        model_type=engine.TabNetRegressor,
        n_outputs=lambda model: model.output_dim,
        **_ON_TORCH,
        loaded_device=lambda net: net.models_[0].device.type,
        ctrl_c=(engine._EpochTimer, lambda cb, epoch, logs=None: epoch + 1),
        verbose_log="epoch 0",
        noisy_modules=("pytorch_tabnet",),
        plateau=True,
    )


ENGINES = {"twostep": engine_twostep, "keras": engine_keras, "tabnet": engine_tabnet}
