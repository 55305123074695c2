"""Run CUDA kernels on a CPU: compile a ``.cu`` file with g++ as C++ and launch it like CuPy.

The point is teaching and testing without a GPU: the *same* kernel source that CuPy compiles
with NVRTC runs here on NumPy arrays, with CuPy's calling convention::

    module = EmulatedModule(path="kernels/lrn.cu")          # like cupy.RawModule(code=...)
    kernel = module.get_function("lrn_forward_kernel")     # like RawModule.get_function
    kernel((blocks,), (256,), (x, out, scale, np.int32(N), ...), shared_mem=0)

How it works (the C++ half is ``emulate.h``; read its header first):

1. The source is scanned for ``extern "C" __global__`` kernels. A kernel whose body (or any
   ``__device__`` helper in the file) mentions ``__syncthreads`` runs in *barrier mode* (one OS
   thread per CUDA thread of a block); every other kernel runs in *loop mode* (a plain loop
   that calls the kernel once per thread: fast).
2. A C++ file is generated in the cache directory: ``#include "emulate.h"``, a ``#line``
   directive so that compiler errors point at the original ``.cu`` lines, the source itself
   (``extern __shared__ T a[];`` rewritten in place into a pointer to the dynamic shared
   buffer), and one ``EMU_KERNEL(name, uses_barrier)`` line per kernel.
3. g++ builds it into a shared library, cached by a hash of everything that went into it
   (never inside the repository: ``$TINYALEX_EMULATOR_CACHE`` or ``~/.cache/tinyalex``).
4. A launch checks every argument against the kernel's C++ signature -- stricter than CuPy,
   which passes whatever it gets: a Python ``int`` where the kernel has ``int`` is an error
   here (CuPy would pass 8 bytes), so is a float64 array for a ``float*``, a non-contiguous
   array, or a read-only array for a non-const pointer.

Debug mode (``TINYALEX_EMULATOR_DEBUG=1``, or ``debug=True``) builds with AddressSanitizer, so
an out-of-bounds read or write in a kernel stops with a report naming the ``.cu`` line. The
ASan runtime must be loaded before Python starts; run a command under it with::

    python -m tinyalex.cuda.emulator --debug -- python -m pytest tests/test_kernels.py
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from tinyalex.cuda.sources import KERNEL_DECLARATION

HEADER = Path(__file__).with_name("emulate.h")
CXX = os.environ.get("CXX", "g++")
CXXFLAGS = ["-std=c++20", "-fPIC", "-shared", "-pthread", "-w"]
RELEASE_FLAGS = ["-O2"]
DEBUG_FLAGS = ["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"]

# CUDA's launch limits (compute capability 7.0 and newer); the emulator enforces them too.
MAX_THREADS_PER_BLOCK = 1024
MAX_BLOCK_DIM = (1024, 1024, 64)
MAX_GRID_DIM = (2**31 - 1, 65535, 65535)
MAX_DYNAMIC_SHARED_BYTES = 48 * 1024  # emulate.h's emu::kDynamicSharedBytes

# C++ parameter type (as emu::signature spells it) -> (the NumPy dtype an argument must have,
# the ctypes type that holds its value).
SCALAR_TYPES = {
    "float": (np.float32, ctypes.c_float),
    "double": (np.float64, ctypes.c_double),
    "int": (np.int32, ctypes.c_int32),
    "unsigned int": (np.uint32, ctypes.c_uint32),
    "long long": (np.int64, ctypes.c_int64),
    "unsigned long long": (np.uint64, ctypes.c_uint64),
    "signed char": (np.int8, ctypes.c_int8),
    "unsigned char": (np.uint8, ctypes.c_uint8),
    "short": (np.int16, ctypes.c_int16),
    "bool": (np.bool_, ctypes.c_bool),
}

_DYNAMIC_SHARED_RE = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s+)?([\w\s]+?)\s+(\w+)\s*\[\s*\]\s*;"
)
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)

_lock = threading.Lock()  # one launch at a time: emu_last_error and the shared buffer are global


def debug_requested() -> bool:
    """True when ``$TINYALEX_EMULATOR_DEBUG`` asks for AddressSanitizer builds."""
    return os.environ.get("TINYALEX_EMULATOR_DEBUG", "").strip() not in ("", "0")


def cache_dir() -> Path:
    """Where compiled kernel libraries live: ``$TINYALEX_EMULATOR_CACHE``, else the user cache."""
    explicit = os.environ.get("TINYALEX_EMULATOR_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "tinyalex" / "emulator"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:  # read-only home: fall back to the temp dir
        return Path(tempfile.gettempdir()) / "tinyalex-emulator"


def asan_runtime() -> str:
    """Path of g++'s AddressSanitizer runtime (for LD_PRELOAD); RuntimeError when it has none."""
    _compiler_version()  # a clear error first when there is no compiler at all
    out = subprocess.run([CXX, "-print-file-name=libasan.so"], capture_output=True, text=True)
    path = out.stdout.strip()
    if not os.path.isabs(path) or not os.path.exists(path):  # g++ echoes the bare name
        raise RuntimeError(f"{CXX} has no AddressSanitizer runtime (libasan.so): install libasan")
    return path


