"""The nets' engines: one table of the built-in models and what they need.

For each built-in model of :func:`~moa_sklearn.recipes.make_moa_pipeline`, the
estimator class in :mod:`moa_sklearn.neural`, the private module that defines
it, the Python modules it imports and the pip extra that installs them. The
recipes, the command line and :mod:`moa_sklearn.neural` read it; importing it
imports no engine.
"""

import importlib.util
from collections import namedtuple

_Engine = namedtuple("_Engine", "cls module requires extra")

# model name -> its estimator, the module of moa_sklearn.neural that defines
# it, the modules that module imports, the extra that installs them
ENGINES = {
    "twostep": _Engine("TwoStepNetClassifier", "._torch", ("torch", "skorch"), "torch"),
    "keras": _Engine("KerasNetClassifier", "._keras", ("keras",), "keras"),
    "tabnet": _Engine(
        "TabNetMultilabelClassifier", "._tabnet", ("torch", "pytorch_tabnet"), "torch"
    ),
}


def install_hint(*extras):
    """The pip command that installs ``extras`` (default: every engine's).

    >>> install_hint("torch")
    'pip install "moa-sklearn[torch]"'
    >>> install_hint()
    'pip install "moa-sklearn[torch]" and/or "moa-sklearn[keras]"'
    """
    extras = dict.fromkeys(extras or (e.extra for e in ENGINES.values()))
    return "pip install " + " and/or ".join(f'"moa-sklearn[{x}]"' for x in extras)


TORCH_INSTALL = install_hint("torch")
KERAS_INSTALL = install_hint("keras")


def installed(name):
    """Whether every module that the model ``name`` imports is installed."""
    return all(importlib.util.find_spec(m) is not None for m in ENGINES[name].requires)
