"""Shared test setup: GPU tests are skipped, with the reason shown, where no GPU can be used.

``TINYALEX_FAKE_CUPY=1 pytest -m gpu`` runs the GPU tests on ``fake_cupy`` (NumPy arrays
dressed as CuPy's, kernels on the CPU emulator; see tests/fake_cupy.py) instead: the tests
that need a real GPU say so and skip. The ``fake_cupy`` fixture installs it for one test.
"""

import os
import sys

import pytest

if os.environ.get("TINYALEX_FAKE_CUPY", "").strip() not in ("", "0"):
    import fake_cupy

    sys.modules["cupy"] = fake_cupy  # before tinyalex first looks for CuPy

from tinyalex.backend import gpu_available  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA GPU (tinyalex.backend.gpu_available()"
                                       " is False); run `pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


def _forget_cupy():
    """Drop every cached answer to "is there a CuPy, and which?"."""
    from tinyalex import backend
    from tinyalex.cuda import ops

    backend._cupy.cache_clear()
    backend.gpu_problem.cache_clear()
    ops.for_device.cache_clear()


@pytest.fixture
def fake_cupy(monkeypatch):
    """tests/fake_cupy.py installed as ``cupy`` for one test (and removed after it)."""
    import fake_cupy as module

    monkeypatch.setitem(sys.modules, "cupy", module)
    monkeypatch.delenv("TINYALEX_KERNELS", raising=False)
    _forget_cupy()
    module.reset_counters()
    yield module
    monkeypatch.undo()
    _forget_cupy()
