"""Where arrays live: NumPy on the CPU, CuPy on a GPU.

One function body serves NumPy and CuPy arrays: layer code asks ``xp = get_array_module(x)``
and calls ``xp.zeros``, ``xp.matmul``, ... on whatever module owns ``x`` (the CuPy idiom).
CuPy stays optional: nothing here imports it unless it is installed, and importing tinyalex
without CuPy works.

The device, ``cpu | gpu | auto`` (argument, else ``$TINYALEX_DEVICE``, else ``auto``), is
chosen by :func:`resolve_device`: ``auto`` picks the GPU when CuPy sees one, else the CPU.
Which implementation of the layers computes on those arrays is ``tinyalex.impl``'s
choice.
"""

from __future__ import annotations

import functools
import os

import numpy as np

DEVICES = ("cpu", "gpu", "auto")


class SettingError(ValueError):
    """A device or implementation that cannot be used (the message says why and what to do)."""


@functools.lru_cache(maxsize=1)
def _cupy():
    """The cupy module, or None when it is not installed or cannot load its CUDA libraries."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising anything at import
        return None
    return cupy


def cpu_count() -> int:
    """The CPU cores this process may use (its affinity mask, not the whole machine), or
    ``$TINYALEX_THREADS`` when set (the fast path's threads; benchmarks/train_step.py sets it
    with OpenBLAS's and PyTorch's thread counts)."""
    wanted = os.environ.get("TINYALEX_THREADS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def get_array_module(*arrays):
    """``numpy`` or ``cupy``: the module that owns the arrays (``numpy`` for plain Python data)."""
    cupy = _cupy()
    if cupy is None:
        return np
    return cupy.get_array_module(*arrays)


def is_gpu_array(x) -> bool:
    """True when ``x`` is a CuPy array (lives on a GPU)."""
    cupy = _cupy()
    return cupy is not None and isinstance(x, cupy.ndarray)


@functools.lru_cache(maxsize=1)
def gpu_problem() -> str | None:
    """Why no GPU can be used (one sentence with the fix), or None when one can. Cached."""
    try:
        import cupy
    except ImportError:
        return ("CuPy is not installed: from a checkout, `pip install -e \".[gpu]\"` (CUDA 12) "
                "or `pip install -e \".[gpu-cuda13]\"` (CUDA 13), on a machine with an NVIDIA "
                "GPU and driver")
    except Exception as e:  # a broken CUDA install can raise anything at import
        return f"CuPy is installed but does not load ({type(e).__name__}: {e})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, a driver older than the CUDA runtime, ...
        return (f"CuPy {cupy.__version__} is installed but finds no usable CUDA GPU or driver "
                f"({type(e).__name__}: {str(e).strip()[:120]})")
    if count < 1:
        return f"CuPy {cupy.__version__} is installed but this machine has no CUDA GPU"
    return None


def gpu_description() -> str:
    """The CuPy version and the current GPU, e.g. ``CuPy 14.0.1 on NVIDIA H100 80GB HBM3``."""
    cupy = _cupy()
    device = cupy.cuda.Device()
    name = cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()
    return f"CuPy {cupy.__version__} on {name}"


def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device. Never raises; cached."""
    return gpu_problem() is None


def resolve_device(device: str | None = None) -> str:
    """Turn ``cpu|gpu|auto`` (default: ``$TINYALEX_DEVICE`` or ``auto``) into ``cpu`` or ``gpu``.

    Raises SettingError for an unknown name or for ``gpu`` when no GPU can be used.
    """
    name = (device or os.environ.get("TINYALEX_DEVICE") or "auto").strip().lower()
    if name not in DEVICES:
        raise SettingError(f"unknown device {name!r}: use one of cpu, gpu, auto "
                           "(--device or TINYALEX_DEVICE)")
    if name == "auto":
        return "gpu" if gpu_available() else "cpu"
    if name == "gpu" and not gpu_available():
        raise SettingError(f"device 'gpu' asked for, but {gpu_problem()}; or use --device cpu")
    return name


def to_device(x, device: str):
    """Copy an array (or a dict of arrays, recursively) to ``cpu`` (NumPy) or ``gpu`` (CuPy).

    Arrays already on the right side are returned as they are, not copied.
    """
    if isinstance(x, dict):
        return {key: to_device(value, device) for key, value in x.items()}
    device = resolve_device(device)
    if device == "gpu":
        return _cupy().asarray(x)
    if is_gpu_array(x):
        return x.get()
    return x


def to_numpy(x):
    """A NumPy array of ``x`` wherever it lives (a host copy for CuPy arrays)."""
    return x.get() if is_gpu_array(x) else np.asarray(x)
