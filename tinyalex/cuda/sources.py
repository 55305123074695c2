"""Where the CUDA sources are: ``kernels/`` in a checkout, ``tinyalex/kernels`` when installed.

The repository keeps the kernels in one top-level folder (the project layout shows them beside
the layers they speed up); setup.cfg maps that folder to the package ``tinyalex.kernels``, so a
wheel or ``pip install .`` carries them inside the installed package.
"""

from __future__ import annotations

from pathlib import Path

import tinyalex

_PACKAGE = Path(tinyalex.__file__).resolve().parent


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
