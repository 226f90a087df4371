"""The documentation builds without a warning and covers the public API.

The Sphinx build (``python -m sphinx -W --keep-going -b html docs OUT``) runs
once per session, in a subprocess; the API reference imports every
estimator, so it needs the engines (torch, skorch, pytorch-tabnet, keras) and
the ``docs`` extra. The checks of the pages' sources need neither.
"""

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# public module -> the module whose path names its API pages
_API_MODULES = {
    "moa_sklearn.datasets": "moa_sklearn.datasets",
    "moa_sklearn.metrics": "moa_sklearn.metrics",
    "moa_sklearn.model_selection": "moa_sklearn.model_selection",
    "moa_sklearn.preprocessing": "moa_sklearn.preprocessing",
    "moa_sklearn.neural": "moa_sklearn.neural",
    "moa_sklearn.ensemble": "moa_sklearn.ensemble",
    "moa_sklearn.recipes": "moa_sklearn.recipes",
    "moa_sklearn.exceptions": "moa_sklearn.exceptions",
    "moa_sklearn.utils": "moa_sklearn.utils.discovery",
}


def _public_names():
    """(public module, name, page stem) of every name in a module's __all__."""
    out = []
    for module, page_module in _API_MODULES.items():
        for name in importlib.import_module(module).__all__:
            out.append((module, name, f"{page_module}.{name}"))
    return out


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    for name in ("sphinx", "myst_parser", "numpydoc", "pydata_sphinx_theme"):
        pytest.importorskip(name)
    for name in ("torch", "skorch", "pytorch_tabnet", "keras"):
        pytest.importorskip(name)  # autodoc imports every estimator
    out = tmp_path_factory.mktemp("docs_html")
    env = {
        **os.environ,
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(out / ".doctrees"),
            str(DOCS),
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        print(result.stdout[-5000:])
        print(result.stderr[-10000:])
    assert result.returncode == 0, "the docs build failed or warned; see stderr"
    out.joinpath("build-log.txt").write_text(result.stdout + result.stderr)
    return out


def test_docs_build_prints_no_configuration_dump(html):
    log = (html / "build-log.txt").read_text()
    assert "build succeeded" in log  # the log of a build without -q
    assert "MdParserConfig" not in log  # myst-parser's configuration object
    assert "generating autosummary for:" not in log  # the list of every page


def test_docs_build_has_every_page(html):
    for page in sorted(DOCS.glob("*.md")):
        assert (html / f"{page.stem}.html").is_file(), page.name
    assert (html / "api.html").is_file()


def test_api_page_for_every_estimator(html):
    from moa_sklearn.utils import all_estimators

    public = {name: stem for _, name, stem in _public_names()}
    estimators = all_estimators()
    assert len(estimators) >= 12
    api = (html / "api.html").read_text(encoding="utf-8")
    for name, _ in estimators:
        assert name in public, f"{name} is in no public module's __all__"
        page = html / "generated" / f"{public[name]}.html"
        assert page.is_file(), f"no API page for {name}"
        text = page.read_text(encoding="utf-8")
        # the numpydoc sections of the class docstring are rendered
        assert "Parameters" in text, name
        assert f"generated/{public[name]}.html" in api, name


def test_api_page_for_every_public_function(html):
    api = (html / "api.html").read_text(encoding="utf-8")
    for module, name, stem in _public_names():
        page = html / "generated" / f"{stem}.html"
        assert page.is_file(), f"no API page for {module}.{name}"
        assert f"generated/{stem}.html" in api, f"{module}.{name}"


def _toctree_entries(text):
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append(line)
    return entries


def test_every_page_is_in_the_toctree():
    entries = _toctree_entries((DOCS / "index.md").read_text(encoding="utf-8"))
    pages = {p.stem for p in DOCS.glob("*.md")} | {p.stem for p in DOCS.glob("*.rst")}
    pages.discard("index")
    assert pages <= set(entries), f"not in index.md's toctree: {pages - set(entries)}"
    assert {"getting_started", "pitfalls", "benchmarks", "api"} <= set(entries)


@pytest.mark.parametrize("marker", ["main-command", "test-command"])
def test_getting_started_commands_are_the_readmes(marker):
    def command(path):
        text = path.read_text(encoding="utf-8")
        block = text.split(f"<!-- {marker} -->", 1)[1]
        return block.split("```bash\n", 1)[1].split("\n```", 1)[0]

    readme = command(ROOT / "README.md")
    assert command(DOCS / "getting_started.md") == readme
    if marker == "test-command":
        assert "docs" in readme.split('".[', 1)[1].split("]", 1)[0].split(",")


def _fenced_blocks(text):
    """(info string, body) of every fenced code block of a Markdown text."""
    return re.findall(r"^```([^\n]*)\n(.*?)^```", text, flags=re.S | re.M)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_examples_are_doctests_or_compile(page):
    """Examples are ``pycon`` doctests (run by pytest); the few ``python``
    blocks that need a cluster at least compile; no bare ``>>>`` prompt (it
    would render as a block quote)."""
    text = (DOCS / page).read_text(encoding="utf-8")
    outside = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    assert not re.search(r"^>>>", outside, flags=re.M), "a >>> outside a fence"
    for info, body in _fenced_blocks(text):
        if info.strip() == "python":
            compile(body, page, "exec")
        elif info.strip() == "pycon":
            assert body.lstrip().startswith(">>>")
            # doctest reads the expected output up to a blank line
            assert body.endswith("\n\n"), "a pycon block must end with a blank line"
