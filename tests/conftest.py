import os

# Keep the heavy engines quiet and small on a 2-core machine.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from moa_sklearn.datasets import make_moa  # noqa: E402


@pytest.fixture(scope="session")
def small_world():
    """A small make_moa world (fast): 600 train rows, 300 test rows."""
    return make_moa(
        n_samples=600,
        n_test=300,
        n_genes=40,
        n_cells=12,
        n_scored=12,
        n_nonscored=10,
        random_state=0,
    )
