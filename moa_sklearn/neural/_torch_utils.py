"""PyTorch helpers shared by the torch-based nets (devices, precision, seeds, I/O).

Imported only by the modules that train with PyTorch (and by the base when it
resolves a device), never by ``import moa_sklearn.neural``.
"""

import contextlib
import io
import os

from ._base import _TORCH_EXTRA


def import_torch():
    """Import torch, or raise an ImportError that names the extra to install."""
    try:
        import torch
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the env
        raise ImportError(
            f"The PyTorch nets of moa_sklearn need PyTorch: {_TORCH_EXTRA}"
        ) from exc
    return torch


def resolve_device(device):
    """Resolve ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` to a device string.

    ``"auto"`` is ``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``. Asking for
    CUDA on a machine without it is an error (not a silent fallback).
    """
    torch = import_torch()
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise ValueError(
            f'device must be "auto", "cpu", "cuda" or "cuda:N", got {device!r}.'
        )
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} but PyTorch sees no CUDA GPU on this machine "
                '(torch.cuda.is_available() is False). Use device="cpu" or '
                'device="auto".'
            )
        if device != "cuda":
            try:
                index = int(device.split(":", 1)[1])
            except ValueError:
                index = -1
            if not 0 <= index < torch.cuda.device_count():
                raise ValueError(
                    f"device={device!r}: this machine has "
                    f"{torch.cuda.device_count()} CUDA device(s)."
                )
        return device
    raise ValueError(
        f'device must be "auto", "cpu", "cuda" or "cuda:N", got {device!r}.'
    )


def device_for_loading(device):
    """The device that a model trained on ``device`` is loaded to here."""
    torch = import_torch()
    if device is not None and str(device).startswith("cuda"):
        if torch.cuda.is_available():
            return device
        return "cpu"
    return "cpu"


#: Set this environment variable to 1 to treat every device as lacking native
#: bf16 (``precision="auto"`` then trains in fp32, ``"bf16"`` raises): the way to
#: run the package, its tests and its benchmarks as on a CPU without AVX512-BF16.
NO_BF16_ENV = "MOA_SKLEARN_NO_BF16"


def bf16_disabled():
    """Whether :data:`NO_BF16_ENV` turns native bf16 off in this process."""
    return os.environ.get(NO_BF16_ENV, "").strip().lower() not in ("", "0", "false")


def bf16_supported(device):
    """Whether bf16 matrix products run natively on ``device``.

    False wherever the environment variable ``MOA_SKLEARN_NO_BF16`` is set to a
    true value (1, yes, true), whatever the hardware.
    """
    if bf16_disabled():
        return False
    torch = import_torch()
    if str(device).startswith("cuda"):
        return bool(torch.cuda.is_bf16_supported())
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - old torch
        return False


def resolve_precision(precision, device):
    """Return the autocast dtype for ``precision`` on ``device`` (None = fp32).

    ``"fp32"``: no autocast. ``"bf16"``: bf16 autocast of the matrix products
    (weights, optimiser state and the loss stay fp32); an error where the
    hardware has no native bf16. ``"auto"``: bf16 where native, else fp32.
    """
    torch = import_torch()
    if precision == "fp32":
        return None
    if precision not in ("bf16", "auto"):
        raise ValueError(
            f'precision must be "fp32", "bf16" or "auto", got {precision!r}.'
        )
    if bf16_supported(device):
        return torch.bfloat16
    if precision == "auto":
        return None
    raise ValueError(
        f'precision="bf16" but {device} has no native bf16 support (on CPU: '
        'AVX512-BF16 or AMX); use precision="fp32" or "auto".'
    )


def autocast(device, dtype):
    """An autocast context for ``dtype`` on ``device`` (a no-op for None)."""
    if dtype is None:
        return contextlib.nullcontext()
    torch = import_torch()
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    return torch.autocast(device_type=device_type, dtype=dtype)


@contextlib.contextmanager
def seeded(seed, device):
    """Seed torch's global RNGs inside, restoring the caller's RNG state after.

    Model initialisation and dropout draw from the global generators; forking
    them keeps ``fit`` from changing the user's random stream.
    """
    torch = import_torch()
    devices = []
    if str(device).startswith("cuda") and torch.cuda.is_available():
        devices = [torch.device(device).index or 0]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def num_threads(n):
    """Run with ``torch.set_num_threads(n)`` inside (None: unchanged).

    The setting is process-wide; it is restored on exit.
    """
    if n is None:
        yield
        return
    torch = import_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def flush_subnormal_(module):
    """Set the subnormal entries of ``module``'s floating tensors to zero.

    Weights that training drives towards zero can end up subnormal (below
    ``torch.finfo(dtype).tiny``). A CPU computes with them through a slow
    microcode path, ~100 times slower per use: 0.5% of subnormal weights in one
    2048 x 2048 layer made a forward pass of 3,671 rows take 2.2 s instead of
    0.1 s (fp32; flush-to-zero of the calling thread does not reach torch's
    other threads). Zero is what they round to in any sum with a normal term,
    so the predictions do not change. Parameters and buffers, in place;
    returns how many entries were set to zero.
    """
    torch = import_torch()
    n = 0
    with torch.no_grad():
        for t in [*module.parameters(), *module.buffers()]:
            if t.is_floating_point():
                tiny = torch.finfo(t.dtype).tiny
                mask = (t != 0) & (t.abs() < tiny)
                count = int(mask.sum())
                if count:
                    t.masked_fill_(mask, 0)
                    n += count
    return n


def state_dict_to_bytes(module):
    """Serialise a module's state dict (or a state dict), moved to CPU, to bytes."""
    torch = import_torch()
    state = module.state_dict() if hasattr(module, "state_dict") else module
    state = {k: v.detach().to("cpu") for k, v in state.items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def state_dict_from_bytes(blob, map_location="cpu"):
    """Load a state dict saved by :func:`state_dict_to_bytes` (weights only)."""
    torch = import_torch()
    return torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
