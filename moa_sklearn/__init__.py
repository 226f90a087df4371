"""scikit-learn compatible multilabel prediction of drug Mechanisms of Action.

The package makes the medal-winning recipe of Kaggle's lish-moa competition
(2020) composable: transformers, a drug-grouped splitter, the competition
metric, neural multilabel classifiers and a stacking blend, all ordinary
scikit-learn estimators.

Sub-packages are imported on first use, so ``import moa_sklearn`` stays light:
heavy engines (torch, keras, pytorch-tabnet, dask) are only imported by the
estimators that need them.
"""

import importlib

__version__ = "0.1.0.dev0"

_SUBMODULES = [
    "datasets",
    "metrics",
    "model_selection",
    "preprocessing",
    "neural",
    "ensemble",
    "recipes",
    "exceptions",
    "utils",
]

__all__ = _SUBMODULES + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