def asan_loaded() -> bool:
    """True when the AddressSanitizer runtime is in this process (LD_PRELOADed)."""
    try:
        ctypes.CDLL(None).__asan_init  # noqa: B018 -- the lookup is the test
        return True
    except AttributeError:
        return False


def asan_environment() -> dict[str, str]:
    """Environment variables that run a child process with the ASan runtime and debug builds."""
    return {
        "LD_PRELOAD": asan_runtime(),
        # Python itself "leaks" by ASan's standards; stop at the first real memory error.
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:halt_on_error=1",
        "TINYALEX_EMULATOR_DEBUG": "1",
    }


# ---- reading the source ------------------------------------------------------------------------


def _body_end(code: str, open_brace: int) -> int:
    """Index just past the brace that closes the one at ``open_brace``."""
    depth = 0
    for index in range(open_brace, len(code)):
        if code[index] == "{":
            depth += 1
        elif code[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError("unbalanced braces in kernel source")


def scan_kernels(source: str) -> dict[str, bool]:
    """``{kernel name: uses __syncthreads}`` for every ``extern "C" __global__`` kernel.

    A kernel counts as using the barrier when its body mentions ``__syncthreads``, or when any
    code outside the kernels (a ``__device__`` helper it may call) does.
    """
    code = _COMMENT_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), source)
    kernels: dict[str, bool] = {}
    outside = code
    for match in KERNEL_DECLARATION.finditer(code):
        start = code.index("{", match.end())
        end = _body_end(code, start)
        kernels[match.group(3)] = "__syncthreads" in code[start:end]
        outside = outside.replace(code[match.start() : end], "")
    if "__syncthreads" in outside:
        kernels = dict.fromkeys(kernels, True)
    return kernels


def _rewrite_dynamic_shared(source: str) -> str:
    """``extern __shared__ T a[];`` -> ``T* const a = (T*)emu::dynamic_shared;``, same line."""
    return _DYNAMIC_SHARED_RE.sub(
        lambda m: f"{m.group(1)}* const {m.group(2)} = "
        f"reinterpret_cast<{m.group(1)}*>(emu::dynamic_shared);",
        source,
    )


def translation_unit(source: str, filename: str, kernels: dict[str, bool]) -> str:
    """The C++ file g++ compiles: shim header, the kernel source, one export per kernel."""
    exports = "\n".join(
        f"EMU_KERNEL({name}, {'true' if barrier else 'false'})"
        for name, barrier in kernels.items()
    )
    return (
        f'#include "{HEADER}"\n'
        f'#line 1 "{filename}"\n'
        f"{_rewrite_dynamic_shared(source)}\n"
        f"// ---- generated by tinyalex.cuda.emulator ----\n"
        f"{exports}\n"
    )


# ---- building ----------------------------------------------------------------------------------


