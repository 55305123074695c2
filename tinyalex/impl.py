"""Which implementation of the layers computes: chosen here, once, where a run is built.

``textbook | fast | cuda | auto`` (``--impl``; :func:`resolve_impl`):

- ``textbook``: ``tinyalex.layers``, the readable code (NumPy or CuPy);
- ``fast``: ``tinyalex.fast``, the CPU speed path (NumPy only);
- ``cuda``: ``tinyalex.cuda.layers``, the CUDA kernels of ``kernels/*.cu`` -- on a GPU for
  CuPy arrays, through tinyalex's CPU emulator for NumPy arrays (slow; for tests and
  lessons); float32 only;
- ``auto``: ``fast`` for NumPy arrays, ``cuda`` for CuPy float32 arrays, ``textbook`` for
  CuPy float64. ``$TINYALEX_KERNELS`` adjusts ``auto``: ``emulate`` picks the emulated
  kernels for NumPy float32 arrays, ``off`` never picks kernels.

Each implementation is a module with the same functions (``tinyalex.layers.LAYER_FUNCTIONS``
and ``sgd_update``); :func:`impl_module` is the one place that maps a name to its module. A
training run (``tinyalex.run``) resolves ``--impl`` once and hands the name to the network
(``AlexNet(impl=...)``, which calls ``impl_module``) and to the optimiser (``SGD(impl=...)``).
"""

from __future__ import annotations

import os

import numpy as np

import tinyalex.cuda.layers
import tinyalex.fast
import tinyalex.fast.compiled
import tinyalex.layers
from tinyalex.backend import SettingError, cpu_count, gpu_description, is_gpu_array

IMPLEMENTATIONS = ("textbook", "fast", "cuda", "auto")
KERNEL_MODES = ("auto", "emulate", "off")
MODULES = {"textbook": tinyalex.layers, "fast": tinyalex.fast, "cuda": tinyalex.cuda.layers}


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


def impl_module(name: str):
    """The module of layer functions (and ``sgd_update``) of implementation ``name``
    (textbook, fast or cuda): the only place that maps a name to its code."""
    return MODULES[name]


def describe_impl(name: str, like) -> str:
    """One phrase for start-up lines, e.g. ``fast (NumPy + C kernels, 2 threads)``: for the
    fast path, whether its compiled kernels run (``tinyalex.fast.compiled``; compiling them
    here, on first use, if they are not cached yet)."""
    if name == "fast":
        threads = cpu_count()
        engine = "NumPy + C kernels" if tinyalex.fast.compiled.kernels(like.dtype) else "NumPy"
        return f"fast ({engine}, {threads} thread{'' if threads == 1 else 's'})"
    if name == "cuda" and not is_gpu_array(like):
        return "cuda (the CUDA kernels on the CPU emulator)"
    if is_gpu_array(like):
        return f"{name} ({gpu_description()})"
    return f"{name} (NumPy)"
