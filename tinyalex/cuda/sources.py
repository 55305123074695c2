"""Where the CUDA sources are, and what their kernel declarations say.

The repository keeps the kernels in one top-level folder, ``kernels/``; setup.cfg maps that
folder to the package ``tinyalex.kernels``, so a wheel or ``pip install .`` carries them
inside the installed package.

Each kernel declares its block size where it is defined, ``__launch_bounds__(256)``: the
promise to the compiler that it is never launched with more threads per block. The launchers
(``tinyalex.cuda.ops``) read that number from the source (:func:`block_size`), so the block
size has exactly one home, next to the kernel.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import tinyalex

_PACKAGE = Path(tinyalex.__file__).resolve().parent

# extern "C" __global__ [__launch_bounds__(T)] void [__launch_bounds__(T)] name(
KERNEL_DECLARATION = re.compile(
    r'extern\s+"C"\s+__global__\s+(?:__launch_bounds__\s*\(\s*(\d+)[^)]*\)\s*)?'
    r"void\s+(?:__launch_bounds__\s*\(\s*(\d+)[^)]*\)\s*)?(\w+)\s*\(")


def kernel_dir() -> Path:
    """The folder that holds the ``.cu`` files (installed package first, then the checkout)."""
    for candidate in (_PACKAGE / "kernels", _PACKAGE.parent / "kernels"):
        if any(candidate.glob("*.cu")):
            return candidate
    raise FileNotFoundError(
        f"no CUDA kernels found in {_PACKAGE / 'kernels'} or {_PACKAGE.parent / 'kernels'}: "
        "a broken install? Reinstall tinyalex (the .cu files ship as package data)"
    )


def kernel_files() -> list[Path]:
    """Every ``.cu`` file, sorted by name."""
    return sorted(kernel_dir().glob("*.cu"))


def kernel_source(filename: str) -> str:
    """The text of one kernel file, e.g. ``kernel_source("lrn.cu")``."""
    return (kernel_dir() / filename).read_text()


@functools.cache
def block_size(filename: str, kernel: str) -> int:
    """Threads per block of ``kernel`` in ``kernels/<filename>``: its ``__launch_bounds__``."""
    for match in KERNEL_DECLARATION.finditer(kernel_source(filename)):
        if match.group(3) == kernel:
            bound = match.group(1) or match.group(2)
            if bound is None:
                raise ValueError(f"{filename}: kernel {kernel} declares no __launch_bounds__ "
                                 "(its block size)")
            return int(bound)
    raise KeyError(f"{filename} has no kernel {kernel!r}")
