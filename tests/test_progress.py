"""The progress bars: drawn on a terminal only, by the main process only."""

import io
import multiprocessing
import sys

import pytest

from moa_sklearn.utils._progress import progress_bar, write_line


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _disabled_in_child(queue):
    sys.stderr = _Terminal()
    queue.put(progress_bar(3, "child", 1).disable)


def test_a_bar_is_drawn_on_a_terminal_only(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Terminal())
    with progress_bar(4, "demo", 1, unit="fit", leave=True) as bar:
        assert not bar.disable
        bar.update(4)
    assert "demo" in sys.stderr.getvalue() and "4/4" in sys.stderr.getvalue()
    assert progress_bar(4, "demo", 0).disable  # verbose=0
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file, a pipe
    assert progress_bar(4, "demo", 1).disable
    write_line("fold 1/5: done")  # log lines are written all the same
    assert sys.stderr.getvalue() == "fold 1/5: done\n"


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)
def test_worker_processes_draw_no_bar():
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_disabled_in_child, args=(queue,))
    child.start()
    disabled = queue.get(timeout=60)
    child.join(timeout=60)
    assert disabled is True
