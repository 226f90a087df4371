"""The examples run end to end (on tiny worlds) and print their results."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import sklearn

from moa_sklearn.exceptions import DrugLeakageWarning

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs_on_a_tiny_world():
    pytest.importorskip("torch")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "quickstart.py"),
            "--n-samples",
            "900",
            "--folds",
            "2",
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DrugLeakageWarning" not in result.stderr  # leak-free as written
    out = result.stdout
    for row in ("constant prior", "logistic regression", "two-step net", "Bayes"):
        assert row in out
    # the Bayes optimum of the world beats the constant prior
    lines = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    prior = float(next(v for k, v in lines.items() if k == "constant prior")[2])
    bayes = [v for k, v in lines.items() if k.startswith("Bayes optimum")][0]
    assert float(bayes[-3]) < prior


def test_readme_example_runs():
    pytest.importorskip("torch")
    readme = (ROOT / "README.md").read_text()
    code = readme.split("## Example", 1)[1].split("```python", 1)[1].split("```")[0]
    # the same code on a smaller world and fewer epochs, so the test stays short
    code = code.replace("n_samples=3000", "n_samples=800, n_test=0").replace(
        "dropouts=(0.3, 0.2), random_state=0)",
        "dropouts=(0.3, 0.2), random_state=0, "
        "max_epochs_pretrain=2, max_epochs_finetune=2)",
    )
    assert "max_epochs_pretrain=2" in code and "n_samples=800" in code
    namespace = {}
    # leak-free as written: a DrugLeakageWarning fails the test; the example's
    # set_config is undone when the context ends
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("error", DrugLeakageWarning)
        exec(compile(code, "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert scores.shape == (5,) and (scores < 0).all()
    assert not sklearn.get_config()["enable_metadata_routing"]


def _run_example(script, *args, tmp_path):
    """Run an example script on small data; its figure goes to a file."""
    pytest.importorskip("matplotlib")
    figure = tmp_path / "figure.png"
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        # small data: one thread per process is faster than oversubscription
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args, "--save", figure],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DrugLeakageWarning" not in result.stderr  # leak-free as written
    assert figure.is_file() and figure.stat().st_size > 0
    return result.stdout


def test_plot_features_cv_runs(tmp_path):
    out = _run_example(
        "plot_features_cv.py", "--n-samples", "400", "--folds", "3", tmp_path=tmp_path
    )
    assert "MLP on the recipe" in out and "constant prior" in out
    assert "best model on the held-out test drugs" in out


def test_plot_blend_runs(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("pytorch_tabnet")
    out = _run_example(
        "plot_blend.py",
        "--n-samples",
        "300",
        "--folds",
        "2",
        "--inner-folds",
        "2",
        "--models",
        "twostep",
        "tabnet",
        tmp_path=tmp_path,
    )
    assert "blend, drug-grouped 2-fold CV" in out
    assert out.count("weights {'twostep'") == 2


def test_quickstart_help_describes_each_flag_and_the_default_run():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = " ".join(result.stdout.split())
    assert "full-size CV (23,814 rows, 5 folds)" in text
    for flag in ("--n-samples N", "--folds K", "--epochs E", "--seed", "--skip-net"):
        after = text.split(flag, 2)[-1]
        assert after.split("--", 1)[0].strip(), f"{flag} has no help"
    assert "(default: 23814)" in text and "(default: 12)" in text
