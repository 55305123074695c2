"""Where arrays live, and which code path computes on them.

One function body serves NumPy and CuPy arrays: layer code asks ``xp = get_array_module(x)``
and calls ``xp.zeros``, ``xp.matmul``, ... on whatever module owns ``x`` (the CuPy idiom).
CuPy stays optional: nothing here imports it unless it is installed, and importing tinyalex
without CuPy works.

Two environment variables steer the choices, both read at call time:

``TINYALEX_DEVICE=cpu|gpu|auto`` (default ``auto``)
    Where :func:`resolve_device` puts new arrays (models, batches). ``auto`` picks the GPU
    when CuPy sees one, else the CPU; ``gpu`` without a usable GPU is an error.

``TINYALEX_KERNELS=auto|emulate|off`` (default ``auto``)
    Which implementation runs the hot path of the layers (im2col/col2im, LRN, max-pool).
    :func:`kernel_ops` is the one place that decides:

    - CuPy float32 arrays run the raw CUDA kernels of ``kernels/*.cu`` (``auto``);
    - with ``emulate``, NumPy float32 arrays run the *same* CUDA source compiled as C++ by
      tinyalex's CPU emulator (slow; for tests and lessons);
    - everything else (float64, ``off``) runs the plain array code of ``tinyalex.layers``.
"""

from __future__ import annotations

import functools
import os

import numpy as np

DEVICES = ("cpu", "gpu", "auto")
KERNEL_MODES = ("auto", "emulate", "off")


@functools.lru_cache(maxsize=1)
def _cupy():
    """The cupy module, or None when it is not installed or cannot load its CUDA libraries."""
    try:
        import cupy
    except Exception:  # ImportError, or a broken CUDA install raising anything at import
        return None
    return cupy


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
def gpu_available() -> bool:
    """True when CuPy is installed and sees at least one CUDA device. Never raises; cached."""
    cupy = _cupy()
    if cupy is None:
        return False
    try:
        return bool(cupy.cuda.is_available())
    except Exception:  # no driver, no device, a mismatched CUDA runtime...
        return False


def resolve_device(device: str | None = None) -> str:
    """Turn ``cpu|gpu|auto`` (default: ``$TINYALEX_DEVICE`` or ``auto``) into ``cpu`` or ``gpu``.

    Raises ValueError for an unknown name or for ``gpu`` when no GPU can be used.
    """
    name = (device or os.environ.get("TINYALEX_DEVICE") or "auto").strip().lower()
    if name not in DEVICES:
        raise ValueError(
            f"unknown device {name!r}: use one of cpu, gpu, auto (argument or TINYALEX_DEVICE)"
        )
    if name == "auto":
        return "gpu" if gpu_available() else "cpu"
    if name == "gpu" and not gpu_available():
        raise ValueError(
            "device 'gpu' asked for but no CUDA GPU is usable: install CuPy with "
            "`pip install \"tinyalex[gpu]\"` on a machine with a GPU, or use --device cpu"
        )
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


def kernel_mode() -> str:
    """The value of ``$TINYALEX_KERNELS`` (``auto``, ``emulate`` or ``off``), checked."""
    mode = (os.environ.get("TINYALEX_KERNELS") or "auto").strip().lower()
    if mode not in KERNEL_MODES:
        raise ValueError(f"TINYALEX_KERNELS={mode!r} is not one of {', '.join(KERNEL_MODES)}")
    return mode


def kernel_ops(x):
    """The raw-kernel implementation of the hot path for array ``x``, or None for plain xp code.

    This is the single place where tinyalex chooses between the generic array code and the
    CUDA kernels (see the module docstring). The returned object has the functions of
    ``tinyalex.cuda.ops`` (im2col, col2im, lrn_forward, ...) bound to a launcher: the GPU
    through ``cupy.RawModule``, or the CPU emulator.
    """
    mode = kernel_mode()
    if mode == "off" or x.dtype != np.float32:
        return None
    if is_gpu_array(x):
        from tinyalex.cuda import ops

        return ops.for_device("gpu")
    if mode == "emulate":
        from tinyalex.cuda import ops

        return ops.for_device("emulate")
    return None
