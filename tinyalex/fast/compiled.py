"""The compiled kernels of the fast path (``kernels.c``), built by the C compiler on first use.

Max-pooling, LRN, the SGD update and im2col/col2im are memory-bound: NumPy runs each of them
as several passes over arrays of tens of megabytes, and the time goes into moving data, not
into arithmetic. ``kernels.c`` does each in one sweep, a cache-sized block at a time. The
layers of ``tinyalex.fast`` call it through ``ctypes`` (which releases the GIL, so the chunks
of ``parallel.py`` still run on every core) and fall back to their NumPy code when it is
not there.

Why C through ctypes and not numba (measured on this project's 2-core AVX-512 machine, one
thread, paper shapes): max-pool forward, the same loop in both, 48 ms in C against 72 in
numba (the separable sweeps of kernels.c since: 13 ms); LRN forward 15 ms in C (blocked as
here) against 58 for a plain numba loop. C costs a user nothing to install (numba 0.68 with
llvmlite is 208 MB, and pins NumPy below 2.6) and one compilation per dtype, cached (0.65 s
on a quiet machine, 1-4 s under load), against numba's 5 s per kernel on first call.

- Built with ``$CC`` (default ``cc``) ``-O3 -march=native -ffp-contract=off
  -fno-math-errno``, twice: ``real`` = float (float32 arrays) and double (float64). The
  libraries are cached in ``$XDG_CACHE_HOME/tinyalex/fast`` (default ``~/.cache``;
  ``$TINYALEX_COMPILED_CACHE`` moves them), keyed by
  a hash of the source, the flags, the compiler's version and this CPU's feature flags;
  never inside the repository.
- ``TINYALEX_COMPILED=0`` forces the NumPy fast path (the switch CI uses to test both).
- Without a C compiler, or if the build fails, the NumPy fast path runs and one line on
  standard error says why (once per process).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

SOURCE = Path(__file__).with_name("kernels.c")
SWITCH = "TINYALEX_COMPILED"  # "0" (or off / no / false): the NumPy fast path only
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-std=c11", "-fPIC",
         "-shared"]
TYPES = {np.dtype(np.float32): ("float", "float32"), np.dtype(np.float64): ("double", "float64")}

_p, _i, _i64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_int64
# name -> argument types, with "real" standing for float or double
_SIGNATURES = {
    "maxpool_forward": [_p, _p, _p, _i64, _i, _i, _i, _i, _i, _i],
    "maxpool_backward": [_p, _p, _p, _i64, _i, _i, _i, _i, _i, _i],
    "lrn_forward": [_p, _p, _p, _i64, _i, _i64, _i, "real", "real", "real"],
    "lrn_backward": [_p, _p, _p, _p, _p, _i64, _i, _i64, _i, "real", "real"],
    "sgd_update": [_p, _p, _p, _i64, "real", "real", "real"],
    "im2col": [_p, _p, _i64, _i64, _i, _i, _i, _i, _i, _i, _i, _i, _i],
    "col2im": [_p, _p, _i64, _i64, _i64, _i, _i, _i, _i, _i, _i, _i, _i, _i],
}

# the kernels that allocate scratch memory: they return 0, or -1 without it (-> MemoryError)
_SCRATCH = {"maxpool_forward": "its scratch planes", "lrn_backward": "its scratch block",
            "col2im": "its masks"}

_lock = threading.Lock()
_libraries: dict[np.dtype, object] = {}  # dtype -> namespace of functions, or None
_said = False  # the one line about falling back has been printed


def switched_off() -> bool:
    """True when ``$TINYALEX_COMPILED`` asks for the NumPy fast path."""
    return os.environ.get(SWITCH, "").strip().lower() in ("0", "off", "no", "false")


def cache_dir() -> Path:
    """Where the compiled libraries live: ``$TINYALEX_COMPILED_CACHE``, else
    ``$XDG_CACHE_HOME/tinyalex/fast`` (default ``~/.cache/tinyalex/fast``); ``python -m
    tinyalex.cache`` lists and removes it."""
    explicit = os.environ.get("TINYALEX_COMPILED_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinyalex" / "fast"


def _writable_cache_dir() -> Path:
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:  # a read-only home: the temporary directory
        path = Path(tempfile.gettempdir()) / "tinyalex-fast"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _cpu_flags() -> str:
    """This CPU's feature list (-march=native builds for it), so that a cache shared between
    machines never hands one machine another's instructions."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor() + platform.machine()


