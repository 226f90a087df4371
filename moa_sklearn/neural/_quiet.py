"""Keep an engine's log noise off the user's terminal, during the package's calls.

TensorFlow writes its C++ logs straight to file descriptor 2, where Python's
``warnings`` and ``logging`` filters cannot reach them: a start-up banner when
it is imported (``oneDNN custom operations are on ...``, the CPU instruction
set, absl's ``WARNING: All log messages before absl::InitializeLog() ...``)
and, on every Keras ``fit``, a ~700-character error-level line
``E0000 ... NodeDef mentions attribute use_unbounded_threadpool ...`` that
says nothing to the user (a tf.data graph attribute unknown to the runtime).
The ``TF_CPP_MIN_LOG_LEVEL`` environment variable would have to be set before
TensorFlow is imported, for the whole process, and hides real errors too.

:func:`quiet_engine_logs` instead redirects file descriptor 2 for the span
of one of the package's own calls (the import of Keras, a ``fit``), drops the
lines known to be noise and writes every other line (real warnings and
errors, Python warnings) to stderr when the call ends. Setting
``TF_CPP_MIN_LOG_LEVEL=0`` asks for every log line: nothing is filtered then.
"""

import contextlib
import os
import re
import sys
import tempfile
import threading

__all__ = ["quiet_engine_logs"]

# whole lines that carry no information for a user of the package
_NOISE = re.compile(
    rb"^(?:"
    rb"WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "  # info-level C++ logs (banners)
    rb"|To enable the following instructions: "  # 2nd line of the CPU banner
    rb"|E\d{4} [\d:.]+ +\d+ node_def_util\.cc:\d+\] NodeDef mentions attribute "
    rb"use_unbounded_threadpool "
    rb")"
)

_lock = threading.Lock()
_active = False


def _is_noise(line):
    return _NOISE.match(line) is not None


@contextlib.contextmanager
def quiet_engine_logs():
    """Drop the engine's noise lines written to file descriptor 2 in the block.

    The other lines are written to file descriptor 2 when the block ends
    (also when it raises, e.g. on Ctrl-C). Only the outermost of nested or
    concurrent blocks redirects; without a usable file descriptor 2, or with
    ``TF_CPP_MIN_LOG_LEVEL=0``, the block runs unfiltered.
    """
    global _active
    with _lock:
        mine = not _active and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0"
        if mine:
            _active = True
    if not mine:
        yield
        return
    try:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, AttributeError, ValueError):
            yield
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(OSError, AttributeError, ValueError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = b"".join(
                    line for line in tmp.read().splitlines(True) if not _is_noise(line)
                )
                view = memoryview(kept)
                while view:
                    view = view[os.write(2, view) :]
    finally:
        with _lock:
            _active = False
