import io
import os
import signal
import sys

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


@pytest.fixture(scope="session")
def net_data():
    """Data of the nets' tests: 120 rows of 20 drugs x 6 replicates.

    ``(X, Y, Y_aux, groups)``: 6 features, 4 labels (the last never
    positive), 3 auxiliary targets, the drug id of each row.
    """
    import numpy as np

    rng = np.random.RandomState(0)
    n_drugs, reps = 20, 6
    groups = np.repeat(np.arange(n_drugs), reps)
    drug_y = (rng.uniform(size=(n_drugs, 4)) < 0.3).astype(np.int64)
    drug_y[:, 3] = 0
    drug_aux = (rng.uniform(size=(n_drugs, 3)) < 0.3).astype(np.int64)
    Y, Y_aux = drug_y[groups], drug_aux[groups]
    X = rng.normal(size=(n_drugs * reps, 6)) + 1.5 * np.hstack([Y[:, :3], Y_aux])
    return X, Y, Y_aux, groups


@pytest.fixture
def sigint_raises():
    """SIGINT raises KeyboardInterrupt during the test, whatever was inherited.

    A process started in the background by a shell without job control (as a
    CI runner may start the suite) inherits SIGINT *ignored*, and Python then
    keeps it ignored: a test's own Ctrl-C would be lost, and a fit meant to be
    interrupted would run on. Python's default handler is set for the test
    and the inherited one restored after it.
    """
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("os.kill(pid, SIGINT) ends the process on Windows")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def ctrl_c_at_epoch(monkeypatch, sigint_raises):
    """Press Ctrl-C (a real SIGINT to this process) at the end of an epoch.

    ``ctrl_c_at_epoch(callback_class, epoch_of, at=2)`` patches
    ``callback_class.on_epoch_end`` (a callback of one of the package's
    engines) so that, once ``epoch_of(self, *args, **kwargs)`` (the 1-based
    number of the epoch that ends) equals ``at``, the process sends itself
    SIGINT, which Python turns into a ``KeyboardInterrupt`` right there.
    """

    def install(callback_class, epoch_of, at=2):
        original = callback_class.on_epoch_end

        def on_epoch_end(self, *args, **kwargs):
            original(self, *args, **kwargs)
            if epoch_of(self, *args, **kwargs) == at:
                os.kill(os.getpid(), signal.SIGINT)

        monkeypatch.setattr(callback_class, "on_epoch_end", on_epoch_end)

    return install


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


@pytest.fixture
def terminal(monkeypatch):
    """A function that replaces standard error by a terminal-like stream and
    returns it (call it in the test: pytest's capture resets sys.stderr
    between the set-up and the test)."""

    def attach():
        stream = _Terminal()
        monkeypatch.setattr(sys, "stderr", stream)
        return stream

    return attach


@pytest.fixture
def progress_bars(monkeypatch):
    """The tqdm bars that the package creates during the test (a list)."""
    import tqdm

    bars = []

    class Recorded(tqdm.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.drawn = not self.disable  # close() disables a bar
            bars.append(self)

    monkeypatch.setattr(tqdm, "tqdm", Recorded)
    return bars
