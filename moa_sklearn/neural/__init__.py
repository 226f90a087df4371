"""Multilabel neural-net classifiers that share one scikit-learn base.

- :class:`BaseMultilabelNet`: the shared base (validation, inner split,
  label smoothing, seeds, clipping, devices, persistence, routing, tags).
- :class:`TwoStepNetClassifier`: the two-step PyTorch net of the lish-moa
  recipe, trained with skorch (needs ``pip install "moa-sklearn[torch]"``).
- :class:`KerasNetClassifier`: the Keras 3 MLP of the public notebooks, on
  TensorFlow unless ``KERAS_BACKEND`` names another backend (needs ``pip
  install "moa-sklearn[keras]"``).
- :class:`TabNetMultilabelClassifier`: pytorch-tabnet on the logits of the
  labels (needs ``pip install "moa-sklearn[torch]"``).

The engines are imported on first access to their estimator, so ``import
moa_sklearn.neural`` does not import torch, keras or pytorch-tabnet.
"""

import importlib

from ..utils._engines import ENGINES, install_hint
from ._base import BaseMultilabelNet

# public name -> (private module, what to install when its import fails)
_LAZY = {e.cls: (e.module, install_hint(e.extra)) for e in ENGINES.values()}

__all__ = ["BaseMultilabelNet", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        module_name, extra = _LAZY[name]
        try:
            module = importlib.import_module(module_name, __name__)
        except ImportError as exc:
            raise ImportError(
                f"moa_sklearn.neural.{name} needs an optional engine that is not "
                f"installed ({exc}). Install it with: {extra}"
            ) from exc
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
