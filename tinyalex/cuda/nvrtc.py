"""Compile the CUDA kernels with NVRTC -- the compiler CuPy uses -- without a GPU.

NVRTC is a plain shared library (the ``nvidia-cuda-nvrtc-cu12`` wheel ships it), so a machine
without a GPU or CUDA driver can still check that every ``.cu`` file compiles, for every GPU
generation tinyalex supports, with the options CuPy itself passes. (nvcc is no substitute: it
accepts host-side C++ that NVRTC rejects, such as standard library headers.)

    python -m tinyalex.cuda.nvrtc                 # every kernel file, sm_75 sm_80 sm_90
    python -m tinyalex.cuda.nvrtc --arch sm_80 kernels/lrn.cu

Exit status 0 when everything compiled without warnings; otherwise the compiler log is
printed and the status is 1.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import sys
from pathlib import Path

from tinyalex.cuda.sources import kernel_dir, kernel_files

ARCHES = ("sm_75", "sm_80", "sm_90")  # Turing (T4), Ampere (A100), Hopper (H100)


def cupy_options(arch: str) -> tuple[str, ...]:
    """The options ``cupy.RawModule`` hands NVRTC for our kernels on a GPU of ``arch``.

    CuPy appends ``-ftz=true`` (flush denormals to zero) and the architecture (a cubin for the
    device's ``sm_XX`` with NVRTC >= 11.1); tinyalex.cuda.ops passes no options of its own. CuPy
    also adds ``-I`` for its own headers, which our self-contained kernels do not use.
    """
    return ("-ftz=true", f"-arch={arch}")


class NVRTCError(RuntimeError):
    """A kernel failed to compile; the message holds NVRTC's log."""


def _candidate_paths():
    """Where libnvrtc may live: the pip wheel first, then the system's CUDA installation."""
    for entry in sys.path:
        lib = Path(entry or ".") / "nvidia" / "cuda_nvrtc" / "lib"
        if lib.is_dir():
            yield from sorted(lib.glob("libnvrtc.so*"))
    found = ctypes.util.find_library("nvrtc")
    if found:
        yield found
    yield "libnvrtc.so.12"


def load_library() -> ctypes.CDLL:
    """The NVRTC shared library; RuntimeError with the fix when it cannot be found."""
    if hasattr(load_library, "library"):
        return load_library.library
    errors = []
    for path in _candidate_paths():
        if "builtins" in str(path) or ".alt." in str(path):
            continue
        try:
            library = ctypes.CDLL(str(path))
        except OSError as error:
            errors.append(f"{path}: {error}")
            continue
        library.nvrtcGetErrorString.restype = ctypes.c_char_p
        load_library.library = library
        return library
    raise RuntimeError(
        "NVRTC not found: `pip install nvidia-cuda-nvrtc-cu12` (part of tinyalex's `test` extra)"
        + ("\n" + "\n".join(errors) if errors else "")
    )


def version() -> tuple[int, int]:
    """NVRTC's (major, minor) version."""
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(load_library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def _check(result: int, what: str) -> None:
    if result != 0:
        message = load_library().nvrtcGetErrorString(result).decode()
        raise NVRTCError(f"{what} failed: {message}")


def compile_source(source: str, name: str, options) -> tuple[bytes, str]:
    """Compile CUDA ``source`` (called ``name`` in messages); return (cubin or PTX, log).

    Raises NVRTCError with the full compiler log when compilation fails.
    """
    lib = load_library()
    program = ctypes.c_void_p()
    _check(
        lib.nvrtcCreateProgram(
            ctypes.byref(program), source.encode(), name.encode(), 0, None, None
        ),
        "nvrtcCreateProgram",
    )
    try:
        encoded = [o.encode() for o in options]
        option_array = (ctypes.c_char_p * len(encoded))(*encoded)
        result = lib.nvrtcCompileProgram(program, len(encoded), option_array)
        log_size = ctypes.c_size_t()
        _check(lib.nvrtcGetProgramLogSize(program, ctypes.byref(log_size)), "log size")
        log_buffer = ctypes.create_string_buffer(log_size.value)
        _check(lib.nvrtcGetProgramLog(program, log_buffer), "log")
        log = log_buffer.value.decode(errors="replace").strip()
        if result != 0:
            error = lib.nvrtcGetErrorString(result).decode()
            raise NVRTCError(f"{name} ({' '.join(options)}): {error}\n{log}")
        # A real architecture (sm_XX) gives a cubin; a virtual one (compute_XX) only PTX.
        if any(o.startswith("-arch=sm_") for o in options):
            get_size, get_code = lib.nvrtcGetCUBINSize, lib.nvrtcGetCUBIN
        else:
            get_size, get_code = lib.nvrtcGetPTXSize, lib.nvrtcGetPTX
        size = ctypes.c_size_t()
        _check(get_size(program, ctypes.byref(size)), "code size")
        code = ctypes.create_string_buffer(size.value)
        _check(get_code(program, code), "code")
        return code.raw, log
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def check_file(path: Path, arches=ARCHES) -> list[str]:
    """Compile one .cu file for every arch; return the problems (errors and warnings) found."""
    problems = []
    source = Path(path).read_text()
    for arch in arches:
        options = cupy_options(arch)
        try:
            code, log = compile_source(source, Path(path).name, options)
        except NVRTCError as error:
            problems.append(str(error))
            continue
        if log:  # a clean compile has an empty log: warnings count as problems
            problems.append(f"{Path(path).name} ({' '.join(options)}): warnings\n{log}")
        elif not code:
            problems.append(f"{Path(path).name} ({' '.join(options)}): empty output")
    return problems


def main(argv=None) -> int:
    """Compile the given .cu files (default: every kernel of tinyalex) for each arch."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("files", nargs="*", type=Path, help=f"default: {kernel_dir()}/*.cu")
    parser.add_argument("--arch", action="append", help=f"default: {' '.join(ARCHES)}")
    args = parser.parse_args(argv)
    files = args.files or kernel_files()
    arches = tuple(args.arch or ARCHES)
    major, minor = version()
    print(f"NVRTC {major}.{minor}: {len(files)} file(s) x {', '.join(arches)}")
    failed = 0
    for path in files:
        problems = check_file(path, arches)
        print(f"  {'FAIL' if problems else 'ok  '} {path}")
        for problem in problems:
            print("\n" + problem + "\n")
        failed += bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