def build(real: str, suffix: str) -> Path:
    """Compile kernels.c with ``real`` = float or double (or reuse the cached library).
    Raises RuntimeError with the compiler's message when it cannot."""
    compiler = os.environ.get("CC", "cc")
    flags = [*FLAGS, f"-DREAL={real}", f"-DSUFFIX={suffix}"]
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True,
                                 check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise RuntimeError(f"no C compiler ({compiler!r} does not run; apt install gcc, or set "
                           "$CC)") from None
    key = hashlib.sha256("\0".join([SOURCE.read_text(), " ".join(flags), version,
                                    _cpu_flags()]).encode()).hexdigest()[:20]
    directory = _writable_cache_dir()
    library = directory / f"kernels-{suffix}-{key}.so"
    if library.exists():
        return library
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        built = Path(tmp) / library.name
        result = subprocess.run([compiler, *flags, str(SOURCE), "-o", str(built), "-lm"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            first = (result.stderr.strip().splitlines() or ["no message"])[0]
            raise RuntimeError(f"{compiler} could not compile {SOURCE.name}: {first}")
        os.replace(built, library)  # atomic: another process never sees half a file
    return library


class _Kernels:
    """The functions of one compiled library, by their names without the dtype suffix."""

    def __init__(self, path: Path, real, suffix: str):
        self.library = ctypes.CDLL(str(path))  # CDLL calls release the GIL
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(self.library, f"{name}_{suffix}")
            fn.argtypes = [real if a == "real" else a for a in argtypes]
            fn.restype = None
            if name in _SCRATCH:
                fn.restype, fn.errcheck = ctypes.c_int, _raise_without_scratch(name)
            setattr(self, name, fn)


def _raise_without_scratch(name: str):
    """A ctypes ``errcheck`` for kernel ``name``: its -1 (no memory) becomes MemoryError."""
    def check(status, fn, args):
        if status != 0:
            raise MemoryError(f"{name}: no memory for {_SCRATCH[name]}")
        return status
    return check


def kernels(dtype):
    """The compiled kernels for arrays of ``dtype`` (float32 or float64), or None where the
    NumPy fast path must run: switched off, another dtype, or no working compiler."""
    dtype = np.dtype(dtype)
    if dtype not in TYPES or switched_off():
        return None
    found = _libraries.get(dtype, False)
    if found is not False:
        return found
    global _said
    with _lock:
        if dtype not in _libraries:
            real, suffix = TYPES[dtype]
            try:
                ctype = ctypes.c_float if real == "float" else ctypes.c_double
                _libraries[dtype] = _Kernels(build(real, suffix), ctype, suffix)
            except (RuntimeError, OSError, AttributeError) as error:
                _libraries[dtype] = None
                if not _said:
                    print(f"tinyalex.fast: compiled kernels unavailable ({error}); running the "
                          f"NumPy fast path (slower; {SWITCH}=0 silences this)",
                          file=sys.stderr)
                    _said = True
    return _libraries[dtype]


def for_arrays(*arrays):
    """``kernels(dtype)`` when every array is C-contiguous and of one dtype, else None."""
    dtype = arrays[0].dtype
    if all(a.dtype == dtype and a.flags.c_contiguous for a in arrays):
        return kernels(dtype)
    return None


def address(a, first: int = 0) -> int:
    """The address of item ``first`` along a C-contiguous array's first axis."""
    return a.ctypes.data + first * a.strides[0]


def span(part: slice, count: int) -> tuple[int, int]:
    """(first index, length) of ``part``, a slice of ``range(count)`` with step 1."""
    start, stop, _ = part.indices(count)
    return start, max(0, stop - start)
