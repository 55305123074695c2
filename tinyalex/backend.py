"""Where arrays live, and which implementation of the layers computes on them.

One function body serves NumPy and CuPy arrays: layer code asks ``xp = get_array_module(x)``
and calls ``xp.zeros``, ``xp.matmul``, ... on whatever module owns ``x`` (the CuPy idiom).
CuPy stays optional: nothing here imports it unless it is installed, and importing tinyalex
without CuPy works.

Two choices are made here, once, where a network is built or a program starts:

the device, ``cpu | gpu | auto`` (argument, else ``$TINYALEX_DEVICE``, else ``auto``)
    :func:`resolve_device`: ``auto`` picks the GPU when CuPy sees one, else the CPU.

the implementation of the layers, ``textbook | fast | cuda | auto`` (:func:`resolve_impl`)
    - ``textbook``: ``tinyalex.layers``, the readable code (NumPy or CuPy);
    - ``fast``: ``tinyalex.fast``, the CPU speed path (NumPy only);
    - ``cuda``: ``tinyalex.cuda.layers``, the CUDA kernels of ``kernels/*.cu`` -- on a GPU for
      CuPy arrays, through tinyalex's CPU emulator for NumPy arrays (slow; for tests and
      lessons); float32 only;
    - ``auto``: ``fast`` for NumPy arrays, ``cuda`` for CuPy float32 arrays, ``textbook``
      for CuPy float64. ``$TINYALEX_KERNELS`` adjusts ``auto``: ``emulate`` picks the
      emulated kernels for NumPy float32 arrays, ``off`` never picks kernels.
"""

from __future__ import annotations

import functools
import importlib
import os

import numpy as np

DEVICES = ("cpu", "gpu", "auto")
IMPLEMENTATIONS = ("textbook", "fast", "cuda", "auto")
KERNEL_MODES = ("auto", "emulate", "off")
IMPL_MODULES = {"textbook": "tinyalex.layers", "fast": "tinyalex.fast",
                "cuda": "tinyalex.cuda.layers"}


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


def kernel_mode() -> str:
    """The value of ``$TINYALEX_KERNELS`` (``auto``, ``emulate`` or ``off``), checked."""
    mode = (os.environ.get("TINYALEX_KERNELS") or "auto").strip().lower()
    if mode not in KERNEL_MODES:
        raise SettingError(f"TINYALEX_KERNELS={mode!r} is not one of {', '.join(KERNEL_MODES)}: "
                           "fix or unset the variable")
    return mode


def resolve_impl(impl: str | None, like) -> str:
    """``textbook``, ``fast`` or ``cuda``: the implementation that computes on arrays ``like``.

    ``impl`` is one of IMPLEMENTATIONS (None means ``auto``); ``like`` an array of the kind
    the network will hold (its module and dtype decide ``auto``; see the module docstring).
    Raises SettingError for an unknown name or an implementation that cannot run there.
    """
    name = (impl or "auto").strip().lower()
    if name not in IMPLEMENTATIONS:
        raise SettingError(f"unknown implementation {name!r}: use one of "
                           f"{', '.join(IMPLEMENTATIONS)} (--impl)")
    on_gpu, float32 = is_gpu_array(like), like.dtype == np.float32
    mode = kernel_mode()
    if name == "auto":
        if on_gpu:
            return "cuda" if float32 and mode != "off" else "textbook"
        return "cuda" if float32 and mode == "emulate" else "fast"
    if name == "fast" and on_gpu:
        raise SettingError("implementation 'fast' is the CPU path: on a GPU use cuda or textbook")
    if name == "cuda" and not float32:
        raise SettingError(f"implementation 'cuda' runs float32 kernels, not {like.dtype}: use "
                           "textbook or fast for float64")
    return name


def implementation(name: str):
    """The module of layer functions of implementation ``name`` (textbook, fast or cuda)."""
    return importlib.import_module(IMPL_MODULES[name])


def describe_impl(name: str, like) -> str:
    """One phrase for start-up lines, e.g. ``fast (NumPy, 2 threads)``."""
    if name == "fast":
        from tinyalex.fast.parallel import cpu_count

        threads = cpu_count()
        return f"fast (NumPy, {threads} thread{'' if threads == 1 else 's'})"
    if name == "cuda" and not is_gpu_array(like):
        return "cuda (the CUDA kernels on the CPU emulator)"
    if is_gpu_array(like):
        cupy = _cupy()
        device = cupy.cuda.Device()
        gpu = cupy.cuda.runtime.getDeviceProperties(device.id)["name"].decode()
        return f"{name} (CuPy {cupy.__version__} on {gpu})"
    return f"{name} (NumPy)"
