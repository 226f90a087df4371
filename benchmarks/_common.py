"""What every benchmark records: the machine, the command, the results.

``save(name, results, outdir)`` writes ``<outdir>/<name>.json`` holding the
results next to the machine (CPU, cores, memory, library versions, git
commit) and the exact command that produced them, so that a figure in the
docs can always be traced back and reproduced.
"""

import json
import os
import resource
import shlex
import subprocess
import sys
from pathlib import Path

from moa_sklearn.utils._environment import _bf16_native as _native
from moa_sklearn.utils._environment import _cpu_flags, _cpuinfo
from moa_sklearn.utils._environment import machine as _machine

DOCS_BENCH = Path(__file__).resolve().parent.parent / "docs" / "bench"


def _git_commit():
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def machine():
    """The machine, library versions and git commit, as a JSON-able dict."""
    try:  # imported, so that the record names the GPU, if any
        import torch  # noqa: F401
    except ImportError:
        pass
    return dict(_machine(), git_commit=_git_commit())


def cpu_flags():
    """The speed-relevant instruction-set flags of this CPU (/proc/cpuinfo)."""
    return _cpu_flags(_cpuinfo())


def bf16_native(device="cpu"):
    """Whether the package trains in bf16 on ``device`` here (its own check).

    False where the hardware lacks native bf16 or ``MOA_SKLEARN_NO_BF16`` is set.
    """
    import torch  # noqa: F401  (the check needs it imported)

    if device == "cpu":
        return _native()
    from moa_sklearn.neural._torch_utils import bf16_supported

    return bf16_supported(device)


def command():
    """The command line that runs this process (as typed, best effort)."""
    script = os.path.relpath(sys.argv[0]) if sys.argv[0] else "python"
    return " ".join(shlex.quote(a) for a in ["python", script, *sys.argv[1:]])


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


def save(name, results, outdir=None):
    """Write ``<outdir>/<name>.json`` with machine and command; return the path."""
    outdir = Path(outdir) if outdir is not None else DOCS_BENCH
    outdir.mkdir(parents=True, exist_ok=True)
    path = outdir / f"{name}.json"
    payload = dict(
        benchmark=name, command=command(), machine=machine(), results=results
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_default) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")
    return path


def _default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def pyplot():
    """matplotlib.pyplot with a non-interactive backend (a clear error if absent)."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "the benchmark plots need matplotlib: pip install -e '.[docs]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def savefig(fig, name, outdir=None):
    """Save ``fig`` as ``<outdir>/<name>.png`` (default docs/bench) and close it."""
    import matplotlib.pyplot as plt

    out = (Path(outdir) if outdir else DOCS_BENCH) / f"{name}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")
    return out


def threads(n):
    """Limit torch (and BLAS through threadpoolctl) to ``n`` threads (None: all)."""
    if n is None:
        return
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:
        pass