def build(source: str, filename: str, include_dirs=(), debug: bool = False) -> Path:
    """Compile ``source`` into a shared library (or reuse the cached one); return its path.

    Raises RuntimeError with g++'s messages (pointing at ``filename``'s lines) on failure.
    """
    kernels = scan_kernels(source)
    if not kernels:
        raise ValueError(f'{filename}: no `extern "C" __global__` kernel found')
    unit = translation_unit(source, filename, kernels)
    flags = CXXFLAGS + (DEBUG_FLAGS if debug else RELEASE_FLAGS)
    flags += [f"-I{d}" for d in include_dirs]
    headers = "".join(
        p.read_text() for d in include_dirs for p in sorted(Path(d).glob("*.h"))
    )
    key = hashlib.sha256(
        "\0".join([unit, HEADER.read_text(), headers, " ".join(flags), _compiler_version()])
        .encode()
    ).hexdigest()[:24]
    directory = cache_dir()
    library = directory / f"{Path(filename).stem}-{key}.so"
    if library.exists():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        cpp = Path(tmp) / f"{Path(filename).stem}.emu.cpp"
        cpp.write_text(unit)
        built = Path(tmp) / library.name
        result = subprocess.run(
            [CXX, *flags, str(cpp), "-o", str(built)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"emulator: g++ could not compile {filename}:\n{result.stderr.strip()}"
            )
        os.replace(built, library)  # atomic: a concurrent build never sees half a file
    return library


def _compiler_version() -> str:
    """``$CXX --version`` (part of the cache key); RuntimeError when there is no compiler."""
    if not hasattr(_compiler_version, "text"):
        try:
            out = subprocess.run([CXX, "--version"], capture_output=True, text=True)
        except FileNotFoundError:
            out = None
        if out is None or out.returncode != 0:
            raise RuntimeError(
                f"emulator: cannot run the C++ compiler {CXX!r}; it needs g++ with C++20 "
                "support (apt install g++), or set $CXX"
            )
        _compiler_version.text = out.stdout
    return _compiler_version.text


# ---- launching ---------------------------------------------------------------------------------


class _Launch(ctypes.Structure):
    """emulate.h's emu::Launch, field for field."""

    _fields_ = [
        ("grid", ctypes.c_uint * 3),
        ("block", ctypes.c_uint * 3),
        ("shared_bytes", ctypes.c_ulonglong),
    ]


def _dim3(value, limits, what: str) -> tuple[int, int, int]:
    """A grid or block size (int or tuple of 1-3 ints) as three positive ints within limits."""
    dims = (value,) if isinstance(value, int | np.integer) else tuple(value)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"{what} must have 1 to 3 dimensions, got {value!r}")
    dims = tuple(int(d) for d in dims) + (1,) * (3 - len(dims))
    for axis, (d, limit) in enumerate(zip(dims, limits, strict=True)):
        if not 1 <= d <= limit:
            raise ValueError(f"{what}[{axis}] = {d} is outside the CUDA limit 1..{limit}")
    return dims


