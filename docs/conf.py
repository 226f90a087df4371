"""Sphinx configuration of the moa-sklearn documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``
(needs ``pip install -r requirements/cpu.txt -e ".[docs]"``; the ``docs``
extra brings the engines, since the API reference imports every estimator).
Nothing here reaches the network.
"""

import logging
import os
import re
import sys
from pathlib import Path

# The engines read these when first imported (by autodoc): the package's
# Keras backend and quiet TensorFlow logs, unless the environment says else.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import moa_sklearn  # noqa: E402

project = "moa-sklearn"
author = "moa-sklearn developers"
copyright = "moa-sklearn developers, BSD-3-Clause"
release = moa_sklearn.__version__
version = release

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# -- MyST: the user guide is the docs/*.md pages ---------------------------
# heading anchors make links such as ``benchmarks.md#features`` resolve
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# -- API reference ----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
# class pages (docs/_templates/autosummary/class.rst) list every method,
# those inherited from scikit-learn included (get_params, set_output, ...)
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
# numpydoc renders the sections; autosummary lists the members (the
# scikit-learn-contrib template's settings)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# type descriptions are free text ("array-like of shape (n, k)"), not
# cross-reference targets
numpydoc_xref_param_type = False

# no intersphinx: the build must not need the network
intersphinx_mapping = {}

# -- HTML -------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"moa-sklearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": True,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
html_static_path = []


# -- Docstrings inherited from scikit-learn ---------------------------------
# The methods that scikit-learn adds to every estimator (``set_fit_request``,
# ``get_params``, ...) carry roles that point into scikit-learn's own
# documentation (``:term:`meta-estimator```, ``:ref:`User Guide
# <metadata_routing>```). Without intersphinx they cannot resolve: render
# their text instead. The package's own docstrings are left untouched.
_SKLEARN_TERM = re.compile(r":term:`([^`<]+?)(?:\s*<[^`>]+>)?`")
_SKLEARN_REF = re.compile(r":ref:`([^`<]+?)\s*<[^`>]+>`|:ref:`([^`]+)`")


def _plain_sklearn_roles(app, what, name, obj, options, lines):
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        line = _SKLEARN_TERM.sub(r"*\1*", line)
        lines[i] = _SKLEARN_REF.sub(lambda m: m.group(1) or m.group(2), line)


# -- Quiet build -------------------------------------------------------------
# Two info lines of the extensions are dumps, not progress: myst-parser prints
# its whole configuration object and autosummary the list of every page it
# reads. Drop those two messages; warnings and everything else stay.
class _DropDumps(logging.Filter):
    _STARTS = ("myst v", "[autosummary] generating autosummary for:")

    def filter(self, record):
        message = re.sub(r"\x1b\[[0-9;]*m", "", str(record.msg))  # no colours
        return not message.startswith(self._STARTS)


for _name in (
    "sphinx.myst_parser.sphinx_ext.main",
    "sphinx.sphinx.ext.autosummary",
    "sphinx.sphinx.ext.autosummary.generate",
):
    logging.getLogger(_name).addFilter(_DropDumps())


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_roles)
