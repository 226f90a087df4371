"""What a result was produced on: the machine and the library versions.

Recorded by ``moa-sklearn cv`` (shown in its report) and by the benchmarks.
"""

import datetime
import hashlib
import importlib.metadata
import os
import platform
import sys
from pathlib import Path

__all__ = ["machine", "file_digest", "peak_memory_mib"]

PACKAGES = (
    "moa-sklearn",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "skorch",
    "pytorch-tabnet",
    "keras",
    "tensorflow-cpu",
    "tensorflow",
    "iterative-stratification",
)

# CPU features that decide the speed of the nets (bf16 halves their time)
_CPU_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16")
_CPU_FLAGS += ("avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")


def _cpuinfo():
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_model(info):
    for line in info.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags(info):
    for line in info.splitlines():
        if line.startswith(("flags", "Features")):
            present = set(line.split(":", 1)[1].split())
            return [f for f in _CPU_FLAGS if f in present]
    return None


def _memory_gib():
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _bf16_native():
    """Whether the nets train in bf16 here (None when torch is not imported).

    The package's own check: False where the CPU lacks native bf16 or the
    environment variable ``MOA_SKLEARN_NO_BF16`` is set.
    """
    if "torch" not in sys.modules:
        return None
    from ..neural._torch_utils import bf16_supported

    return bf16_supported("cpu")


def _gpu():
    """The CUDA device of torch when torch is already imported (else None)."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:  # a broken CUDA set-up: no GPU to name
        pass
    return None


def machine():
    """The machine, the library versions and the date, as a JSON-able dict.

    Examples
    --------
    >>> from moa_sklearn.utils._environment import machine
    >>> info = machine()
    >>> sorted(info)[:5]
    ['bf16_native', 'cores_used', 'cpu', 'cpu_flags', 'date']
    >>> "scikit-learn" in info["versions"]
    True
    """
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    info = _cpuinfo()
    return dict(
        cpu=_cpu_model(info),
        cpu_flags=_cpu_flags(info),
        bf16_native=_bf16_native(),
        logical_cores=os.cpu_count(),
        cores_used=affinity,
        memory_gib=_memory_gib(),
        gpu=_gpu(),
        python=platform.python_version(),
        platform=platform.platform(),
        versions=versions,
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )


def peak_memory_mib():
    """Peak resident memory of this process so far, in MiB (None if unknown).

    ``ru_maxrss`` of ``resource.getrusage`` (KiB on Linux, bytes on macOS);
    None where the ``resource`` module is missing (Windows).

    Examples
    --------
    >>> from moa_sklearn.utils._environment import peak_memory_mib
    >>> peak = peak_memory_mib()
    >>> peak is None or peak > 0
    True
    """
    try:
        import resource
    except ImportError:
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def file_digest(path):
    """The SHA-256 of a file's bytes, as hex (what ``sha256sum`` prints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