class EmulatedKernel:
    """One kernel of an :class:`EmulatedModule`; call it like ``cupy.RawKernel``."""

    def __init__(self, library: ctypes.CDLL, name: str, filename: str):
        self.name = name
        self.filename = filename
        self._launch = getattr(library, f"emu_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.POINTER(_Launch), ctypes.POINTER(ctypes.c_void_p)]
        signature = getattr(library, f"emu_signature_{name}")
        signature.restype = ctypes.c_char_p
        text = signature().decode()
        self.params = text.split(",") if text else []  # e.g. ["const float*", "int"]
        self._error = library.emu_last_error
        self._error.restype = ctypes.c_char_p

    def __repr__(self):
        return f"<EmulatedKernel {self.name}({', '.join(self.params)}) from {self.filename}>"

    def _convert(self, index: int, param: str, arg):
        """The ctypes value for one argument, after checking it against the C++ parameter."""
        where = f"{self.name} argument {index} ({param})"
        if param.endswith("*"):
            base = param.removeprefix("const ").removesuffix("*")
            if not isinstance(arg, np.ndarray):
                raise TypeError(f"{where}: expected a NumPy array, got {type(arg).__name__}")
            dtype = np.dtype(SCALAR_TYPES[base][0])
            if arg.dtype != dtype:
                raise TypeError(f"{where}: expected a {dtype} array, got {arg.dtype}")
            if not arg.flags.c_contiguous:
                raise ValueError(f"{where}: the array must be C-contiguous")
            if not param.startswith("const ") and not arg.flags.writeable:
                raise ValueError(f"{where}: the kernel may write here but the array is read-only")
            return ctypes.c_void_p(arg.ctypes.data)
        dtype, ctype = np.dtype(SCALAR_TYPES[param][0]), SCALAR_TYPES[param][1]
        if not isinstance(arg, np.generic) or arg.dtype != dtype:
            got = type(arg).__name__ if not isinstance(arg, np.generic) else f"np.{arg.dtype}"
            raise TypeError(
                f"{where}: expected np.{dtype}, got {got}. Pass the exact type: on a GPU, CuPy "
                "sends a Python int as int64 and a float as double, and the kernel misreads them"
            )
        return ctype(arg.item())

    def __call__(self, grid, block, args, *, shared_mem: int = 0):
        """Launch over ``grid`` blocks of ``block`` threads; ``args`` match the kernel's params."""
        grid3 = _dim3(grid, MAX_GRID_DIM, "grid")
        block3 = _dim3(block, MAX_BLOCK_DIM, "block")
        if block3[0] * block3[1] * block3[2] > MAX_THREADS_PER_BLOCK:
            raise ValueError(f"block {block3} has more than {MAX_THREADS_PER_BLOCK} threads")
        if not 0 <= shared_mem <= MAX_DYNAMIC_SHARED_BYTES:
            raise ValueError(f"shared_mem={shared_mem} outside 0..{MAX_DYNAMIC_SHARED_BYTES}")
        args = tuple(args)
        if len(args) != len(self.params):
            raise TypeError(
                f"{self.name} takes {len(self.params)} arguments ({', '.join(self.params)}), "
                f"got {len(args)}"
            )
        # Like cuLaunchKernel's kernelParams: an array holding the address of each value.
        values = [self._convert(i, param, args[i]) for i, param in enumerate(self.params)]
        pointers = (ctypes.c_void_p * max(1, len(values)))(*map(ctypes.addressof, values))
        launch = _Launch((ctypes.c_uint * 3)(*grid3), (ctypes.c_uint * 3)(*block3), shared_mem)
        with _lock:
            status = self._launch(ctypes.byref(launch), pointers)
            if status != 0:
                raise RuntimeError(f"{self.name} failed: {self._error().decode()}")


class EmulatedModule:
    """The kernels of one ``.cu`` file, compiled for the CPU; mirrors ``cupy.RawModule``.

    Give either ``path`` (a .cu file) or ``code`` (source text, with ``name`` used in messages).
    ``include_dirs`` are searched by ``#include "..."``; ``debug`` (default:
    ``$TINYALEX_EMULATOR_DEBUG``) builds with AddressSanitizer.
    """

    def __init__(self, path=None, code=None, name="<code>", include_dirs=(), debug=None):
        if (path is None) == (code is None):
            raise ValueError("give exactly one of path= or code=")
        if path is not None:
            path = Path(path).resolve()
            code, name = path.read_text(), str(path)
            include_dirs = (str(path.parent), *include_dirs)
        self.debug = debug_requested() if debug is None else debug
        if self.debug and not asan_loaded():
            raise RuntimeError(
                "emulator debug mode needs the AddressSanitizer runtime loaded at start-up; "
                "run your command as `python -m tinyalex.cuda.emulator --debug -- <command>` "
                f"(or set LD_PRELOAD={asan_runtime()} ASAN_OPTIONS=detect_leaks=0)"
            )
        self.name = name
        self.library_path = build(code, name, include_dirs, debug=self.debug)
        self._library = ctypes.CDLL(str(self.library_path))
        self.kernel_names = tuple(scan_kernels(code))
        self._kernels: dict[str, EmulatedKernel] = {}

    def get_function(self, name: str) -> EmulatedKernel:
        """The kernel called ``name``; KeyError listing the kernels when there is none."""
        if name not in self.kernel_names:
            raise KeyError(f"{self.name} has no kernel {name!r}; it has {self.kernel_names}")
        if name not in self._kernels:
            self._kernels[name] = EmulatedKernel(self._library, name, self.name)
        return self._kernels[name]


def main(argv=None) -> int:
    """``python -m tinyalex.cuda.emulator --debug -- <command>``: run a command under ASan."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--debug", action="store_true", help="AddressSanitizer builds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    env = dict(os.environ, TINYALEX_KERNELS="emulate")
    if args.debug:
        env.update(asan_environment())
    return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
