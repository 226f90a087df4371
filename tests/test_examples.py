"""The main-job example runs end to end (on a tiny world) and prints its table."""

import subprocess
import sys
from pathlib import Path

import pytest

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
            "3",
            "--epochs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for row in ("constant prior", "logistic regression", "two-step net", "Bayes"):
        assert row in out
    # the Bayes optimum of the world beats the constant prior
    lines = {line.split("  ")[0]: line.split() for line in out.splitlines()}
    prior = float(next(v for k, v in lines.items() if k == "constant prior")[2])
    bayes = [v for k, v in lines.items() if k.startswith("Bayes optimum")][0]
    assert float(bayes[-3]) < prior
