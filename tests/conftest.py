"""Shared test setup: GPU tests are skipped, with the reason shown, where no GPU can be used."""

import pytest

from tinyalex.backend import gpu_available


def pytest_collection_modifyitems(config, items):
    if gpu_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs CuPy and a CUDA GPU (tinyalex.backend.gpu_available()"
                                       " is False); run `pytest -m gpu` on a GPU machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)
