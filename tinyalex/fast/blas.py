"""OpenBLAS's own thread count, switched to one while tinyalex's threads split a product.

Why: OpenBLAS splits every matrix product evenly between its threads and waits for the
slowest. On a machine where other programs want the cores too, one of its threads is often
descheduled, and the whole product waits for it (the training step measured slower with two
threads than with one, under load). ``parallel.for_each_part`` instead hands many smaller
products to tinyalex's pool, one-thread BLAS each, and a thread that finishes early takes the
next piece: the work follows whichever core is free.

``one_thread()`` finds OpenBLAS in this process (the library NumPy loaded; its symbols are
``openblas_set_num_threads`` or, in NumPy's own build, ``scipy_openblas_set_num_threads64_``)
and sets its thread count to 1 for the duration. Where none is found (another BLAS, not
Linux) it does nothing, and the pieces run with whatever threads that BLAS uses.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools

_PREFIXES = ("scipy_openblas_", "openblas_")
_SUFFIXES = ("64_", "")


@functools.lru_cache(maxsize=1)
def _openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS loaded here, or None."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()
                            and line.split()[-1].startswith("/")})
    except OSError:
        return None
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                setter = getattr(library, f"{prefix}set_num_threads{suffix}", None)
                getter = getattr(library, f"{prefix}get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    return setter, getter
    return None


@contextlib.contextmanager
def one_thread():
    """OpenBLAS uses one thread inside the block (the caller's); restored afterwards."""
    import numpy  # noqa: F401  (OpenBLAS is loaded with NumPy)

    found = _openblas()
    if found is None:
        yield
        return
    setter, getter = found
    before = getter()
    if before != 1:
        setter(1)
    try:
        yield
    finally:
        if before != 1:
            setter(before)
