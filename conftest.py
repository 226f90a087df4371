"""Doctest collection without the optional engines.

``pytest --doctest-modules`` imports every module of the package; the engine
modules import torch, skorch, pytorch-tabnet or keras at the top. Without an
extra installed, skip those modules instead of failing the collection (their
tests skip themselves with ``pytest.importorskip``). The same holds for the
pages of ``docs/`` whose examples (doctests) use an engine or dask.

The Sphinx configuration and the build outputs under ``docs/`` are not tests.

The documentation must be leak-free as written: in the doctests (the
docstrings' Examples and the pages under ``docs/``), a
``moa_sklearn.exceptions.DrugLeakageWarning`` is an error.
"""

import importlib.util

import pytest
from _pytest.doctest import DoctestItem

from moa_sklearn.utils._engines import ENGINES

# each engine's module needs what the engine table says; the pages need them all
_ENGINE_MODULES = {
    f"moa_sklearn/neural/{engine.module[1:]}.py": engine.requires
    for engine in ENGINES.values()
}
_ENGINE_MODULES.update(
    {
        "docs/neural.md": ("torch", "skorch", "pytorch_tabnet", "keras"),
        "docs/ensemble.md": ("torch", "skorch"),
        "docs/scale_out.md": ("distributed",),
    }
)

collect_ignore = [
    path
    for path, needs in _ENGINE_MODULES.items()
    if any(importlib.util.find_spec(name) is None for name in needs)
]
collect_ignore += ["docs/conf.py", "docs/_build", "docs/generated"]


_LEAKAGE_IS_AN_ERROR = pytest.mark.filterwarnings(
    "error::moa_sklearn.exceptions.DrugLeakageWarning"
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if isinstance(item, DoctestItem):
            item.add_marker(_LEAKAGE_IS_AN_ERROR)
